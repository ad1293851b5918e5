"""The operator's RBAC is least privilege: exactly the grants listed here, no wildcards.

A new grant means editing the table below and saying why in docs/security.md; Secrets are read-only
and their reason is written down there.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.helm import RELEASE, ROOT, WATCHED_NAMESPACES, Grant, Manifest, of_kind, operator_grants

SERVICE_ACCOUNT = f"{RELEASE}-ttsfleet"
READ = ("get", "list", "watch")
MANAGE = ("get", "create", "patch", "delete")  # children are read by name, never listed or watched…
# …but Deployments and HPAs: their status is indexed (an HPA's is mirrored into the backend's status)
WATCHED = ("get", "list", "watch", "create", "patch", "delete")


def grants(*entries: tuple[str, str, tuple[str, ...]]) -> set[Grant]:
    return {(group, resource, verb) for group, resource, verbs in entries for verb in verbs}


IN_SERVED_NAMESPACES = grants(
    ("ttsfleet.io", "ttsbackends", ("get", "list", "watch", "patch")),
    ("ttsfleet.io", "ttsbackends/status", ("patch",)),
    # blockOwnerDeletion on children needs it under OwnerReferencesPermissionEnforcement.
    ("ttsfleet.io", "ttsbackends/finalizers", ("update",)),
    ("", "configmaps", MANAGE),
    ("", "services", MANAGE),
    ("apps", "deployments", WATCHED),
    ("autoscaling", "horizontalpodautoscalers", WATCHED),
    ("policy", "poddisruptionbudgets", MANAGE),
    ("networking.k8s.io", "networkpolicies", MANAGE),
    ("monitoring.coreos.com", "servicemonitors", MANAGE),
    ("", "secrets", ("list", "watch")),  # never `get`: only labelled Secrets, by list and watch
    ("", "pods", ("list", "watch")),
    ("", "events", ("create",)),
)
# kopf lists and watches these; it never gets one by name, and never lists namespaces when it serves
# the whole cluster (nor when it serves named ones).
CRD_DISCOVERY = grants(("apiextensions.k8s.io", "customresourcedefinitions", ("list", "watch")))
CLUSTER_PEERING = grants(("kopf.dev", "clusterkopfpeerings", ("list", "watch", "patch")))
NAMESPACED_PEERING = grants(("kopf.dev", "kopfpeerings", ("list", "watch", "patch")))
SECRETS_DOCUMENTED_VERBS = {"list", "watch"}  # docs/security.md, "Why the operator reads Secrets"
KEY_ROTATION_VERBS = {"patch"}  # docs/security.md, "Scheduled key rotation writes the key Secret"
DANGEROUS_VERBS = {"escalate", "bind", "impersonate", "*"}


def rules(manifests: list[Manifest]) -> list[dict[str, list[str]]]:
    return [
        rule
        for kind in ("ClusterRole", "Role")
        for role in of_kind(manifests, kind)
        for rule in role["rules"]
    ]


def test_no_wildcards_or_escalation_anywhere(manifests: list[Manifest]) -> None:
    for rule in rules(manifests):
        assert "nonResourceURLs" not in rule
        assert "resourceNames" not in rule or "*" not in rule["resourceNames"]
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule
            assert not any("*" in item for item in rule[field]), rule
        assert not DANGEROUS_VERBS & set(rule["verbs"]), rule


def test_cluster_mode_grants_exactly_what_the_operator_uses(default_manifests: list[Manifest]) -> None:
    assert operator_grants(default_manifests, SERVICE_ACCOUNT) == {
        "": IN_SERVED_NAMESPACES | CRD_DISCOVERY | CLUSTER_PEERING
    }


def test_cluster_mode_without_peering_drops_the_peering_grant(cluster_manifests: list[Manifest]) -> None:
    assert operator_grants(cluster_manifests, SERVICE_ACCOUNT) == {"": IN_SERVED_NAMESPACES | CRD_DISCOVERY}


def test_namespaced_mode_grants_only_inside_the_listed_namespaces(
    namespaced_manifests: list[Manifest],
) -> None:
    by_scope = operator_grants(namespaced_manifests, SERVICE_ACCOUNT)
    assert by_scope.pop("") == CRD_DISCOVERY, "cluster-wide, only CRD discovery"
    assert by_scope == dict.fromkeys(WATCHED_NAMESPACES, IN_SERVED_NAMESPACES | NAMESPACED_PEERING)


def test_service_monitor_grant_is_optional(helm: Path) -> None:
    from tests.support.helm import render

    manifests = render(helm, set_values=["rbac.serviceMonitors=false"])
    granted = operator_grants(manifests, SERVICE_ACCOUNT)[""]
    assert not {grant for grant in granted if grant[1] == "servicemonitors"}


def test_secrets_access_is_read_only_and_documented(manifests: list[Manifest]) -> None:
    for rule in rules(manifests):
        if "secrets" in rule["resources"]:
            assert set(rule["verbs"]) <= SECRETS_DOCUMENTED_VERBS, rule
            assert rule["resources"] == ["secrets"], (
                "keep the Secrets rule on its own, so its reason stays clear"
            )
    security = (ROOT / "docs" / "security.md").read_text()
    assert "## Why the operator reads Secrets" in security
    assert "ttsfleet.io/watch" in security


def test_key_rotation_adds_only_patch_on_secrets_when_asked(helm: Path) -> None:
    from tests.support.helm import render

    manifests = render(helm, set_values=["rbac.keyRotation=true"])
    secret_rules = [rule for rule in rules(manifests) if "secrets" in rule["resources"]]
    verbs = {verb for rule in secret_rules for verb in rule["verbs"]}
    assert verbs == SECRETS_DOCUMENTED_VERBS | KEY_ROTATION_VERBS
    assert "## Scheduled key rotation writes the key Secret" in (ROOT / "docs" / "security.md").read_text()


def test_user_roles_aggregate_into_the_builtin_roles(default_manifests: list[Manifest]) -> None:
    aggregated = {
        role["metadata"]["name"]: role
        for role in of_kind(default_manifests, "ClusterRole")
        if any(
            key.startswith("rbac.authorization.k8s.io/aggregate-to-") for key in role["metadata"]["labels"]
        )
    }
    assert set(aggregated) == {f"{SERVICE_ACCOUNT}-edit", f"{SERVICE_ACCOUNT}-view"}
    view_verbs = {verb for rule in aggregated[f"{SERVICE_ACCOUNT}-view"]["rules"] for verb in rule["verbs"]}
    assert view_verbs == set(READ)
    edit_rules = aggregated[f"{SERVICE_ACCOUNT}-edit"]["rules"]
    status = [rule for rule in edit_rules if "ttsbackends/status" in rule["resources"]]
    assert status and all(rule["verbs"] == ["get"] for rule in status), "users never write status"
    assert any("ttsbackends/scale" in rule["resources"] and "patch" in rule["verbs"] for rule in edit_rules)
