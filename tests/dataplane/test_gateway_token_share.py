"""A fleet token's character rate is fleet-wide: a gateway process enforces the part the shares file
gives it, and a new division reaches it without a restart."""

from __future__ import annotations

import json
from pathlib import Path

from tests.dataplane.gateways import running_gateway
from tests.support.servers import running_emulator
from tests.support.speaking import connect, speak_and_flush, wait_closed
from tests.support.waiting import wait_for

SENTENCE = "A sentence of about sixty characters, spoken by one agent."


def divide(shares: Path, revision: int, pod: str, chars_per_minute: int) -> None:
    document = {"revision": revision, "pods": {pod: {"chars_per_minute_per_token": chars_per_minute}}}
    staging = shares.with_name(".shares.tmp")
    staging.write_text(json.dumps(document))
    staging.replace(shares)


async def test_a_pod_enforces_its_part_of_the_fleet_wide_rate_and_takes_a_new_one_live(
    tmp_path: Path,
) -> None:
    shares = tmp_path / "shares.json"
    env = {"TTSFLEET_SHARES__FILE": str(shares), "TTSFLEET_LIMITS__CHARS_PER_MINUTE_PER_TOKEN": "100000"}
    with (
        running_emulator(tmp_path) as upstream,
        running_gateway(tmp_path, upstream, tmp_path / "a", env=env) as a,
    ):
        pod = a.status()["pod"]
        divide(shares, 1, pod, 100)  # the fleet's rate, divided: this pod's part is 100 a minute
        wait_for(lambda: a.status()["share"]["chars_per_minute_per_token"] == 100, 10.0, "the part read")
        async with await connect(a.target) as ws:
            await speak_and_flush(ws, SENTENCE)
            await ws.send(json.dumps({"type": "Speak", "text": SENTENCE}))
            assert await wait_closed(ws) == (1008, "DATA-0001")

        divide(shares, 2, pod, 10_000)  # fewer pods: a bigger part, no restart
        wait_for(
            lambda: (
                a.status()["share"]
                == {"revision": 2, "upstream_sockets": None, "chars_per_minute_per_token": 10_000}
            ),
            10.0,
            "the new part",
        )
        async with await connect(a.target) as ws:
            for _ in range(3):
                assert (await speak_and_flush(ws, SENTENCE)).audio
