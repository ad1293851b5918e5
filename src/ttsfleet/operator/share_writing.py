"""Writing a backend's division of its fleet-wide budgets (the shares ConfigMap) after each probe.

`sharing` decides; this module reads the last division (from memory, or once from the API after a
start), and creates or patches the ConfigMap only when the division changed, so an idle fleet costs
no writes. The ConfigMap is owned by the backend (garbage-collected with it) but is not a rendered
child: the reconcile's apply never resets it, and a new division rolls no pod.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

from ttsfleet import contracts
from ttsfleet.operator import api, errors, events, fleet, kube, rendering, sharing

CONFIG_MAPS = kube.BY_KIND[("v1", "ConfigMap")]
Key = tuple[str, str]


def is_counted(pod: Mapping[str, Any]) -> bool:
    """A pod the budgets are divided among: it has an address and is not on its way out.

    Not only Ready pods: with a socket budget a pod becomes ready once it holds a share.
    """
    metadata = pod.get("metadata") or {}
    return not metadata.get("deletionTimestamp") and bool((pod.get("status") or {}).get("podIP"))


async def publish(
    client: kube.KubeClient,
    written: MutableMapping[Key, sharing.Division],
    backend: api.TTSBackend,
    pods: Sequence[Mapping[str, Any]],
    statusz: Sequence[Mapping[str, Any]],
    *,
    fresh_read: bool = False,
) -> events.Notice | None:
    """Divide the budgets among `pods` given their `/statusz`; write the shares file if it changed.
    Returns the Event to post when the shares moved (a new revision).

    The division last written is remembered, so a probe tick reads nothing; with `fresh_read` (a
    reconcile, which reads every child) the ConfigMap is read too, and one deleted by hand is written
    again from the remembered division, whose bookkeeping of what pods may hold it still has.
    """
    namespace, name = str(backend.metadata.namespace), backend.metadata.name
    config_map = rendering.meta.shares_config_map_name(backend)
    previous = written.get((namespace, name))
    exists = previous is not None
    if previous is None or fresh_read:
        live = await client.get_or_none(CONFIG_MAPS, namespace, config_map)
        exists = live is not None
        if previous is None:
            previous = sharing.parse_division(((live or {}).get("data") or {}).get(contracts.SHARES_KEY))
    division = sharing.next_division(
        previous,
        socket_budget=backend.spec.deepgram.socket_budget,
        chars_per_minute_per_token=backend.spec.limits.chars_per_minute_per_token,
        members=[str(pod["metadata"]["name"]) for pod in pods if is_counted(pod)],
        present=[str(pod["metadata"]["name"]) for pod in pods],
        reports=fleet.readable_reports(statusz),
    )
    text = division.to_json()
    if exists and previous is not None and previous.to_json() == text:
        written[(namespace, name)] = division
        return None
    data = {contracts.SHARES_KEY: text}
    written.pop((namespace, name), None)  # until the write lands: a failed one is re-read next tick
    try:
        if exists:
            await client.merge_patch(CONFIG_MAPS, namespace, config_map, {"data": data})
        else:
            await client.create(CONFIG_MAPS, namespace, _config_map(backend, config_map, data))
    except errors.ApiNotFound:  # deleted between the read and the write
        await client.create(CONFIG_MAPS, namespace, _config_map(backend, config_map, data))
    written[(namespace, name)] = division
    if previous is not None and previous.revision == division.revision:
        return None  # only the bookkeeping moved, or a deleted ConfigMap was written again
    if not division.chars_per_minute_per_token and not (previous and previous.chars_per_minute_per_token):
        return None  # no pods before or after: nothing anyone waits for
    return events.Notice(events.EventType.NORMAL, events.Reason.SHARES_DIVIDED, sharing.describe(division))


def _config_map(backend: api.TTSBackend, name: str, data: dict[str, str]) -> dict[str, Any]:
    owner = rendering.OwnerRef.of(backend)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": rendering.meta.metadata(backend, owner, name),
        "data": data,
    }
