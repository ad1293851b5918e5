"""The kubelet's resource metrics endpoint (`/metrics/resource`), for the pods this agent runs.

metrics-server scrapes it on the port the Node reports in `status.daemonEndpoints.kubeletEndpoint`,
over TLS, presenting a client certificate of the cluster's CA. The series and units are the kubelet's
(cumulative CPU core-seconds, working-set bytes, container start time, millisecond timestamps); the
figures come from /proc: a pod's CPU and memory are those of every process in its session (the pod's
process starts one), memory as resident set size (the kubelet's working set also subtracts inactive file
pages; a process without a memory cgroup has no such split).
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

PATH = "/metrics/resource"
PROC = Path("/proc")
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
READ_TIMEOUT_S = 10.0
MAX_HEADER_BYTES = 16384


@dataclass(frozen=True, slots=True)
class Usage:
    """Cumulative CPU seconds and current memory bytes of a process group or the node."""

    cpu_s: float
    memory_bytes: int


@dataclass(frozen=True, slots=True)
class ContainerSample:
    """One container's usage at one moment."""

    namespace: str
    pod: str
    container: str
    usage: Usage
    started_at_s: float  # Unix seconds


@dataclass(frozen=True, slots=True)
class PodProcessRef:
    """What the agent knows of a running pod's container: names and the pid that leads its session."""

    namespace: str
    pod: str
    container: str
    pid: int


def _labels(sample: ContainerSample) -> str:
    return f'container="{sample.container}",namespace="{sample.namespace}",pod="{sample.pod}"'


