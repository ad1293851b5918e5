"""`make demo`: the local fleet end to end, as a newcomer first sees it.

Brings the local fleet up in this process (the real Kubernetes control plane when `make controlplane`
has built it, else the embedded API; node agent, operator, Deepgram emulator; state in `out/fleet/`),
says which control plane it uses, applies `examples/` through the API, waits by watching until the
TTSBackend is Ready with `observedGeneration` caught up, speaks a sentence through the backend's
Service as a TEN agent finds it (`<name>.<namespace>`) into `out/demo.wav`, prints the backend as
`kubectl get ttsb` would and a few metrics, then runs until Ctrl-C. `DEMO_ONCE=1` stops after the
WAV, taking everything down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from ttsfleet import client, wavfile
from ttsfleet.protocol import Encoding, SpeakOptions

if TYPE_CHECKING:
    from ttsfleet.devcluster import fleet

SENTENCE = "the speech fleet is ready"
OUTPUT = Path("out/demo.wav")
STATE_DIR = Path("out/fleet")  # made absolute by the fleet: pods run in their own directories
# `make demo` runs from the repository; an editable install finds it from here as well.
EXAMPLES = Path("examples") if Path("examples").is_dir() else Path(__file__).resolve().parents[2] / "examples"
BACKEND, NAMESPACE = "aura-en", "voice"
FLEET_TOKEN = "REPLACE-WITH-A-LONG-RANDOM-FLEET-TOKEN"  # examples/secrets-aura-en.yaml, applied as it is
READY_DEADLINE_S = 60.0
SAMPLE_RATE = 24000
BACKENDS_PATH = "/apis/ttsfleet.io/v1alpha1/namespaces/{namespace}/ttsbackends"
# Collections of the kinds examples/ holds ({namespace} filled in for namespaced kinds).
COLLECTIONS = {
    ("v1", "Namespace"): "/api/v1/namespaces",
    ("v1", "Secret"): "/api/v1/namespaces/{namespace}/secrets",
    ("ttsfleet.io/v1alpha1", "TTSBackend"): BACKENDS_PATH,
}
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
console = Console(soft_wrap=True)


class DemoFailed(Exception):
    """A step of the demo did not work out; the message says which and where to look."""


async def apply_manifests(http: httpx.AsyncClient, paths: list[Path]) -> list[str]:
    """Create each object of each file, or merge-patch it when it exists (as `kubectl apply` would)."""
    applied: list[str] = []
    for path in paths:
        for body in yaml.safe_load_all(path.read_text()):
            if not body:
                continue
            kind = (body["apiVersion"], body["kind"])
            if kind not in COLLECTIONS:
                raise DemoFailed(f"{path.name}: the demo does not know where {kind} lives")
            metadata = body["metadata"]
            collection = COLLECTIONS[kind].format(namespace=metadata.get("namespace", "default"))
            response = await http.post(collection, json=body)
            if response.status_code == 409:
                response = await http.patch(
                    f"{collection}/{metadata['name']}", json=body, headers=MERGE_PATCH
                )
            if response.is_error:
                raise DemoFailed(f"applying {path.name}: {response.status_code} {response.text[:300]}")
            applied.append(f"{body['kind'].lower()}/{metadata['name']}")
    return applied


def condition(body: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    """The condition of type `kind` in the object's status, or an empty mapping."""
    for item in (body.get("status") or {}).get("conditions") or ():
        if item.get("type") == kind:
            return dict(item)
    return {}


def is_converged(body: Mapping[str, Any]) -> bool:
    """Ready is True and the status describes the current generation (STYLE.md rule 20)."""
    status = body.get("status") or {}
    return condition(body, "Ready").get("status") == "True" and status.get("observedGeneration") == body[
        "metadata"
    ].get("generation")


async def wait_until_ready(
    http: httpx.AsyncClient, namespace: str, name: str, deadline_s: float
) -> dict[str, Any]:
    """Watch the backend until it is converged; the object when it is."""
    collection = BACKENDS_PATH.format(namespace=namespace)
    params = {"fieldSelector": f"metadata.name={name}"}
    async with asyncio.timeout(deadline_s):
        while True:  # a watch the server ends is started again from where it stopped
            listed = (await http.get(collection, params=params)).raise_for_status().json()
            for item in listed.get("items") or ():
                if is_converged(item):
                    return dict(item)
            watch = {**params, "watch": "true", "resourceVersion": listed["metadata"]["resourceVersion"]}
            async with http.stream("GET", collection, params=watch, timeout=None) as events:
                async for line in events.aiter_lines():
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event.get("type") in ("ADDED", "MODIFIED") and is_converged(event["object"]):
                        return dict(event["object"])


