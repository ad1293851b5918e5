"""Audio dumps: with `dump: true`, one raw PCM file per request that produced audio, written at its end."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def dump_file(dump_path: str, request_id: str) -> Path:
    """Where a request's audio goes; request ids are made safe as file names."""
    return Path(dump_path) / f"deepgram_tts2_python_{_UNSAFE.sub('_', request_id)}.pcm"


class Dumper:
    """Collects each request's audio in memory and writes it once, off the event loop."""

    def __init__(self, dump_path: str) -> None:
        self._dump_path = dump_path
        self._audio: dict[str, bytearray] = {}

    def add(self, request_id: str, audio: bytes) -> None:
        self._audio.setdefault(request_id, bytearray()).extend(audio)

    async def finish(self, request_id: str) -> Path | None:
        """Write the request's file if it produced audio; returns its path."""
        audio = self._audio.pop(request_id, None)
        if not audio:
            return None
        path = dump_file(self._dump_path, request_id)
        await asyncio.to_thread(_write, path, bytes(audio))
        return path


def _write(path: Path, audio: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(audio)
