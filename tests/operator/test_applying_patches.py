"""Applying children: the applied-hash decides "changed", and patches remove what rendering dropped."""

from __future__ import annotations

import copy
from typing import Any

from ttsfleet.operator import applying
from ttsfleet.operator.rendering import meta


def deployment(**pod_spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "aura-en", "namespace": "voice", "labels": {"a": "b"}},
        "spec": {
            "replicas": 2,
            "template": {
                "metadata": {"annotations": {meta.CONFIG_HASH_ANNOTATION: "c1"}},
                "spec": {"containers": [{"name": "gateway", "image": "i:1"}], **pod_spec},
            },
        },
    }


def live_of(desired: dict[str, Any]) -> dict[str, Any]:
    """What the API would return: the stamped manifest plus server-side defaults and status."""
    live = copy.deepcopy(desired)
    live["metadata"].update(uid="u-1", resourceVersion="7", generation=3)
    live["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    live["status"] = {"replicas": 2}
    return live


def test_the_hash_ignores_key_order_but_not_values() -> None:
    one = {"b": 1, "a": {"y": 2, "x": 3}}
    same = {"a": {"x": 3, "y": 2}, "b": 1}
    assert applying.manifest_hash(one) == applying.manifest_hash(same)
    assert applying.manifest_hash(one) != applying.manifest_hash({**one, "b": 2})


def test_stamping_adds_the_hash_of_the_manifest_without_changing_it() -> None:
    manifest = deployment()
    stamped = applying.stamped(manifest)
    assert applying.applied_hash(stamped) == applying.manifest_hash(manifest)
    assert applying.applied_hash(manifest) is None  # the input is left alone
    assert applying.applied_hash({}) is None


def test_a_live_object_with_the_same_hash_needs_no_patch_despite_server_defaults() -> None:
    desired = applying.stamped(deployment())
    assert applying.patch_for(desired, live_of(desired)) is None


def test_a_hand_edit_that_keeps_the_hash_is_not_a_change() -> None:
    desired = applying.stamped(deployment())
    live = live_of(desired)
    live["spec"]["replicas"] = 9  # drift: corrected on the next spec change only
    assert applying.patch_for(desired, live) is None


def test_a_changed_rendering_patches_the_whole_manifest_with_the_new_hash() -> None:
    before = applying.stamped(deployment())
    after_manifest = deployment()
    after_manifest["spec"]["template"]["metadata"]["annotations"][meta.CONFIG_HASH_ANNOTATION] = "c2"
    after = applying.stamped(after_manifest)
    patch = applying.patch_for(after, live_of(before))
    assert patch == after
    assert applying.applied_hash(patch) != applying.applied_hash(before)


def test_optional_pod_fields_rendering_stopped_producing_are_removed_explicitly() -> None:
    scheduled = deployment(nodeSelector={"pool": "tts"}, priorityClassName="high")
    scheduled["spec"]["template"]["metadata"]["annotations"][meta.SECRET_HASH_ANNOTATION] = "s1"
    live = live_of(applying.stamped(scheduled))
    patch = applying.patch_for(applying.stamped(deployment()), live)
    assert patch is not None
    pod_spec = patch["spec"]["template"]["spec"]
    assert pod_spec["nodeSelector"] is None and pod_spec["priorityClassName"] is None
    assert "tolerations" not in pod_spec  # never there: nothing to remove
    assert patch["spec"]["template"]["metadata"]["annotations"][meta.SECRET_HASH_ANNOTATION] is None


def test_replicas_left_out_by_an_hpa_is_never_removed() -> None:
    fixed = applying.stamped(deployment())
    autoscaled_manifest = deployment()
    del autoscaled_manifest["spec"]["replicas"]
    patch = applying.patch_for(applying.stamped(autoscaled_manifest), live_of(fixed))
    assert patch is not None
    assert "replicas" not in patch["spec"]  # a merge patch keeps the HPA's value


def test_kinds_without_removable_fields_patch_as_rendered() -> None:
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "aura-en-config", "namespace": "voice"},
        "data": {"config.yaml": "a: 1"},
    }
    live = live_of_config(applying.stamped(config_map))
    changed = applying.stamped({**config_map, "data": {"config.yaml": "a: 2"}})
    assert applying.patch_for(changed, live) == changed


def live_of_config(desired: dict[str, Any]) -> dict[str, Any]:
    live = copy.deepcopy(desired)
    live["metadata"]["uid"] = "u-2"
    return live


def test_only_a_controller_reference_to_the_owner_counts_as_control() -> None:
    def owned(*refs: dict[str, Any]) -> dict[str, Any]:
        return {"metadata": {"ownerReferences": list(refs)}}

    assert applying.is_controlled_by(owned({"uid": "u", "controller": True}), "u")
    assert not applying.is_controlled_by(owned({"uid": "u"}), "u")
    assert not applying.is_controlled_by(owned({"uid": "other", "controller": True}), "u")
    assert not applying.is_controlled_by({"metadata": {}}, "u")


def test_every_managed_kind_has_a_child_name() -> None:
    names = applying.child_names("voice", "aura-en")
    assert names[("v1", "ConfigMap")] == "aura-en-config"
    assert {name for key, name in names.items() if key[1] != "ConfigMap"} == {"aura-en"}
