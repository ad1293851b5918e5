"""A gateway drain between requests: 1012 on the idle socket, 503 + Retry-After, the next pod takes over."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.dataplane.gateways import FLEET_TOKEN, running_gateway
from tests.support.servers import ServerProcess
from tests.ten_extension.harness import Harness
from tests.ten_extension.service_proxy import ServiceProxy
from tests.ten_extension.targets import ten_properties

METADATA = {"session_id": "session-1", "turn_id": 1}


async def test_a_drained_gateway_hands_the_next_request_to_another_pod_without_an_error(
    process_logs: Path, extension_upstream: ServerProcess, tmp_path: Path
) -> None:
    with (
        running_gateway(process_logs, extension_upstream, tmp_path / "a", name="drain-pod-a") as pod_a,
        running_gateway(process_logs, extension_upstream, tmp_path / "b", name="drain-pod-b") as pod_b,
    ):
        async with ServiceProxy(
            [("127.0.0.1", pod_a.process.port), ("127.0.0.1", pod_b.process.port)]
        ) as svc:
            properties = ten_properties(svc.ws_url, FLEET_TOKEN)
            async with Harness(properties) as tts:
                tts.text("drain-1", "Spoken by the first pod.", metadata=METADATA)
                await tts.wait_ends(1)
                speaker = tts.ext.speaker
                assert speaker is not None
                answer = await asyncio.to_thread(httpx.post, pod_a.process.base_url + "/drain", timeout=5.0)
                assert answer.status_code == 202
                await tts.wait_for(lambda: not speaker.is_connected, "the drain's 1012 on the idle socket")
                tts.text("drain-2", "Spoken by the second pod after the drain.", metadata=METADATA)
                views = await tts.wait_ends(2)

    assert [view.end["reason"] for view in views if view.end] == [1, 1]
    assert all(view.frames for view in views)
    assert not tts.data("error")
    assert svc.refusals[pod_a.process.port] >= 1
    assert svc.connections[pod_b.process.port] >= 1
    assert speaker.sockets_opened == 2