def render(node: Usage, containers: Sequence[ContainerSample], now_ms: int) -> str:
    """The endpoint's body in the Prometheus text format, as the kubelet writes it."""
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str, series: Iterable[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} [STABLE] {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{name}{labels} {value!r} {now_ms}" for labels, value in series)

    ordered = sorted(containers, key=lambda c: (c.namespace, c.pod, c.container))
    family(
        "container_cpu_usage_seconds_total",
        "counter",
        "Cumulative cpu time consumed by the container in core-seconds",
        ((f"{{{_labels(c)}}}", c.usage.cpu_s) for c in ordered),
    )
    family(
        "container_memory_working_set_bytes",
        "gauge",
        "Current working set of the container in bytes",
        ((f"{{{_labels(c)}}}", float(c.usage.memory_bytes)) for c in ordered),
    )
    family(
        "container_start_time_seconds",
        "gauge",
        "Start time of the container since unix epoch in seconds",
        ((f"{{{_labels(c)}}}", c.started_at_s) for c in ordered),
    )
    family(
        "node_cpu_usage_seconds_total",
        "counter",
        "Cumulative cpu time consumed by the node in core-seconds",
        (("", node.cpu_s),),
    )
    family(
        "node_memory_working_set_bytes",
        "gauge",
        "Current working set of the node in bytes",
        (("", float(node.memory_bytes)),),
    )
    pods: dict[tuple[str, str], Usage] = {}
    for c in ordered:
        before = pods.get((c.namespace, c.pod), Usage(0.0, 0))
        pods[(c.namespace, c.pod)] = Usage(
            before.cpu_s + c.usage.cpu_s, before.memory_bytes + c.usage.memory_bytes
        )
    family(
        "pod_cpu_usage_seconds_total",
        "counter",
        "Cumulative cpu time consumed by the pod in core-seconds",
        ((f'{{namespace="{ns}",pod="{pod}"}}', usage.cpu_s) for (ns, pod), usage in pods.items()),
    )
    family(
        "pod_memory_working_set_bytes",
        "gauge",
        "Current working set of the pod in bytes",
        (
            (f'{{namespace="{ns}",pod="{pod}"}}', float(usage.memory_bytes))
            for (ns, pod), usage in pods.items()
        ),
    )
    family(
        "resource_scrape_error",
        "gauge",
        "1 if there was an error while getting container metrics, 0 otherwise",
        (("", 0.0),),
    )
    return "\n".join(lines) + "\n"


# -- /proc -----------------------------------------------------------------------------------------


class ProcessStat(NamedTuple):
    """The fields of /proc/<pid>/stat a pod's usage is made of."""

    session: int
    cpu_s: float  # user and system time of the process itself
    reaped_children_cpu_s: float  # of children it has waited for (a cgroup keeps counting those)
    start_ticks: int  # clock ticks after boot
    rss_pages: int


def parse_stat(text: str) -> ProcessStat:
    """Read /proc/<pid>/stat; the command name may hold spaces and parentheses, so fields count from
    the last `)` (proc(5): session is field 6, utime 14, stime 15, cutime 16, cstime 17, starttime 22,
    rss 24)."""
    fields = text[text.rindex(")") + 2 :].split()

    def field(number: int) -> int:
        return int(fields[number - 3])  # the list starts at field 3 (state)

    return ProcessStat(
        session=field(6),
        cpu_s=(field(14) + field(15)) / CLOCK_TICKS_PER_S,
        reaped_children_cpu_s=(field(16) + field(17)) / CLOCK_TICKS_PER_S,
        start_ticks=field(22),
        rss_pages=field(24),
    )


def boot_time_s(proc: Path = PROC) -> float:
    for line in (proc / "stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise RuntimeError("no btime in /proc/stat")


def node_usage(proc: Path = PROC) -> Usage:
    """The machine's busy CPU seconds (all but idle and iowait) and memory in use (total - available)."""
    first = (proc / "stat").read_text().splitlines()[0].split()
    # user nice system idle iowait irq softirq steal; guest time is already counted in user and nice.
    ticks = [int(value) for value in first[1:9]]
    busy = sum(ticks) - ticks[3] - ticks[4]
    memory = {}
    for line in (proc / "meminfo").read_text().splitlines():
        name, _, rest = line.partition(":")
        memory[name] = int(rest.split()[0]) * 1024
    return Usage(busy / CLOCK_TICKS_PER_S, memory["MemTotal"] - memory["MemAvailable"])


def session_usage(leaders: Iterable[int], proc: Path = PROC) -> dict[int, tuple[Usage, float]]:
    """For each session leader pid: the summed usage of the processes in its session, and the leader's
    start time in seconds after boot. The leader's reaped children count too, so the CPU figure does
    not fall when a worker exits (it is a counter); processes that exit while being read are skipped."""
    wanted = set(leaders)
    totals: dict[int, tuple[float, int]] = {}
    started: dict[int, float] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = parse_stat((entry / "stat").read_text())
        except (OSError, ValueError, IndexError):
            continue
        if stat.session not in wanted:
            continue
        cpu_s = stat.cpu_s
        if int(entry.name) == stat.session:
            started[stat.session] = stat.start_ticks / CLOCK_TICKS_PER_S
            cpu_s += stat.reaped_children_cpu_s
        cpu, memory = totals.get(stat.session, (0.0, 0))
        totals[stat.session] = (cpu + cpu_s, memory + stat.rss_pages * PAGE_BYTES)
    return {
        leader: (Usage(*totals[leader]), started[leader])
        for leader in wanted
        if leader in totals and leader in started
    }


def sample(refs: Sequence[PodProcessRef], proc: Path = PROC) -> tuple[Usage, list[ContainerSample]]:
    """The node's usage and each running container's, read now."""
    boot = boot_time_s(proc)
    usage = session_usage((ref.pid for ref in refs), proc)
    containers = [
        ContainerSample(ref.namespace, ref.pod, ref.container, usage[ref.pid][0], boot + usage[ref.pid][1])
        for ref in refs
        if ref.pid in usage
    ]
    return node_usage(proc), containers


# -- serving ---------------------------------------------------------------------------------------


def _response(status: str, body: str, content_type: str = "text/plain; version=0.0.4") -> bytes:
    payload = body.encode()
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(payload)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + payload


@dataclass
class ResourceMetricsServer:
    """Serves `/metrics/resource` over TLS on a loopback port; `refs` lists the running containers."""

    tls: ssl.SSLContext
    refs: Callable[[], Sequence[PodProcessRef]]
    clock_ms: Callable[[], int]
    host: str = "127.0.0.1"
    _server: asyncio.Server | None = None
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("not serving")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, 0, ssl=self.tls)

    async def close(self) -> None:
        """Stop listening and end the scrapes in flight."""
        if self._server is not None:
            self._server.close()
        for handler in list(self._handlers):
            handler.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > MAX_HEADER_BYTES:
                raise ValueError("request head too long")
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            path = target.split("?", 1)[0]
            if method != "GET":
                writer.write(_response("405 Method Not Allowed", "only GET\n"))
            elif path != PATH:
                writer.write(_response("404 Not Found", f"only {PATH} is served here\n"))
            else:
                node, containers = await asyncio.to_thread(sample, list(self.refs()))
                writer.write(_response("200 OK", render(node, containers, self.clock_ms())))
            await writer.drain()
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass  # a client that went away or spoke no HTTP: nothing to answer
        except asyncio.CancelledError:
            # close() ends scrapes in flight; the handler ends quietly, because Python 3.11's streams
            # report a cancelled connection handler as an error of the event loop.
            pass
        finally:
            self._handlers.discard(handler)
            writer.close()  # the transport finishes the TLS close on its own; nothing to wait for


def daemon_endpoints(port: int) -> dict[str, object]:
    """The Node status field that tells metrics-server where the kubelet endpoint listens."""
    return {"daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}


def server_tls(certificate: Path, key: Path, client_ca: Path) -> ssl.SSLContext:
    """TLS that presents the node's serving certificate and asks every client for a certificate of the
    cluster's CA (metrics-server's kubelet client certificate), as a kubelet without anonymous access."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(client_ca))
    context.load_cert_chain(str(certificate), str(key))
    context.verify_mode = ssl.CERT_REQUIRED
    return context
