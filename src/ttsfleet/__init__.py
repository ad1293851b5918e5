"""ttsfleet: a Kubernetes-operated fleet of Deepgram-compatible TTS gateways.

This top-level package holds only the version, the CLI and the bottom layer every component shares:
the speak protocol (`ttsfleet.protocol`), audio encoding (`ttsfleet.audio`, numpy: the emulator's),
WAV framing (`ttsfleet.wavfile`) and logging setup (`ttsfleet.logs`). Components live in sub-packages
and never import each other; each comes with its own extra (`ttsfleet.extras`).
"""

__version__ = "0.1.0"
