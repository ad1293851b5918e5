"""ttsfleet: a Kubernetes-operated fleet of Deepgram-compatible TTS gateways.

This top-level package holds only the version, the CLI and the bottom layer every component shares:
the speak protocol (`ttsfleet.protocol`), audio encoding (`ttsfleet.audio`) and logging setup
(`ttsfleet.logs`). Components live in sub-packages mapped onto top-level folders and never import
each other.
"""

__version__ = "0.1.0"
