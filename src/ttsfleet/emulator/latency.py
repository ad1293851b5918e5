"""The latency model: when each audio frame of an utterance leaves the emulator.

Pure arithmetic on a start time; the server sleeps until each instant. Defaults imitate a cloud
region: ~150 ms handshake, ~90 ms to the first byte, then faster than real time.
"""

from __future__ import annotations

from dataclasses import dataclass

from ttsfleet.protocol import BYTES_PER_SAMPLE, Encoding


@dataclass(frozen=True, slots=True)
class LatencyModel:
    handshake_delay_s: float = 0.150
    first_byte_s: float = 0.090
    realtime_factor: float = 4.0  # audio seconds per wall-clock second; 0 = as fast as possible
    frame_ms: float = 100.0
    jitter_ms: float = 0.0

    def frame_bytes(self, encoding: Encoding, sample_rate: int) -> int:
        """Bytes of one frame, a whole number of samples and never zero."""
        samples = max(1, round(sample_rate * self.frame_ms / 1000.0))
        # Compressed files (REST mp3, opus, flac) are cut into frames the size of linear16 ones.
        return samples * BYTES_PER_SAMPLE.get(encoding, 2)

    def frame_offset_s(self, index: int, extra_delay_s: float = 0.0) -> float:
        """Seconds from the flush to frame `index` (0-based), before jitter."""
        paced = 0.0 if self.realtime_factor <= 0 else index * self.frame_ms / 1000.0 / self.realtime_factor
        return self.first_byte_s + paced + (index + 1) * extra_delay_s

    def describe(self) -> dict[str, float]:
        return {
            "handshake_delay_ms": self.handshake_delay_s * 1000,
            "first_byte_ms": self.first_byte_s * 1000,
            "realtime_factor": self.realtime_factor,
            "frame_ms": self.frame_ms,
            "jitter_ms": self.jitter_ms,
        }


def split_frames(audio: bytes, frame_bytes: int) -> list[bytes]:
    """Cut audio into frames of `frame_bytes` (the last may be shorter)."""
    return [audio[start : start + frame_bytes] for start in range(0, len(audio), frame_bytes)]
