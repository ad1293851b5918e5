"""The audio cache: byte-bounded LRU with a time to live."""

from __future__ import annotations

from tests.dataplane.fakes import ManualClock
from ttsfleet.dataplane.cache import AudioCache, CacheKey
from ttsfleet.protocol import Container, Encoding, SpeakOptions


def _key(text: str, speed: float = 1.0) -> CacheKey:
    return CacheKey(text, "aura-2-thalia-en", Encoding.LINEAR16, 24000, speed)


def test_a_stored_utterance_is_returned_whole() -> None:
    cache = AudioCache(ManualClock(), max_bytes=1000, ttl_s=60)
    assert cache.put(_key("a"), b"x" * 100, "audio/wav")
    assert cache.get(_key("a")) == (b"x" * 100, "audio/wav")
    assert cache.get(_key("a", speed=1.1)) is None


def test_least_recently_used_entries_go_first_when_bytes_run_out() -> None:
    cache = AudioCache(ManualClock(), max_bytes=1000, ttl_s=60)
    for name in "abcd":
        cache.put(_key(name), b"x" * 250)
    cache.get(_key("a"))  # a is now the most recent
    cache.put(_key("e"), b"x" * 250)
    assert cache.get(_key("b")) is None
    assert cache.get(_key("a")) is not None
    assert cache.bytes_held == 1000


def test_entries_expire_after_the_ttl() -> None:
    clock = ManualClock()
    cache = AudioCache(clock, max_bytes=1000, ttl_s=60)
    cache.put(_key("a"), b"x" * 10)
    clock.advance(59.9)
    assert cache.get(_key("a")) is not None
    clock.advance(0.1)
    assert cache.get(_key("a")) is None
    assert cache.bytes_held == 0


def test_empty_or_oversized_audio_is_not_kept() -> None:
    cache = AudioCache(ManualClock(), max_bytes=1000, ttl_s=60)
    assert not cache.put(_key("empty"), b"")
    assert not cache.put(_key("huge"), b"x" * 251)
    assert len(cache) == 0


def test_replacing_an_entry_keeps_the_byte_count_right() -> None:
    cache = AudioCache(ManualClock(), max_bytes=1000, ttl_s=60)
    cache.put(_key("a"), b"x" * 100)
    cache.put(_key("a"), b"y" * 50)
    assert cache.bytes_held == 50


def test_keys_follow_the_options_that_shape_the_audio() -> None:
    wav = SpeakOptions(container=Container.WAV)
    raw = SpeakOptions()
    assert CacheKey.of(wav, "hi") != CacheKey.of(raw, "hi")
    assert CacheKey.of(raw, "hi") == CacheKey.of(SpeakOptions(), "hi")
