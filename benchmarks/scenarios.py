"""The side-by-side scenarios of issue 7, all against one emulator with its realistic latency model.

direct_persistent: each session holds its own emulator socket (today's TEN extension); direct_cold: a new
socket per utterance; nginx_proxy: the same persistent sessions through nginx, the floor for any hop;
gateway_warm: persistent sessions through the gateway, cache off; gateway_cold: a new gateway socket per
utterance (a new session's first utterance); gateway_cache_hit: every sentence already cached;
gateway_faults: gateway_warm while the emulator's global faults refuse, close, reset and slow new sockets.
Only when named: gateway_warm_lead_off, gateway_warm with `pool.spare_lead_s` 0 (spares follow only the
peak of leased sockets), to compare the spare policies in one run; gateway_warm_floor, gateway_warm with
a warm minimum sized for a crowd starting at once (`WARM_FLOOR`), ready only once those are open.

Each scenario starts its own proxy process (gateway or nginx, pinned to CPU 0 beside the emulator), runs
the levels in ascending order, and stops it, so CPU seconds and peak RSS belong to that scenario alone.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import math
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from benchmarks import loadgen, processes
from benchmarks.loadgen import LevelRecord, SessionPlan
from benchmarks.processes import Server
from ttsfleet.dataplane import sockets
from ttsfleet.dataplane.settings import PoolSettings
from ttsfleet.protocol import SocketLimits

Via = Literal["direct", "nginx", "gateway"]

# The pool ceiling is raised above the default 64 so that 2,000 sessions measure the WebSocket path (their
# Flush budget alone needs ~300 sockets a minute), and the session ceiling above the 2,000 of the largest
# level; the socket ratio comes from what the pool actually opens, not from this ceiling. Every session
# of a level connects at the same moment (a pod behind a Service sees them arrive over time), so the
# bound on connections still sending their request head is raised above the largest level too. At its
# default (512) a 1,000-session onset is served whole since idle means a second old with nothing unread
# (it reset 488 before); the one load generator of 2,000 sessions may take longer to write its requests.
POOL_MAX_SOCKETS = 512
GATEWAY_BASE_SETTINGS = {
    "TTSFLEET_POOL__MAX_SOCKETS": str(POOL_MAX_SOCKETS),
    "TTSFLEET_LIMITS__MAX_SESSIONS": "2100",
    "TTSFLEET_CONNECTIONS__MAX_PENDING": "2100",
    "TTSFLEET_LOGGING__LEVEL": "INFO",
}
NO_CACHE = {"TTSFLEET_CACHE__ENABLED": "false"}
# gateway_warm_floor's warm minimum: ~50 new utterances a second (1,000 agents at 10 % speaking) times
# the emulator's 150 ms handshake, plus a few, so that a crowd's first handshake finds sockets open.
WARM_FLOOR = 12
AGENT_SPEAKING_SHARE = 0.10
# The emulator keeps its latency model while its first frames leave at most this late (p99): beyond it,
# a level measures the emulator's saturation rather than the gateway, and is flagged.
EMULATOR_LATE_P99_MS = 5.0
FAULT_INTERVAL_S = 1.0
# An utterance whose first byte came this much later than the level's median waited for something of a
# handshake's size (150 ms in the emulator's model): counted with the moment it began, to tell a cold
# start (all in the first seconds) from budgets running out (spread over the level).
SLOW_TTFB_MARGIN_MS = 100.0
RAMP_S = 5.0
# Posted every FAULT_INTERVAL_S; each spec hits only the next `count` new upstream sockets, so the
# gateway meets refusals, mid-life closes, resets and slow sockets while it keeps serving.
FAULT_MIX = (
    "refuse:status=503:count=1",
    "refuse:status=429:count=1",
    "close:reason=NET-0000:after_ms=1500:count=2",
    "reset:after_ms=2500:count=1",
    "slow:frame_delay_ms=20:count=1",
)


@dataclass(frozen=True, slots=True)
class Scenario:
    """One way for agents to reach the emulator."""

    name: str
    via: Via
    cold: bool = False
    gateway_settings: Mapping[str, str] = field(default_factory=dict)
    prime_cache: bool = False
    faults: bool = False
    scale: bool = False  # also runs the levels beyond 500 sessions (run.SCALE_LEVELS)
    by_name_only: bool = False  # left out of a run that names no scenarios


SCENARIOS = (
    Scenario("direct_persistent", "direct", scale=True),
    Scenario("direct_cold", "direct", cold=True),
    Scenario("nginx_proxy", "nginx", scale=True),
    Scenario("gateway_warm", "gateway", gateway_settings=NO_CACHE, scale=True),
    Scenario(
        "gateway_warm_lead_off",
        "gateway",
        gateway_settings={**NO_CACHE, "TTSFLEET_POOL__SPARE_LEAD_S": "0"},
        scale=True,
        by_name_only=True,
    ),
    Scenario(
        "gateway_warm_floor",
        "gateway",
        gateway_settings={**NO_CACHE, "TTSFLEET_POOL__WARM_MIN_PER_KEY": str(WARM_FLOOR)},
        scale=True,
        by_name_only=True,
    ),
    Scenario("gateway_cold", "gateway", cold=True, gateway_settings=NO_CACHE),
    Scenario("gateway_cache_hit", "gateway", prime_cache=True),
    Scenario("gateway_faults", "gateway", gateway_settings=NO_CACHE, faults=True),
)


def busiest_window(earlier: Sequence[float], own: Sequence[float], window_s: float) -> int:
    """The most events in any `window_s` that ends at one of `own`'s events, `earlier` ones included."""
    times = sorted((*earlier, *own))
    return max(
        (bisect.bisect_right(times, at) - bisect.bisect_right(times, at - window_s) for at in own),
        default=0,
    )


