"""End to end: the extension, configured only with `backend: <name>.<namespace>` and the fleet token,
speaks through the local fleet's Service to gateway pods the operator made.

In a cluster, DNS resolves `<name>.<namespace>.svc.cluster.local` and kube-proxy carries its port to a
ready pod. This machine has no cluster DNS, so the test process resolves exactly that name and port to
the address the local fleet's Service listens on (its balancer over the operator's pods); nothing else
about the extension's configuration or connection is changed.
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

import pytest

from ten_extension.deepgram_tts2_python import discovery
from tests.e2e.cluster import BACKENDS, Cluster, is_converged
from tests.e2e.conftest import BACKEND, NAME, NAMESPACE, SAMPLE_RATE, TOKEN, LocalFleet
from tests.e2e.conftest import cluster as cluster
from tests.e2e.conftest import local_fleet as local_fleet
from tests.support.recognition import TEST_PHRASES, recognise
from tests.ten_extension.harness import Harness
from ttsfleet.devcluster import fleet
from ttsfleet.protocol import Encoding

pytestmark = pytest.mark.slow

PHRASES = TEST_PHRASES[:3]


@pytest.fixture
def cluster_dns(local_fleet: LocalFleet, monkeypatch: pytest.MonkeyPatch) -> str:
    """The backend's in-cluster name and port resolve to its Service on this machine; returns the name."""
    in_cluster = urlsplit(discovery.service_base_url(BACKEND))
    service = urlsplit(fleet.read_services(local_fleet.state_dir)[BACKEND])
    resolve = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == in_cluster.hostname and str(port) == str(in_cluster.port):
            return resolve(service.hostname, service.port, *args, **kwargs)
        return resolve(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    assert in_cluster.hostname is not None
    return in_cluster.hostname


async def test_a_backend_name_and_the_fleet_token_are_all_the_extension_needs(
    cluster: Cluster,
    cluster_dns: str,
) -> None:
    backend = await cluster.get(f"{BACKENDS.format(namespace=NAMESPACE)}/{NAME}")
    assert backend is not None and is_converged(backend)
    assert backend["status"]["endpoint"].startswith(f"ws://{cluster_dns}:")

    async with Harness({"backend": BACKEND, "params": {"api_key": TOKEN}}) as tts:
        assert tts.ext.config is not None and tts.ext.config.endpoint == "backend"
        for index, phrase in enumerate(PHRASES):
            tts.text(f"e2e-{index}", phrase)
        views = await tts.wait_ends(len(PHRASES), deadline_s=60.0)

    assert not tts.data("error")
    assert [view.end["reason"] for view in views if view.end] == [1] * len(PHRASES)
    for view, phrase in zip(views, PHRASES, strict=True):
        assert {frame.frame.sample_rate for frame in view.frames if frame.frame} == {SAMPLE_RATE}
        audio = b"".join(frame.frame.get_buf() for frame in view.frames if frame.frame)
        assert recognise(audio, Encoding.LINEAR16, SAMPLE_RATE, TEST_PHRASES) == phrase
