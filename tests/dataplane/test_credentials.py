"""Judging the Deepgram key on evidence, and reading key files that may not hold a key (pure parts)."""

from __future__ import annotations

from pathlib import Path

from ttsfleet.dataplane.credentials import KeyFile, read_key, recheck_delay_s


def _loaded(tmp_path: Path, content: str = "dg-key\n") -> KeyFile:
    path = tmp_path / "key"
    path.write_text(content)
    keys = KeyFile(path)
    keys.load()
    return keys


def test_one_rest_refusal_is_a_doubt_three_in_a_row_a_judgement(tmp_path: Path) -> None:
    keys = _loaded(tmp_path)
    keys.report(True, fresh_handshake=True)
    keys.report(False, fresh_handshake=False)
    assert keys.valid is True and keys.doubted
    keys.report(False, fresh_handshake=False)
    keys.report(False, fresh_handshake=False)
    assert keys.valid is False
    keys.report(True, fresh_handshake=True)
    assert keys.valid is True and not keys.doubted


def test_a_refused_handshake_judges_at_once(tmp_path: Path) -> None:
    keys = _loaded(tmp_path)
    keys.report(False, fresh_handshake=True)
    assert keys.valid is False and keys.doubted


def test_rechecks_are_seconds_apart_and_bounded() -> None:
    assert [recheck_delay_s(n) for n in range(1, 8)] == [1.0, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_files_that_cannot_hold_a_key_are_refused_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes("\ufeffdg-key\n".encode())
    assert read_key(path) == ("dg-key", None)
    path.write_text("k" * 1_000_000)
    key, problem = read_key(path)
    assert key is None and problem is not None and "8192" in problem
    path.write_text("two keys\n")
    assert read_key(path)[0] is None
    path.write_text("  \n")
    assert read_key(path) == (None, "the key file is empty")
