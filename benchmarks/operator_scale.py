"""The operator at scale: API calls per reconcile and per idle backend, memory, and time to converge.

The embedded API (`ttsfleet.devcluster.apiserver`) runs in this process and records every request in
its audit log; the operator runs as its own process (`ttsfleet operator --api-server URL`), as in a
cluster, so its RSS is its own. There are no pods (nothing runs the Deployments), so a probe tick costs
its API reads but no /statusz requests. Phases:

1. create N backends (probes effectively off) and wait until every status has observedGeneration:
   time to converge, calls per first reconcile (kopf's bookkeeping included), operator RSS;
2. change every spec: calls per update reconcile;
3. restart the operator with `--probe-interval-s P`: calls per resume (no-op) reconcile;
4. leave it idle for `--idle-ticks` probe intervals: calls per probe tick (counted exactly with the
   operator's `ttsfleet_operator_status_refreshes_total`), extrapolated per backend per hour at the
   default 10 s interval, and RSS again.

    python -m benchmarks.operator_scale [--backends 200] [--probe-interval-s 1] [--idle-ticks 10]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from benchmarks import waiting
from ttsfleet.devcluster import manifests, ports
from ttsfleet.devcluster.apiserver import ApiServer, running_apiserver
from ttsfleet.operator import crd

NAMESPACE = "bench"
BACKENDS = f"/apis/ttsfleet.io/v1alpha1/namespaces/{NAMESPACE}/ttsbackends"
OPERATOR_AGENTS = ("ttsfleet-operator/", "kopf/")
DEFAULT_PROBE_INTERVAL_S = 10.0
SECONDS_PER_HOUR = 3600.0
# Probes "off" for the reconcile phases: the first tick comes one interval after a backend appears.
PROBES_OFF_S = 86_400.0
MERGE = {"Content-Type": "application/merge-patch+json"}
POLL_S = 0.5  # hundreds of backends are listed on each check


def _backend(index: int) -> dict[str, Any]:
    return manifests.backend(f"tts-{index:04d}", replicas=2)


class Operator:
    """`ttsfleet operator` as a child process, with its /metrics on a free port."""

    def __init__(self, api_url: str, probe_interval_s: float) -> None:
        self.metrics_port = ports.free_port()
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        command = [
            sys.executable,
            "-m",
            "ttsfleet",
            "operator",
            "--api-server",
            api_url,
            "--namespace",
            NAMESPACE,
            "--probe-interval-s",
            str(probe_interval_s),
            "--metrics-port",
            str(self.metrics_port),
            "--log-level",
            "INFO" if os.environ.get("BENCH_OPERATOR_LOG") else "WARNING",
        ]
        log = os.environ.get("BENCH_OPERATOR_LOG")  # a file for the operator's log; discarded by default
        self._log = Path(log).open("ab") if log else subprocess.DEVNULL  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(command, env=env, cwd="/", stdout=self._log, stderr=self._log)

    def rss_mib(self, field: str = "VmRSS") -> float:
        """The process's resident set size now (VmRSS) or at its peak (VmHWM), in MiB."""
        text = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
        return int(match.group(1)) / 1024 if match else float("nan")

    async def metric(self, name: str, labels: str = "") -> float:
        """A sample of the operator's metrics (0 when absent or not serving yet)."""
        try:
            async with httpx.AsyncClient(timeout=2.0) as http:
                text = (await http.get(f"http://127.0.0.1:{self.metrics_port}/metrics")).text
        except httpx.HTTPError:
            return 0.0
        pattern = rf"^{re.escape(name)}{re.escape(labels)} ([0-9.e+]+)$"
        match = re.search(pattern, text, re.MULTILINE)
        return float(match.group(1)) if match else 0.0

    def stop(self) -> None:
        """SIGTERM, then wait for kopf's graceful exit."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if not isinstance(self._log, int):
            self._log.close()


async def _converged(api: httpx.AsyncClient, count: int) -> bool:
    items = (await api.get(BACKENDS)).json().get("items") or []
    done = sum(
        (item.get("status") or {}).get("observedGeneration") == item["metadata"]["generation"]
        for item in items
    )
    return done >= count


def _operator_calls(server: ApiServer) -> collections.Counter[str]:
    """Operator requests since the last reset, by `verb resource[/subresource]`."""
    counts: collections.Counter[str] = collections.Counter()
    for record in server.audit.records():
        if not record.user_agent.startswith(OPERATOR_AGENTS):
            continue
        what = record.resource + (f"/{record.subresource}" if record.subresource else "")
        counts[f"{record.verb} {what or record.path}"] += 1
    return counts


def _per(counts: collections.Counter[str], divisor: float) -> dict[str, float]:
    return {key: round(value / divisor, 2) for key, value in sorted(counts.items())}


async def _gather_limited(jobs: list[Callable[[], Awaitable[Any]]], limit: int = 20) -> None:
    gate = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[Any]]) -> None:
        async with gate:
            await job()

    await asyncio.gather(*(run(job) for job in jobs))


async def _prepare(api: httpx.AsyncClient) -> None:
    crd_created = await api.post(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd.build_crd()
    )
    crd_created.raise_for_status()
    (await api.post("/api/v1/namespaces", json={"metadata": {"name": NAMESPACE}})).raise_for_status()
    key = manifests.secret("deepgram", "api-key", "dg-bench-key")
    (await api.post(f"/api/v1/namespaces/{NAMESPACE}/secrets", json=key)).raise_for_status()


class Figures(dict[str, Any]):
    """The figures so far; each is also printed to stderr as it is measured (a long run reports early)."""

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        if not key.endswith("_by_kind"):
            print(f"{key}: {value}", file=sys.stderr, flush=True)


async def measure(backends: int, probe_interval_s: float, idle_ticks: int) -> dict[str, Any]:
    """Run every phase; the figures as a JSON-ready dict."""
    results = Figures(backends=backends, probe_interval_s=probe_interval_s)
    async with (
        running_apiserver(request_history_limit=1_000) as server,
        httpx.AsyncClient(base_url=server.base_url, timeout=30.0) as api,
    ):
        await _prepare(api)
        operator = Operator(server.base_url, PROBES_OFF_S)
        try:
            await waiting.until(lambda: _serving(operator), 30, "the operator's /metrics", POLL_S)
            results["rss_mib_idle_empty"] = round(operator.rss_mib(), 1)
            server.audit.reset()
            start = time.monotonic()
            await _gather_limited(
                [lambda i=i: _created(api.post(BACKENDS, json=_backend(i))) for i in range(backends)]
            )
            await waiting.until(
                lambda: _converged(api, backends), 600, f"{backends} backends to converge", POLL_S
            )
            results["converge_s"] = round(time.monotonic() - start, 2)
            calls = _operator_calls(server)
            results["calls_per_create"] = round(sum(calls.values()) / backends, 2)
            results["calls_per_create_by_kind"] = _per(calls, backends)
            results["rss_mib_converged"] = round(operator.rss_mib(), 1)

            server.audit.reset()
            change = {"spec": {"cache": {"maxBytes": 1_048_576}}}
            await _gather_limited(
                [
                    lambda i=i: _created(api.patch(f"{BACKENDS}/tts-{i:04d}", json=change, headers=MERGE))
                    for i in range(backends)
                ]
            )
            await waiting.until(lambda: _converged(api, backends), 600, "the spec change to converge", POLL_S)
            calls = _operator_calls(server)
            results["calls_per_update"] = round(sum(calls.values()) / backends, 2)
            results["calls_per_update_by_kind"] = _per(calls, backends)
            results["rss_mib_peak_reconciling"] = round(operator.rss_mib("VmHWM"), 1)
        finally:
            operator.stop()

        server.audit.reset()
        operator = Operator(server.base_url, probe_interval_s)
        try:
            await waiting.until(lambda: _serving(operator), 30, "the restarted operator's /metrics", POLL_S)
            unchanged = 'ttsfleet_operator_reconciles_total{outcome="unchanged"}'
            await waiting.until(
                lambda: _at_least(operator, unchanged, backends), 600, "every resume reconcile", POLL_S
            )
            calls = _operator_calls(server)
            results["calls_per_resume"] = round(sum(calls.values()) / backends, 2)
            results["calls_per_resume_by_kind"] = _per(calls, backends)

            server.audit.reset()
            refreshes = "ttsfleet_operator_status_refreshes_total"
            before = await operator.metric(refreshes)
            await asyncio.sleep(idle_ticks * probe_interval_s)  # the measurement window itself
            ticks = await operator.metric(refreshes) - before
            calls = _operator_calls(server)
            per_tick = sum(calls.values()) / max(ticks, 1)
            results["idle_ticks_counted"] = int(ticks)
            results["idle_calls_per_tick"] = round(per_tick, 2)
            results["idle_calls_per_tick_by_kind"] = _per(calls, max(ticks, 1))
            results["idle_calls_per_backend_hour_at_10s"] = round(
                per_tick * SECONDS_PER_HOUR / DEFAULT_PROBE_INTERVAL_S, 1
            )
            results["rss_mib_probing"] = round(operator.rss_mib(), 1)
            results["rss_mib_peak_resumed"] = round(operator.rss_mib("VmHWM"), 1)
            peaks = (results["rss_mib_peak_reconciling"], results["rss_mib_peak_resumed"])
            results["rss_mib_peak"] = max(peaks)
        finally:
            operator.stop()
    return results


async def _serving(operator: Operator) -> bool:
    if operator.process.poll() is not None:
        raise SystemExit(f"the operator exited with {operator.process.returncode}")
    try:
        async with httpx.AsyncClient(timeout=2.0) as http:
            return (await http.get(f"http://127.0.0.1:{operator.metrics_port}/metrics")).is_success
    except httpx.HTTPError:
        return False


async def _at_least(operator: Operator, sample: str, value: float) -> bool:
    name, _, labels = sample.partition("{")
    return await operator.metric(name, "{" + labels if labels else "") >= value


async def _created(request: Awaitable[httpx.Response]) -> None:
    (await request).raise_for_status()


def main(argv: list[str] | None = None) -> None:
    """Parse the flags, run the phases, print the figures (and write them as JSON when asked)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.operator_scale", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--backends", type=int, default=200, help="TTSBackends to create (default: 200)")
    parser.add_argument(
        "--probe-interval-s", type=float, default=1.0, help="probe interval of the idle phase (default: 1)"
    )
    parser.add_argument(
        "--idle-ticks", type=int, default=10, help="probe intervals to stay idle (default: 10)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    results = asyncio.run(measure(args.backends, args.probe_interval_s, args.idle_ticks))
    text = json.dumps(results, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
