"""Applying children: the applied-hash decides "changed"; replicas are handed over before an HPA owns them."""

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


def test_a_live_object_with_the_same_hash_needs_no_apply_despite_server_defaults() -> None:
    desired = applying.stamped(deployment())
    assert not applying.needs_apply(desired, live_of(desired))


def test_a_hand_edit_that_keeps_the_hash_is_not_a_change() -> None:
    desired = applying.stamped(deployment())
    live = live_of(desired)
    live["spec"]["replicas"] = 9  # drift: corrected on the next spec change only
    assert not applying.needs_apply(desired, live)


def test_a_changed_rendering_needs_an_apply() -> None:
    before = applying.stamped(deployment())
    after_manifest = deployment()
    after_manifest["spec"]["template"]["metadata"]["annotations"][meta.CONFIG_HASH_ANNOTATION] = "c2"
    assert applying.needs_apply(applying.stamped(after_manifest), live_of(before))


def owned_by_operator(live: dict[str, Any]) -> dict[str, Any]:
    live["metadata"]["managedFields"] = [
        {
            "manager": applying.FIELD_MANAGER,
            "operation": "Apply",
            "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {}}},
        }
    ]
    return live


def test_replicas_are_handed_over_when_the_operator_stops_rendering_them() -> None:
    live = owned_by_operator(live_of(applying.stamped(deployment())))
    autoscaled = deployment()
    del autoscaled["spec"]["replicas"]
    handover = applying.replicas_handover(applying.stamped(autoscaled), live)
    assert handover == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "aura-en", "namespace": "voice"},
        "spec": {"replicas": 2},
    }
    # Still rendered, or no longer the operator's: nothing to hand over.
    assert applying.replicas_handover(applying.stamped(deployment()), live) is None
    assert (
        applying.replicas_handover(applying.stamped(autoscaled), live_of(applying.stamped(deployment())))
        is None
    )


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
