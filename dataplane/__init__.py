"""The gateway: a hardened, Deepgram-compatible data plane in front of Deepgram's streaming TTS.

It never imports the emulator or the operator; its contract with the operator is its settings file
and `/statusz`.
"""
