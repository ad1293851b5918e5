"""The pure patch functions (RFC 7386, RFC 6902, the strategic-merge subset)."""

from __future__ import annotations

from typing import Any

import pytest

from ttsfleet.devcluster.apiserver import patching


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        pytest.param(
            [{"op": "add", "path": "/a/-", "value": 3}], {"a": [1, 2, 3], "b": {"c": 1}}, id="append"
        ),
        pytest.param(
            [{"op": "replace", "path": "/a/0", "value": 9}], {"a": [9, 2], "b": {"c": 1}}, id="replace"
        ),
        pytest.param([{"op": "remove", "path": "/b/c"}], {"a": [1, 2], "b": {}}, id="remove"),
        pytest.param(
            [{"op": "move", "from": "/b/c", "path": "/d"}], {"a": [1, 2], "b": {}, "d": 1}, id="move"
        ),
        pytest.param(
            [{"op": "copy", "from": "/b", "path": "/e"}],
            {"a": [1, 2], "b": {"c": 1}, "e": {"c": 1}},
            id="copy",
        ),
        pytest.param(
            [{"op": "add", "path": "/x~1y", "value": 1}], {"a": [1, 2], "b": {"c": 1}, "x/y": 1}, id="escaped"
        ),
    ],
)
def test_json_patch_ops(ops: list[dict[str, Any]], expected: dict[str, Any]) -> None:
    original = {"a": [1, 2], "b": {"c": 1}}
    assert patching.json_patch(original, ops) == expected
    assert original == {"a": [1, 2], "b": {"c": 1}}


@pytest.mark.parametrize(
    "ops",
    [
        pytest.param([{"op": "test", "path": "/b/c", "value": 2}], id="failed-test"),
        pytest.param([{"op": "remove", "path": "/missing"}], id="missing-path"),
        pytest.param([{"op": "replace", "path": "/a/5", "value": 0}], id="index-out-of-range"),
        pytest.param([{"op": "jump", "path": "/a"}], id="unknown-op"),
    ],
)
def test_json_patch_errors(ops: list[dict[str, Any]]) -> None:
    with pytest.raises(patching.PatchError):
        patching.json_patch({"a": [1, 2], "b": {"c": 1}}, ops)


def test_merge_patch_replaces_lists_and_deletes_nulls() -> None:
    assert patching.merge_patch({"a": [1], "b": {"c": 1, "d": 2}}, {"a": [2], "b": {"c": None}}) == {
        "a": [2],
        "b": {"d": 2},
    }


def test_strategic_merge_deletes_list_elements_by_directive() -> None:
    target = {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}
    patch = {"env": [{"name": "A", "$patch": "delete"}]}
    assert patching.strategic_merge_patch(target, patch) == {"env": [{"name": "B", "value": "2"}]}


def test_strategic_merge_replaces_scalar_lists() -> None:
    assert patching.strategic_merge_patch({"args": ["a", "b"]}, {"args": ["c"]}) == {"args": ["c"]}