@dataclass
class LevelResult:
    """One scenario at one concurrency level: the load generator's record and the processes' figures."""

    scenario: str
    speaking_share: float
    duration_s: float
    record: LevelRecord
    upstream_sockets_max: int = 0
    proxy_cpu_s: float | None = None
    # The proxy's CPU seconds at the level's RAMP_S and at its stop: the steady part (every session
    # connected) apart from the connect storm, which a short level would otherwise spread over its audio.
    proxy_cpu_at_ramp_s: float | None = None
    proxy_cpu_at_stop_s: float | None = None
    proxy_rss_peak_mb: float | None = None
    emulator_cpu_percent: float = 0.0
    emulator_first_byte_late_ms: Mapping[str, float] = field(default_factory=dict)
    faults_applied: int = 0
    handshakes_on_demand: int | None = None  # the gateway's upstream handshakes an utterance waited for
    lease_waits: int | None = None  # the gateway's leases that waited for any socket
    # When the same proxy's earlier levels sent their Flushes (`time.perf_counter()`): within a minute
    # they still hold the budget of the sockets they went through.
    earlier_flush_at: tuple[float, ...] = ()

    @property
    def emulator_kept_its_model(self) -> bool:
        late = self.emulator_first_byte_late_ms.get("p99")
        return late is not None and late <= EMULATOR_LATE_P99_MS

    @property
    def audio_minutes(self) -> float:
        return self.record.audio_bytes / loadgen.AUDIO_BYTES_PER_S / 60

    def audio_minutes_begun(self, from_s: float, before_s: float) -> float:
        """Audio of the utterances begun from `from_s` to before `before_s` into the level."""
        within = zip(self.record.audio_bytes_each, self.record.started_s, strict=True)
        audio = sum(size for size, at in within if from_s <= at < before_s)
        return audio / loadgen.AUDIO_BYTES_PER_S / 60

    @property
    def steady_audio_minutes(self) -> float:
        """Audio of the utterances begun between RAMP_S and the level's stop."""
        return self.audio_minutes_begun(RAMP_S, self.duration_s)

    def steady_cpu_per_audio_minute(self) -> float | None:
        """The proxy's CPU per audio minute once every session is connected (RAMP_S to the stop)."""
        if self.proxy_cpu_at_ramp_s is None or self.proxy_cpu_at_stop_s is None:
            return None
        minutes = self.steady_audio_minutes
        return (self.proxy_cpu_at_stop_s - self.proxy_cpu_at_ramp_s) / minutes if minutes > 0 else None

    def connect_cpu_ms_per_session(self) -> float | None:
        """The ramp's CPU beyond what its own audio costs at the steady rate, per session: what one
        session's connect costs the proxy (an estimate: the ramp's speaking is taken as steady)."""
        steady = self.steady_cpu_per_audio_minute()
        if steady is None or self.proxy_cpu_at_ramp_s is None:
            return None
        beyond = self.proxy_cpu_at_ramp_s - steady * self.audio_minutes_begun(0.0, RAMP_S)
        return max(0.0, beyond) * 1000 / self.record.sessions

    @property
    def flush_at(self) -> tuple[float, ...]:
        """When this level's utterances sent their Flush (one each), on `time.perf_counter()`."""
        return tuple(self.record.began_perf + at for at in self.record.started_s)

    @property
    def flushes_per_minute(self) -> float:
        """Flushes in the busiest budget window (a minute) that ends within this level, counting the
        earlier levels' Flushes still inside it."""
        return busiest_window(self.earlier_flush_at, self.flush_at, SocketLimits().window_s)

    @property
    def flush_floor_sockets(self) -> int:
        """Deepgram's per-socket Flush budget for this level: ⌈Flushes a minute ÷ 20⌉, plus the pool's
        spare share of the utterances in flight (Little's law: utterance seconds ÷ wall seconds)."""
        busy = sum(self.record.utterance_ms) / 1000 / self.record.wall_s if self.record.wall_s else 0.0
        spares = sockets.spare_target(math.ceil(busy - 1e-9), PoolSettings(max_sockets=POOL_MAX_SOCKETS))
        return sockets.flush_floor(self.flushes_per_minute, SocketLimits()) + spares

    def summary(self) -> dict[str, Any]:
        record = self.record
        cpu_per_minute = (
            self.proxy_cpu_s / self.audio_minutes
            if self.proxy_cpu_s is not None and self.audio_minutes > 0
            else None
        )
        return {
            "sessions": record.sessions,
            "speaking_share": self.speaking_share,
            "duration_s": self.duration_s,
            "wall_s": round(record.wall_s, 2),
            "utterances": record.utterances,
            "errors": record.errors,
            "error_kinds": dict(record.error_kinds),
            "ttfb_ms": distribution(record.ttfb_ms),
            "ttfb_after_ramp_ms": distribution(
                [ttfb for ttfb, at in zip(record.ttfb_ms, record.started_s, strict=True) if at >= RAMP_S]
            ),
            "session_setup_ms": distribution(record.setup_ms),
            "utterance_ms": distribution(record.utterance_ms),
            "frame_gap_ms": distribution(record.gap_ms),
            "audio_s": round(record.audio_bytes / loadgen.AUDIO_BYTES_PER_S, 1),
            "upstream_sockets_max": self.upstream_sockets_max,
            "flushes_per_minute": round(self.flushes_per_minute),
            "flush_floor_sockets": self.flush_floor_sockets,
            "proxy_cpu_s": _rounded(self.proxy_cpu_s, 3),
            "proxy_cpu_s_per_audio_minute": _rounded(cpu_per_minute, 4),
            "proxy_cpu_s_per_audio_minute_steady": _rounded(self.steady_cpu_per_audio_minute(), 4),
            "proxy_connect_cpu_ms_per_session": _rounded(self.connect_cpu_ms_per_session(), 3),
            "proxy_rss_peak_mb": _rounded(self.proxy_rss_peak_mb, 1),
            "emulator_cpu_percent": round(self.emulator_cpu_percent, 1),
            "emulator_first_byte_late_ms": dict(self.emulator_first_byte_late_ms),
            "emulator_kept_its_model": self.emulator_kept_its_model,
            "faults_applied": self.faults_applied,
            "handshakes_on_demand": self.handshakes_on_demand,
            "lease_waits": self.lease_waits,
            "slow_ttfb": slow_utterances(record.ttfb_ms, record.started_s),
        }


