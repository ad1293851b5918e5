"""Audio dumps: with `dump: true`, one raw PCM file per request that produced audio, written as it arrives.

Each chunk goes to disk when it arrives (off the event loop, in order), so a long request costs no memory
and a dump is readable while the request is still speaking.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import BinaryIO

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def dump_file(dump_path: str, request_id: str) -> Path:
    """Where a request's audio goes; request ids are made safe as file names."""
    return Path(dump_path) / f"deepgram_tts2_python_{_UNSAFE.sub('_', request_id)}.pcm"


def _open(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("wb")


def _write(file: BinaryIO, audio: bytes) -> None:
    file.write(audio)
    file.flush()


class Dumper:
    """One open file per request with audio; chunks are appended as they come, closed at the end."""

    def __init__(self, dump_path: str) -> None:
        self._dump_path = dump_path
        self._files: dict[str, BinaryIO] = {}

    async def add(self, request_id: str, audio: bytes) -> None:
        file = self._files.get(request_id)
        if file is None:
            file = self._files[request_id] = await asyncio.to_thread(
                _open, dump_file(self._dump_path, request_id)
            )
        await asyncio.to_thread(_write, file, audio)

    async def finish(self, request_id: str) -> Path | None:
        """Close the request's file if it produced audio; returns its path."""
        file = self._files.pop(request_id, None)
        if file is None:
            return None
        await asyncio.to_thread(file.close)
        return Path(file.name)

    async def close(self) -> None:
        """Close every file still open (the extension is stopping)."""
        for request_id in list(self._files):
            await self.finish(request_id)
