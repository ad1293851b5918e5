"""A Deepgram-compatible speak emulator: WS and REST `/v1/speak`, real speech from eSpeak NG.

It stands in for Deepgram in every offline test, benchmark and the local fleet, so it follows
PROTOCOL.md to the letter, adds a configurable latency model, fault injection, an in-memory key
management API and counters under `/_emulator/`. It never imports the gateway or the operator.
"""