def slow_utterances(ttfb_ms: list[float], started_s: list[float]) -> dict[str, Any]:
    """The utterances whose first byte came a handshake's worth after the level's median: how many,
    how many of them began in the level's first RAMP_S seconds, and how many began in each second."""
    threshold = percentile(ttfb_ms, 0.50) + SLOW_TTFB_MARGIN_MS if ttfb_ms else math.inf
    starts = sorted(at for ttfb, at in zip(ttfb_ms, started_s, strict=True) if ttfb > threshold)
    per_second = collections.Counter(str(int(at)) for at in starts)
    return {
        "count": len(starts),
        "in_ramp": sum(at < RAMP_S for at in starts),
        "per_second": dict(sorted(per_second.items(), key=lambda item: int(item[0]))),
    }


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def distribution(values: list[float]) -> dict[str, float | int | None]:
    return {
        "count": len(values),
        "p50": _rounded(percentile(values, 0.50), 2),
        "p95": _rounded(percentile(values, 0.95), 2),
        "p99": _rounded(percentile(values, 0.99), 2),
        "max": _rounded(max(values), 2) if values else None,
    }


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None or math.isnan(value) else round(value, digits)


def speaking_share(sessions: int) -> float:
    """A lone session speaks back to back (latency at rest); crowds speak like agents, 10 % of the time."""
    return 1.0 if sessions == 1 else AGENT_SPEAKING_SHARE