def age(created: str, now: datetime) -> str:
    """An age as kubectl prints it: 42s, 3m12s, 5h3m, 2d4h."""
    seconds = int((now - datetime.fromisoformat(created.replace("Z", "+00:00"))).total_seconds())
    seconds = max(seconds, 0)
    if seconds < 120:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours < 1:
        return f"{minutes}m{seconds % 60}s" if minutes < 10 else f"{minutes}m"
    if days < 1:
        return f"{hours}h{minutes % 60}m" if hours < 10 else f"{hours}h"
    return f"{days}d{hours % 24}h"


def get_ttsb_table(body: Mapping[str, Any], now: datetime) -> str:
    """The backend as `kubectl get ttsb` prints it (the CRD's printer columns)."""
    status = body.get("status") or {}
    ready = condition(body, "Ready")
    row = (
        body["metadata"]["name"],
        str(ready.get("status", "")),
        str(status.get("replicas", "")),
        str(status.get("endpoint", "")),
        str(ready.get("reason", "")),
        age(body["metadata"]["creationTimestamp"], now),
    )
    header = ("NAME", "READY", "REPLICAS", "ENDPOINT", "REASON", "AGE")
    widths = [max(len(a), len(b)) for a, b in zip(header, row, strict=True)]
    return "\n".join(
        "   ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in (header, row)
    )


async def speak_through_service(state_dir: Path, backend: str, model: str, text: str) -> client.Utterance:
    """Find `<name>.<namespace>` as a TEN agent would (its Service) and speak `text` there."""
    from ttsfleet.devcluster import fleet

    url = fleet.read_services(state_dir).get(backend)
    if url is None:
        raise DemoFailed(f"no Service {backend} in {state_dir / 'services.json'}")
    options = SpeakOptions(model=model, encoding=Encoding.LINEAR16, sample_rate=SAMPLE_RATE)
    async with client.SpeakClient(url, FLEET_TOKEN, options) as session:
        return await session.speak(text)


