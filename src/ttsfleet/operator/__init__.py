"""The ttsfleet operator: the TTSBackend API, pure manifest rendering, status, and thin kopf handlers.

It never imports the gateway or the emulator; it talks to gateway pods over HTTP (`/statusz`).
`api` (models, the CRD's source), `crd` and `reference` (generated CRD and docs), `rendering`
(children), `facts`, `fleet`, `conditions`, `status`, `events`, `metering`, `sharing` and
`key_rotation` are pure: no I/O, no clock, no client, no kopf, no logs (an import contract in
pyproject.toml checks it).
"""