def tokens(count: int) -> list[str]:
    """One fleet token per session, so per-token character budgets never bind."""
    return [f"bench-token-{index:04d}" for index in range(count)]


@contextlib.contextmanager
def proxy_for(
    scenario: Scenario, emulator: Server, workdir: Path, max_sessions: int
) -> Iterator[Server | None]:
    if scenario.via == "direct":
        yield None
    elif scenario.via == "nginx":
        with processes.nginx(workdir / scenario.name, emulator) as server:
            yield server
    else:
        settings = {**GATEWAY_BASE_SETTINGS, **scenario.gateway_settings}
        with processes.gateway(workdir / scenario.name, emulator, tokens(max_sessions), settings) as server:
            yield server


async def _emulator_json(
    client: httpx.AsyncClient, emulator: Server, method: str, path: str, body: Any = None
) -> Any:
    response = await client.request(method, emulator.base_url + path, json=body, timeout=10)
    response.raise_for_status()
    return response.json()


@contextlib.asynccontextmanager
async def _fault_mix(client: httpx.AsyncClient, emulator: Server, enabled: bool) -> AsyncIterator[None]:
    """Keep posting the fault mix while the block runs; clear every global fault after it."""
    if not enabled:
        yield
        return

    async def post_forever() -> None:
        while True:
            await _emulator_json(client, emulator, "POST", "/_emulator/faults", {"faults": list(FAULT_MIX)})
            await asyncio.sleep(FAULT_INTERVAL_S)

    poster = asyncio.create_task(post_forever(), name="scenarios:fault-mix")
    try:
        yield
    finally:
        poster.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poster
        await _emulator_json(client, emulator, "POST", "/_emulator/faults", {"faults": []})