def _sample(samples: list[Any], name: str, **labels: str) -> float:
    return sum(
        float(sample.value)
        for sample in samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


async def pod_metrics(
    http: httpx.AsyncClient, state: fleet.FleetState, namespace: str, name: str
) -> list[str]:
    """A line of figures per pod of the backend, from each gateway's /metrics."""
    from ttsfleet.devcluster import fleet

    selector = {"labelSelector": f"app.kubernetes.io/instance={name}"}
    pods = (await http.get(f"/api/v1/namespaces/{namespace}/pods", params=selector)).json().get("items") or ()
    lines: list[str] = []
    for pod in pods:
        metadata = pod["metadata"]
        port = fleet.pod_local_port(state, pod)
        if port is None or metadata.get("deletionTimestamp"):
            continue
        with contextlib.suppress(httpx.HTTPError):
            async with httpx.AsyncClient(timeout=5.0, trust_env=False) as local:
                text = (await local.get(f"http://127.0.0.1:{port}/metrics")).text
            samples = [sample for family in text_string_to_metric_families(text) for sample in family.samples]
            ttfb_count = _sample(samples, "ttsfleet_ttfb_seconds_count")
            ttfb_sum = _sample(samples, "ttsfleet_ttfb_seconds_sum")
            mean_ttfb = f"{1000 * ttfb_sum / ttfb_count:.0f} ms" if ttfb_count else "n/a"
            lines.append(
                f"  {metadata['name']}: sessions {_sample(samples, 'ttsfleet_sessions_total'):.0f}, "
                f"utterances completed "
                f"{_sample(samples, 'ttsfleet_utterances_total', outcome='completed'):.0f}, "
                f"mean time to first byte {mean_ttfb}, upstream sockets open "
                f"{_sample(samples, 'ttsfleet_upstream_sockets', state='open'):.0f}"
            )
    return lines


async def show(state_dir: Path, state: fleet.FleetState) -> None:
    """Apply the examples, wait for Ready, speak into the WAV and print what the fleet says."""
    started = time.monotonic()
    async with state.async_client() as http:
        applied = await apply_manifests(http, sorted(EXAMPLES.glob("*.yaml")))
        console.print(f"  applied examples/: {', '.join(applied)}")
        try:
            backend = await wait_until_ready(http, NAMESPACE, BACKEND, READY_DEADLINE_S)
        except TimeoutError:
            raise DemoFailed(
                f"ttsb/{BACKEND} was not Ready within {READY_DEADLINE_S:.0f} s; "
                f"see {state_dir / 'logs' / 'operator.log'} and {state_dir / 'pods'}"
            ) from None
        console.print(f"  ttsb/{BACKEND} is Ready after {time.monotonic() - started:.1f} s")
        try:
            model = backend["spec"]["deepgram"]["model"]
            utterance = await speak_through_service(state_dir, f"{BACKEND}.{NAMESPACE}", model, SENTENCE)
        except client.SpeakFailed as failure:
            raise DemoFailed(f"speaking through {BACKEND}.{NAMESPACE} failed: {failure}") from None
        wav = wavfile.header(Encoding.LINEAR16, SAMPLE_RATE, len(utterance.audio)) + utterance.audio
        await asyncio.to_thread(_write, OUTPUT, wav)
        seconds = len(utterance.audio) / (2 * SAMPLE_RATE)
        console.print(
            f"[green]wrote {OUTPUT}[/green] ({seconds:.2f} s of 24 kHz linear16 speech, "
            f"spoken through Service {BACKEND}.{NAMESPACE}) — play it with any audio player\n"
        )
        # The status after the probe interval has seen the utterance is not worth waiting for: print now.
        backend = (await http.get(f"{BACKENDS_PATH.format(namespace=NAMESPACE)}/{BACKEND}")).json()
        console.print(f"$ kubectl get ttsb -n {NAMESPACE}", highlight=False)
        console.print(get_ttsb_table(backend, datetime.now(UTC)), highlight=False)
        console.print("\nmetrics:", highlight=False)
        for line in await pod_metrics(http, state, NAMESPACE, BACKEND):
            console.print(line, highlight=False)
        figures = (backend.get("status") or {}).get("fleet") or {}
        if figures:
            console.print(
                f"  operator's view: {figures.get('podsReady', 0)} pods ready, "
                f"{figures.get('podsOnCurrentConfig', 0)} on the current config",
                highlight=False,
            )


def _write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def _configure_logging(state_dir: Path) -> None:
    """The supervisor's own log lines (runner, API) go to a file, not over the demo's output."""
    logs = state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(logs / "demo.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


async def run_demo(once: bool) -> int:
    """The demo; 0 when the WAV was written (and, unless `once`, Ctrl-C came)."""
    from ttsfleet.devcluster import fleet

    _configure_logging(STATE_DIR)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    up: asyncio.Future[fleet.FleetState] = loop.create_future()
    console.print("[bold]ttsfleet demo[/bold]: the local fleet (control plane, operator, gateways, emulator)")
    kind, line = fleet.resolve_control_plane("auto")
    console.print(f"  {line}", highlight=False)
    options = fleet.FleetOptions(state_dir=STATE_DIR, control_plane=kind)

    def on_ready(state: fleet.FleetState, pods: object) -> None:
        if not up.done():
            up.set_result(state)

    supervisor = asyncio.create_task(fleet.run_fleet(options, stop, on_ready), name="local fleet")
    stopping = asyncio.create_task(stop.wait(), name="stop signal")
    steps: asyncio.Task[None] | None = None
    try:
        waiting: set[asyncio.Future[Any]] = {up, supervisor, stopping}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if not up.done():
            return 130 if stop.is_set() else _failed(supervisor, STATE_DIR)
        state = up.result()
        console.print(f"  API {state.api_url}, kubeconfig {state.kubeconfig}, upstream {state.upstream_url}")
        steps = asyncio.create_task(show(STATE_DIR, state), name="demo steps")
        await asyncio.wait({steps, supervisor, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not steps.done():
            return 130 if stop.is_set() else _failed(supervisor, STATE_DIR)
        if steps.exception() is not None:
            console.print(f"[red]demo failed:[/red] {steps.exception()}")
            return 1
        if once:
            return 0
        kubectl = state.kubectl or "kubectl"  # the control plane's own (same release) on the real one
        console.print(
            f"\nrunning; try:\n  export KUBECONFIG={state.kubeconfig}\n"
            f"  {kubectl} get ttsb,deploy,rs,pods,endpointslices -n {NAMESPACE}\n"
            f"  ttsfleet say 'hello' --backend {BACKEND}.{NAMESPACE} --state-dir {STATE_DIR} "
            f"--token {FLEET_TOKEN}\n  ttsfleet dev status --state-dir {STATE_DIR}\n"
            "Ctrl-C stops (the pods drain first)",
            highlight=False,
        )
        await asyncio.wait({supervisor, stopping}, return_when=asyncio.FIRST_COMPLETED)
        return 0 if stop.is_set() else _failed(supervisor, STATE_DIR)
    finally:
        for task in (steps, stopping):
            if task is not None and not task.done():
                task.cancel()
        stop.set()
        console.print("taking the local fleet down…")
        with contextlib.suppress(Exception):
            await supervisor


def _failed(supervisor: asyncio.Task[None], state_dir: Path) -> int:
    error = supervisor.exception() if supervisor.done() and not supervisor.cancelled() else None
    console.print(f"[red]the local fleet stopped:[/red] {error}; see {state_dir / 'logs'}")
    return 1


def main() -> int:
    """Entry point of `python -m ttsfleet.demo`."""
    return asyncio.run(run_demo(once=bool(os.environ.get("DEMO_ONCE"))))


if __name__ == "__main__":
    sys.exit(main())
