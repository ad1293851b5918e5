"""The disaster-recovery procedures of docs/disaster-recovery.md, run once on the local fleet, timed.

    make dr-drill

Each procedure uses the commands the guide gives (kubectl against the fleet's API) and prints how long
each step took until its condition held (Ready and converged, a key on every pod, a spoken utterance).
The fleet runs with the emulator's cloud-latency model and examples/ as shipped (default rollout timings).
Phases, in order on one fleet: fresh install, backup, operator down, leaked key, Deepgram unreachable;
then the fleet is torn down and a new, empty one is restored from the backup.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from benchmarks import waiting
from ttsfleet import client, fingerprints
from ttsfleet.demo import condition, is_converged
from ttsfleet.devcluster import fleet, manifests
from ttsfleet.protocol import SpeakOptions

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
NAMESPACE, NAME = "voice", "aura-en"
BACKEND_PATH = f"/apis/ttsfleet.io/v1alpha1/namespaces/{NAMESPACE}/ttsbackends/{NAME}"
TOKEN = "REPLACE-WITH-A-LONG-RANDOM-FLEET-TOKEN"  # examples/secrets-aura-en.yaml
OPTIONS = SpeakOptions(model="aura-2-thalia-en", sample_rate=24000)
DEADLINE_S = 180.0
POLL_S = 0.2
# What a check meets while the fleet is down or coming back: not an answer yet.
UNREACHABLE = (httpx.HTTPError, client.SpeakFailed, OSError, KeyError)
# Server-set fields a restore must not carry (a new cluster assigns its own).
SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink")


class Drill:
    """One local fleet and the commands an SRE would run against it."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.state = fleet.start_detached(state_dir, [], state_dir / "logs" / "fleet.log")
        self.extra: list[subprocess.Popen[bytes]] = []  # replacement operator or emulator processes
        self.api = self.state.async_client()
        self.spoken = 0

    async def close(self) -> None:
        await self.api.aclose()
        for process in self.extra:
            if process.poll() is None:
                process.terminate()
                process.wait(20)
        fleet.stop_detached(self.state_dir)

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        env = {
            **os.environ,
            "KUBECONFIG": self.state.kubeconfig,
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        }
        done = subprocess.run(
            [self.state.kubectl or "kubectl", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def spawn(self, name: str, argv: list[str]) -> None:
        """A replacement process (operator, emulator), as the cluster would restart it; stopped on close."""
        self.extra.append(
            fleet.spawn_beside(self.state, argv, self.state_dir / "logs" / f"{name}-replacement.log")
        )

    async def backend(self) -> dict[str, Any]:
        response = await self.api.get(BACKEND_PATH)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    async def until(self, check: Callable[[], Awaitable[bool]], what: str) -> float:
        """Seconds until `check` holds; a check that cannot reach the fleet yet counts as not yet."""
        return await waiting.seconds(waiting.until(check, DEADLINE_S, what, POLL_S, UNREACHABLE))

    async def converged(self) -> bool:
        return is_converged(await self.backend())

    async def speaks(self) -> bool:
        """Speak a text never spoken before (a repeated one would come from the gateway's cache)."""
        self.spoken += 1
        url = fleet.read_services(self.state_dir)[f"{NAME}.{NAMESPACE}"]
        async with client.SpeakClient(url, TOKEN, OPTIONS, timeout_s=10.0) as session:
            return bool((await session.speak(f"utterance number {self.spoken} of the drill")).audio)


def report(phase: str, step: str, seconds: float) -> None:
    print(f"{phase:<22} {step:<58} {seconds:7.1f} s", flush=True)


def secret_yaml(name: str, key: str, value: str) -> str:
    return yaml.safe_dump(manifests.secret(name, key, value, namespace=NAMESPACE))


def restorable(items: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Objects as a backup keeps them: spec and data, labels and annotations; no status, no server fields."""
    kept = []
    for item in items:
        body = {key: value for key, value in item.items() if key != "status"}
        body["metadata"] = {k: v for k, v in item["metadata"].items() if k not in SERVER_FIELDS}
        kept.append(body)
    return kept


async def fresh_install(drill: Drill) -> None:
    phase = "fresh install"
    start = time.monotonic()
    for name in ("namespace-voice.yaml", "secrets-aura-en.yaml", "ttsbackend-aura-en.yaml"):
        drill.kubectl("apply", "--validate=false", "-f", str(EXAMPLES / name))
    await drill.until(drill.converged, "the backend converged")
    report(phase, "kubectl apply examples/ -> Ready, converged (2 pods)", time.monotonic() - start)
    await drill.until(drill.speaks, "an utterance")
    report(phase, "kubectl apply examples/ -> first utterance spoken", time.monotonic() - start)


def backup(drill: Drill, path: Path) -> None:
    phase = "backup"
    start = time.monotonic()
    secrets = yaml.safe_load(
        drill.kubectl("get", "secrets", "-n", NAMESPACE, "-l", "ttsfleet.io/watch=true", "-o", "yaml")
    )
    backends = yaml.safe_load(drill.kubectl("get", "ttsbackends", "-n", NAMESPACE, "-o", "yaml"))
    documents = restorable(secrets["items"]) + restorable(backends["items"])
    path.write_text(yaml.safe_dump_all(documents))
    report(
        phase, f"kubectl get secrets,ttsbackends -o yaml ({len(documents)} objects)", time.monotonic() - start
    )
    annotations = sorted(backends["items"][0]["metadata"].get("annotations") or {})
    print(f"{'':<22} annotations on the live TTSBackend: {annotations or 'none'}")


async def operator_down(drill: Drill) -> None:
    phase = "operator down"
    assert drill.state.operator_pid is not None
    os.kill(drill.state.operator_pid, signal.SIGKILL)
    spoken = 0
    start = time.monotonic()
    for _ in range(5):
        spoken += await drill.speaks()
    report(phase, f"operator killed: {spoken}/5 utterances spoken meanwhile", time.monotonic() - start)
    drill.kubectl("scale", "ttsb", NAME, "-n", NAMESPACE, "--replicas=3")
    deployment = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{NAME}"
    unchanged = (await drill.api.get(deployment)).json()["spec"]["replicas"]
    print(f"{'':<22} scaled to 3 with the operator down: Deployment still asks for {unchanged} pods")
    start = time.monotonic()
    drill.spawn("operator", list(drill.state.operator_argv))
    await drill.until(drill.converged, "converged at 3 pods")
    report(phase, "operator restarted -> 3 pods, converged", time.monotonic() - start)


async def leaked_key(drill: Drill) -> None:
    phase = "leaked key"
    new_key = "replacement-deepgram-key-after-a-leak"
    new_fingerprint = fingerprints.fingerprint_secret(new_key)
    start = time.monotonic()
    drill.kubectl(
        "apply", "--validate=false", "-f", "-", stdin=secret_yaml("aura-en-deepgram", "api-key", new_key)
    )

    async def on_every_pod() -> bool:
        credentials = (await drill.backend()).get("status", {}).get("credentials") or {}
        return bool(credentials.get("complete")) and credentials.get("currentFingerprint") == new_fingerprint

    await drill.until(on_every_pod, "the new key on every pod")
    report(phase, "new key applied -> every pod uses it (old key revocable)", time.monotonic() - start)
    await drill.until(drill.speaks, "an utterance with the new key")
    report(phase, "new key applied -> utterance spoken with it", time.monotonic() - start)


async def deepgram_unreachable(drill: Drill) -> None:
    phase = "Deepgram unreachable"
    assert drill.state.emulator_pid is not None
    assert drill.state.upstream_url is not None
    port = drill.state.upstream_url.rsplit(":", 1)[1]
    os.kill(drill.state.emulator_pid, signal.SIGKILL)
    start = time.monotonic()
    failed_at: float | None = None
    try:
        await drill.speaks()
    except (client.SpeakFailed, OSError) as error:
        failed_at = time.monotonic() - start
        print(f"{'':<22} an utterance meanwhile: {type(error).__name__}: {error}")
    if failed_at is not None:
        report(phase, "upstream killed -> the client gets an error", failed_at)

    async def degraded() -> bool:
        return condition(await drill.backend(), "Degraded").get("reason") == "UpstreamUnavailable"

    await drill.until(degraded, "Degraded=UpstreamUnavailable")
    report(phase, "upstream killed -> Degraded=True (UpstreamUnavailable)", time.monotonic() - start)
    start = time.monotonic()
    drill.spawn("emulator", [sys.executable, "-m", "ttsfleet", "emulator", "--port", port])
    await drill.until(drill.speaks, "an utterance after the upstream returned")
    report(phase, "upstream back -> first utterance spoken", time.monotonic() - start)

    async def recovered() -> bool:
        # Degraded may stay True for another reason: examples/ asks for a ServiceMonitor, and a cluster
        # without the Prometheus Operator reports it (OptionalKindUnavailable).
        return condition(await drill.backend(), "Degraded").get("reason") != "UpstreamUnavailable"

    await drill.until(recovered, "Degraded no longer UpstreamUnavailable")
    report(phase, "upstream back -> Degraded no longer UpstreamUnavailable", time.monotonic() - start)


async def restore(drill: Drill, documents: list[dict[str, Any]]) -> None:
    phase = "restore (new cluster)"
    start = time.monotonic()
    drill.kubectl("apply", "--validate=false", "-f", str(EXAMPLES / "namespace-voice.yaml"))
    secrets = [doc for doc in documents if doc["kind"] == "Secret"]
    backends = [doc for doc in documents if doc["kind"] == "TTSBackend"]
    drill.kubectl("apply", "--validate=false", "-f", "-", stdin=yaml.safe_dump_all(secrets))
    drill.kubectl("apply", "--validate=false", "-f", "-", stdin=yaml.safe_dump_all(backends))
    await drill.until(drill.converged, "the restored backend converged")
    replicas = (await drill.backend())["status"].get("readyReplicas")
    report(
        phase, f"apply namespace, Secrets, backends -> converged ({replicas} pods)", time.monotonic() - start
    )
    await drill.until(drill.speaks, "an utterance")
    report(phase, "apply -> first utterance spoken", time.monotonic() - start)


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="ttsfleet-dr-") as name:
        yield Path(name)


async def main() -> None:
    with workdir() as work:
        saved = work / "backup.yaml"
        drill = Drill(work / "fleet")
        try:
            await fresh_install(drill)
            backup(drill, saved)
            await operator_down(drill)
            await leaked_key(drill)
            await deepgram_unreachable(drill)
        finally:
            await drill.close()
        start = time.monotonic()
        replacement = Drill(work / "new-fleet")  # an empty API: the CRD only, as after a CRD install
        report("restore (new cluster)", "new cluster up (API, CRD, operator)", time.monotonic() - start)
        try:
            await restore(replacement, list(yaml.safe_load_all(saved.read_text())))
        finally:
            await replacement.close()


if __name__ == "__main__":
    asyncio.run(main())
