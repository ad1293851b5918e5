"""Options the gateway adds itself: a usage tag naming the fleet token on REST, beside the client's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.dataplane.gateways import FLEET_TOKEN, RunningGateway, running_gateway
from tests.support.servers import ServerProcess
from ttsfleet.fingerprints import fingerprint_secret


@pytest.fixture(scope="module")
def tagging_gateway(
    process_logs: Path, module_emulator: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    env = {"TTSFLEET_SPEAK__TAG_TOKEN_OWNER": "true"}
    workdir = tmp_path_factory.mktemp("tagging-gateway")
    with running_gateway(process_logs, module_emulator, workdir, env=env, name="tagging-gateway") as gw:
        yield gw


def _upstream_queries(gateway: RunningGateway) -> list[list[list[str]]]:
    records = httpx.get(f"{gateway.upstream.base_url}/_emulator/requests", timeout=5.0).json()["requests"]
    return [record["query"] for record in records if record["transport"] == "rest"]


def test_rest_requests_carry_the_client_tags_and_one_naming_the_token(
    tagging_gateway: RunningGateway,
) -> None:
    response = httpx.post(
        f"{tagging_gateway.process.base_url}/v1/speak",
        params=[("encoding", "linear16"), ("tag", "team-a")],
        json={"text": "Tagged for the usage report."},
        headers=tagging_gateway.target.auth_headers,
        timeout=20.0,
    )
    assert response.status_code == 200
    tags = [value for name, value in _upstream_queries(tagging_gateway)[-1] if name == "tag"]
    assert tags == ["team-a", f"ttsfleet-token-{fingerprint_secret(FLEET_TOKEN)}"]
    assert FLEET_TOKEN not in str(tags)  # the token's id, never the token