async def wait_for_warm_pool(client: httpx.AsyncClient, gateway: Server, timeout_s: float = 10.0) -> None:
    """Wait until the gateway is ready (its default key's warm minimum has opened) and holds a socket."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        status = (await client.get(gateway.base_url + "/statusz", timeout=5)).json()
        if status["ready"] and status["upstream"]["open_sockets"] >= 1:
            return
        await asyncio.sleep(0.05)  # polling the gateway's own document, with a deadline
    raise RuntimeError(f"the gateway opened no upstream socket in {timeout_s} s; see {gateway.log_path}")


async def _waits(client: httpx.AsyncClient, gateway: Server | None) -> tuple[int | None, int | None]:
    """The gateway's counts (`/statusz`) of upstream handshakes an utterance waited for, and of leases
    that waited for any socket (a spare's handshake in flight included); None: an older gateway."""
    if gateway is None:
        return None, None
    upstream = (await client.get(gateway.base_url + "/statusz", timeout=5)).json()["upstream"]
    opened = upstream.get("opened")
    waits = upstream.get("lease_waits")
    return (int(opened["on_demand"]) if opened is not None else None), (
        int(waits) if waits is not None else None
    )


async def _prime_cache(url: str, token: str) -> None:
    """Speak every sentence once through the gateway so that later utterances are cache hits."""
    plan = SessionPlan(url=url, speaking_share=1.0, duration_s=60, max_utterances=len(loadgen.SENTENCES))
    record = await loadgen.run_level(plan, [token])
    if record.errors or record.utterances < len(loadgen.SENTENCES):
        raise RuntimeError(f"priming the cache failed: {dict(record.error_kinds)}")


async def _mark_cpu(pid: int, at_s: tuple[float, ...], marks: list[float]) -> None:
    """The process's CPU seconds at each of `at_s` seconds from now (a level's timeline, not a wait
    for anything: the level runs on its own meanwhile)."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    for offset in at_s:
        await asyncio.sleep(max(0.0, began + offset - loop.time()))
        marks.append(processes.cpu_seconds(pid))


async def run_level(
    scenario: Scenario,
    emulator: Server,
    proxy: Server | None,
    sessions: int,
    duration_s: float,
    client: httpx.AsyncClient,
    earlier_flush_at: tuple[float, ...] = (),
) -> LevelResult:
    """One level of one scenario, with the processes' CPU, RSS and the emulator's socket peak around it."""
    url = proxy.ws_url if proxy is not None else emulator.ws_url
    share = speaking_share(sessions)
    plan = SessionPlan(
        url=url, speaking_share=share, duration_s=duration_s, cold=scenario.cold, seed=sessions
    )
    await _emulator_json(client, emulator, "POST", "/_emulator/reset")
    emulator_cpu_before = processes.cpu_seconds(emulator.pid)
    proxy_cpu_before = processes.cpu_seconds(proxy.pid) if proxy else None
    before = await _waits(client, proxy) if scenario.via == "gateway" else (None, None)
    cpu_marks: list[float] = []
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(_fault_mix(client, emulator, scenario.faults))
        if proxy is not None and duration_s > 2 * RAMP_S:
            # Entered last, so it is left first: a level that fails takes no marking task with it.
            marking = await stack.enter_async_context(asyncio.TaskGroup())
            marking.create_task(_mark_cpu(proxy.pid, (RAMP_S, duration_s), cpu_marks))
        record = await loadgen.run_level(plan, tokens(sessions))
    after = await _waits(client, proxy) if scenario.via == "gateway" else (None, None)
    stats = await _emulator_json(client, emulator, "GET", "/_emulator/stats")
    result = LevelResult(
        scenario=scenario.name,
        speaking_share=share,
        duration_s=duration_s,
        record=record,
        upstream_sockets_max=int(stats["peak_open_sockets"]),
        emulator_cpu_percent=100
        * (processes.cpu_seconds(emulator.pid) - emulator_cpu_before)
        / record.wall_s,
        emulator_first_byte_late_ms=stats.get("first_byte_late_ms", {}),
        faults_applied=sum(int(v) for v in stats.get("faults_applied", {}).values()),
        earlier_flush_at=earlier_flush_at,
    )
    if before[0] is not None and after[0] is not None:
        result.handshakes_on_demand = after[0] - before[0]
    if before[1] is not None and after[1] is not None:
        result.lease_waits = after[1] - before[1]
    if proxy is not None and proxy_cpu_before is not None:
        result.proxy_cpu_s = processes.cpu_seconds(proxy.pid) - proxy_cpu_before
        if len(cpu_marks) == 2:
            result.proxy_cpu_at_ramp_s, result.proxy_cpu_at_stop_s = (m - proxy_cpu_before for m in cpu_marks)
        result.proxy_rss_peak_mb = processes.peak_rss_mb(proxy.pid)
    return result


async def run_scenario(
    scenario: Scenario,
    emulator: Server,
    levels: Mapping[int, float],
    workdir: Path,
    client: httpx.AsyncClient,
) -> list[LevelResult]:
    """Every level of `scenario` (sessions → seconds), ascending, with one proxy process for all of them."""
    results = []
    with proxy_for(scenario, emulator, workdir, max(levels)) as proxy:
        if scenario.via == "gateway" and proxy is not None:
            await wait_for_warm_pool(client, proxy)
        if scenario.prime_cache and proxy is not None:
            await _prime_cache(proxy.ws_url, tokens(1)[0])
        flush_at: tuple[float, ...] = ()
        for sessions in sorted(levels):
            result = await run_level(scenario, emulator, proxy, sessions, levels[sessions], client, flush_at)
            flush_at += result.flush_at
            results.append(result)
            summary = result.summary()
            print(
                f"{scenario.name:18} {sessions:4} sessions: ttfb p50/p95/p99 "
                f"{summary['ttfb_ms']['p50']}/{summary['ttfb_ms']['p95']}/"
                f"{summary['ttfb_ms']['p99']} ms, {result.record.utterances} utterances, "
                f"{result.record.errors} errors, upstream sockets {result.upstream_sockets_max} "
                f"(Flush floor {result.flush_floor_sockets}), "
                f"emulator late p99 {result.emulator_first_byte_late_ms.get('p99')} ms, "
                f"slow first bytes {summary['slow_ttfb']['count']} ({summary['slow_ttfb']['in_ramp']} in "
                f"the first {RAMP_S:g} s), after it p95/p99 {summary['ttfb_after_ramp_ms']['p95']}/"
                f"{summary['ttfb_after_ramp_ms']['p99']} ms, session setup p50/p99 "
                f"{summary['session_setup_ms']['p50']}/{summary['session_setup_ms']['p99']} ms, "
                f"handshakes on demand {result.handshakes_on_demand}, leases waited {result.lease_waits}, "
                f"CPU s / audio min {summary['proxy_cpu_s_per_audio_minute']} (steady "
                f"{summary['proxy_cpu_s_per_audio_minute_steady']}, connect "
                f"{summary['proxy_connect_cpu_ms_per_session']} ms a session)"
                + ("" if result.emulator_kept_its_model else " (EMULATOR SATURATED: not the gateway's)"),
                flush=True,
            )
    return results
