"""The shares file: this pod's entry, the share of pods not yet counted, and what is not a shares file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ttsfleet.dataplane.shares import Share, ShareFile, parse_shares

DOCUMENT = {
    "revision": 4,
    "pods": {"pod-a": {"upstream_sockets": 3, "chars_per_minute_per_token": 500}},
    "unlisted": {"upstream_sockets": 0, "chars_per_minute_per_token": 250},
}


def test_a_listed_pod_gets_its_entry() -> None:
    assert parse_shares(json.dumps(DOCUMENT).encode(), "pod-a") == Share(4, 3, 500, listed=True)


def test_a_pod_not_yet_counted_gets_the_unlisted_share() -> None:
    assert parse_shares(json.dumps(DOCUMENT).encode(), "pod-new") == Share(4, 0, 250, listed=False)


def test_a_budget_the_backend_does_not_set_is_none() -> None:
    assert parse_shares(b'{"revision": 1, "pods": {"pod-a": {}}}', "pod-a") == Share(1, None, None, True)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"[]", id="not-an-object"),
        pytest.param(b'{"revision": "1"}', id="revision-text"),
        pytest.param(b'{"pods": {"pod-a": {"upstream_sockets": -1}}}', id="negative"),
        pytest.param(b'{"pods": {"pod-a": {"upstream_sockets": true}}}', id="boolean"),
        pytest.param(b'{"pods": []}', id="pods-a-list"),
        pytest.param(b"{", id="not-json"),
    ],
)
def test_what_is_not_a_shares_file_is_refused(raw: bytes) -> None:
    with pytest.raises(ValueError):
        parse_shares(raw, "pod-a")


def test_a_broken_or_missing_file_keeps_the_last_share(tmp_path: Path) -> None:
    path = tmp_path / "shares.json"
    shares = ShareFile(path, "pod-a")
    assert not shares.load() and shares.share is None
    path.write_text(json.dumps(DOCUMENT))
    assert shares.load() and shares.share == Share(4, 3, 500, listed=True)
    path.write_text("{ broken")
    assert not shares.load() and shares.share == Share(4, 3, 500, listed=True)
    assert shares.problem is not None
    path.unlink()
    assert not shares.load() and shares.share is not None
