"""Test stand-in for ten_ai_base 0.7: the TTS2 base class and the message types it uses."""
