"""The node agent's kubelet-style /metrics/resource: the text metrics-server parses, figures read from
/proc for real processes, and the endpoint served over TLS to a client certificate of the cluster's CA."""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ttsfleet.devcluster.controlplane import pki
from ttsfleet.devcluster.nodeagent import resourcemetrics
from ttsfleet.devcluster.nodeagent.resourcemetrics import ContainerSample, PodProcessRef, Usage

NOW_MS = 1_764_662_400_000
GATEWAY = ContainerSample("voice", "aura-1", "gateway", Usage(12.5, 80 * 2**20), 1_764_662_000.0)
OTHER = ContainerSample("voice", "aura-2", "gateway", Usage(0.25, 60 * 2**20), 1_764_662_100.0)


def test_the_text_has_every_series_metrics_server_reads_with_labels_units_and_timestamps() -> None:
    text = resourcemetrics.render(Usage(1000.0, 2**31), [OTHER, GATEWAY], NOW_MS)
    families = {family.name: family for family in text_string_to_metric_families(text)}
    # prometheus_client drops the _total suffix of counters from family names.
    cpu = families["container_cpu_usage_seconds"].samples
    assert [(s.labels, s.value, s.timestamp) for s in cpu] == [
        ({"container": "gateway", "namespace": "voice", "pod": "aura-1"}, 12.5, NOW_MS / 1000),
        ({"container": "gateway", "namespace": "voice", "pod": "aura-2"}, 0.25, NOW_MS / 1000),
    ]
    memory = families["container_memory_working_set_bytes"].samples
    assert memory[0].value == 80 * 2**20
    assert families["container_start_time_seconds"].samples[0].value == GATEWAY.started_at_s
    assert families["node_cpu_usage_seconds"].samples[0].value == 1000.0
    assert families["node_memory_working_set_bytes"].samples[0].value == 2**31
    assert families["pod_cpu_usage_seconds"].samples[0].labels == {"namespace": "voice", "pod": "aura-1"}
    assert families["resource_scrape_error"].samples[0].value == 0
    assert "# TYPE container_cpu_usage_seconds_total counter" in text


def test_a_node_without_pods_still_reports_itself() -> None:
    text = resourcemetrics.render(Usage(5.0, 2**20), [], NOW_MS)
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {"node_cpu_usage_seconds", "node_memory_working_set_bytes"} <= names


@pytest.mark.parametrize(
    "command",
    [pytest.param("python3", id="plain"), pytest.param("we (ird) name", id="spaces-and-parentheses")],
)
def test_stat_lines_are_read_from_after_the_command_name(command: str) -> None:
    ticks = resourcemetrics.CLOCK_TICKS_PER_S
    fields = ["S", "1", "42", "42", "0", "-1", "4194304", "0", "0", "0", "0", "300", "100", "15", "5"]
    fields += ["20", "0", "1", "0", "5000", "1000000", "250"]
    line = f"42 ({command}) " + " ".join(fields) + " 0 0"
    stat = resourcemetrics.parse_stat(line)
    assert (stat.session, stat.start_ticks, stat.rss_pages) == (42, 5000, 250)
    assert stat.cpu_s == pytest.approx(400 / ticks)
    assert stat.reaped_children_cpu_s == pytest.approx(20 / ticks)


def test_node_usage_counts_busy_time_and_memory_in_use(tmp_path: Path) -> None:
    (tmp_path / "stat").write_text(
        "cpu  100 10 50 1000 40 5 5 0 30 0\ncpu0 1 2 3 4 5 6 7 8 9 10\nbtime 1700000000\n"
    )
    (tmp_path / "meminfo").write_text(
        "MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    400 kB\n"
    )
    usage = resourcemetrics.node_usage(tmp_path)
    # user+nice+system+irq+softirq+steal; idle and iowait are not busy, guest is already in user.
    assert usage.cpu_s == pytest.approx(170 / resourcemetrics.CLOCK_TICKS_PER_S)
    assert usage.memory_bytes == 600 * 1024


BURN = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end:\n    pass\n"
# A leader that starts a child, both burn CPU; the child exits and is reaped, the leader stays.
LEADER = f"""import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", {BURN!r}])
{BURN}
child.wait()
print("done", flush=True)
time.sleep(60)
"""


def test_a_pods_usage_sums_its_session_reaped_children_included_read_from_proc() -> None:
    leader = subprocess.Popen(
        [sys.executable, "-c", LEADER], start_new_session=True, stdout=subprocess.PIPE, text=True
    )
    try:
        assert leader.stdout is not None and leader.stdout.readline() == "done\n"
        usage, started_s = resourcemetrics.session_usage([leader.pid])[leader.pid]
        assert usage.cpu_s >= 0.55  # both burns: the reaped child's time stays counted
        assert usage.memory_bytes > 5 * 2**20  # a Python interpreter's resident set
        assert abs(resourcemetrics.boot_time_s() + started_s - time.time()) < 30
        _, containers = resourcemetrics.sample([PodProcessRef("voice", "p", "gateway", leader.pid)])
        assert [(c.pod, c.usage.cpu_s >= 0.55) for c in containers] == [("p", True)]
        # A pid that is gone is left out, not reported as zero.
        assert resourcemetrics.session_usage([2**22 + 1]) == {}
    finally:
        leader.kill()
        leader.wait()


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A process leading its own session, as the agent starts a pod's."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    yield process
    process.kill()
    process.wait()


@pytest.fixture
def cluster_pki(tmp_path: Path) -> pki.Pki:
    return pki.create(tmp_path / "pki")


async def test_the_endpoint_answers_a_client_of_the_cluster_ca_only(
    cluster_pki: pki.Pki, sleeper: subprocess.Popen[bytes]
) -> None:
    serving = pki.issue_serving(cluster_pki, "kubelet", "system:node:n", ("n",), ("127.0.0.1",))
    tls = resourcemetrics.server_tls(serving.certificate, serving.key, cluster_pki.ca.certificate)
    refs = [PodProcessRef("voice", "me", "gateway", sleeper.pid)]
    server = resourcemetrics.ResourceMetricsServer(tls, lambda: refs, lambda: NOW_MS)
    await server.start()
    try:
        client_pair = pki.issue_client(cluster_pki, "metrics", "system:metrics-server")
        context = ssl.create_default_context(cafile=str(cluster_pki.ca.certificate))
        context.load_cert_chain(str(client_pair.certificate), str(client_pair.key))
        url = f"https://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(verify=context, trust_env=False) as http:
            response = await http.get(f"{url}{resourcemetrics.PATH}")
            assert response.status_code == 200
            assert 'pod="me"' in response.text
            assert (await http.get(f"{url}/metrics/cadvisor")).status_code == 404
        anonymous = ssl.create_default_context(cafile=str(cluster_pki.ca.certificate))
        async with httpx.AsyncClient(verify=anonymous, trust_env=False) as http:
            with pytest.raises(httpx.TransportError):
                await http.get(f"{url}{resourcemetrics.PATH}")
    finally:
        await server.close()


def test_the_node_reports_the_endpoints_port_where_metrics_server_looks() -> None:
    assert resourcemetrics.daemon_endpoints(10250) == {
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}
    }
