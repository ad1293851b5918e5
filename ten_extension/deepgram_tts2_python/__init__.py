"""deepgram_tts2_python: a TEN TTS2 extension that speaks through a ttsfleet backend (or Deepgram).

The TEN runtime loads `addon.py` itself; this package file imports nothing, so the runtime-free modules
(`config`, `discovery`, `speak_client`, `streaming`, …) can be imported and tested without TEN installed.
"""
