"""Short, stable fingerprints of secrets and configuration: what may be shown instead of the thing.

The operator, the gateway and the emulator compute these the same way, so a fingerprint in a pod's
`/statusz` can be compared with one computed from a Secret, and a config hash with a ConfigMap.
"""

from __future__ import annotations

import hashlib

FINGERPRINT_HEX_CHARS = 12


def fingerprint_secret(secret: str) -> str:
    """A fingerprint of a key or token: the first 12 hex digits of SHA-256 over the stripped secret."""
    digest = hashlib.sha256(secret.strip().encode()).hexdigest()
    return digest[:FINGERPRINT_HEX_CHARS]


def hash_config(content: bytes) -> str:
    """The config hash: the first 16 hex digits of SHA-256 over the config file's bytes."""
    return hashlib.sha256(content).hexdigest()[:16]
