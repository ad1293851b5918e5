"""`ttsfleet dev up`: the whole local fleet in one supervising process, and the state dir that finds it.

The fleet runs on the real control plane (`realfleet.py`: etcd, kube-apiserver, controller manager,
scheduler, the node agent and Service proxy) when its programs are built, else on the embedded API
served in-process with devcluster's pod runner (the zero-dependency quick start). Either way the
Deepgram emulator runs as a process (unless `DEEPGRAM_API_KEY` is set: then pods talk to the URL their
config names) and so does the operator. `state.json` in the state dir records pids and addresses for
`dev status` and `dev down`; it is written once everything is up and removed on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx

from ttsfleet.devcluster import endpoints, kubeapi, ports, processes, retry_after, runner
from ttsfleet.devcluster.controlplane import binaries

logger = logging.getLogger(__name__)

STATE_DIR_ENV = "TTSFLEET_DEV_STATE_DIR"
START_DEADLINE_S = 120.0  # the real control plane starts in seconds, slower on a busy machine
ControlPlaneChoice = Literal["auto", "real", "embedded"]
STOP_DEADLINE_S = 150.0  # pods may drain for their whole grace period
GATEWAY_PORT = 8080  # the container port the operator's pods declare (docs/contracts.md)
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def default_state_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """`$TTSFLEET_DEV_STATE_DIR`, else `$XDG_STATE_HOME/ttsfleet/dev` (~/.local/state/ttsfleet/dev)."""
    if environ.get(STATE_DIR_ENV):
        return Path(environ[STATE_DIR_ENV])
    base = Path(environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "ttsfleet" / "dev"


@dataclass(frozen=True, slots=True)
class FleetState:
    """What `state.json` says about a running fleet."""

    pid: int
    api_url: str
    kubeconfig: str
    services_file: str
    upstream_url: str | None
    emulator_pid: int | None
    operator_pid: int | None
    control_plane: str = "embedded"  # "real" or "embedded"
    # The real control plane's API takes client certificates only; None on the embedded API.
    ca_file: str | None = None
    client_certificate: str | None = None
    client_key: str | None = None
    kubectl: str | None = None  # the control plane's own kubectl (same release); None: the one on PATH
    # How the fleet runs its operator and the credentials it uses (a restart uses the same).
    operator_argv: tuple[str, ...] = ()
    operator_kubeconfig: str | None = None
    pod_network_file: str | None = None  # the node agent's pod IP → loopback port table (real only)

    @staticmethod
    def path(state_dir: Path) -> Path:
        """Where the state of a fleet using `state_dir` is kept."""
        return state_dir / "state.json"

    @classmethod
    def read(cls, state_dir: Path) -> FleetState | None:
        """The recorded state, or None when no fleet wrote one."""
        try:
            recorded = json.loads(cls.path(state_dir).read_text())
            recorded["operator_argv"] = tuple(recorded.get("operator_argv") or ())
            return cls(**recorded)
        except (OSError, ValueError, TypeError, AttributeError):
            return None

    def api_verify(self) -> ssl.SSLContext | bool:
        """What an HTTP client of the fleet's API passes as `verify`: TLS with the admin certificate on
        the real control plane, nothing on the embedded API (plain HTTP)."""
        if self.ca_file is None:
            return True
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.client_certificate and self.client_key:
            context.load_cert_chain(self.client_certificate, self.client_key)
        return context

    def async_client(self, timeout_s: float = 10.0) -> httpx.AsyncClient:
        """An HTTP client of the fleet's API, as its admin."""
        return httpx.AsyncClient(
            base_url=self.api_url,
            transport=retry_after.transport(self.api_verify()),
            timeout=timeout_s,
            trust_env=False,
        )

    def write(self, state_dir: Path) -> None:
        """Record the state atomically."""
        staging = state_dir / ".state.json.tmp"
        staging.write_text(json.dumps(asdict(self), indent=2) + "\n")
        staging.replace(self.path(state_dir))


def is_alive(pid: int) -> bool:
    """The process exists (it may belong to someone else after a reboot: good enough for a dev tool)."""
    # A child of ours that exited stays a zombie (and answers signal 0) until reaped: reap it here, or a
    # caller that started the fleet itself (`start_detached` in tests, the demo) would wait forever.
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_services(state_dir: Path) -> dict[str, str]:
    """`{"<name>.<namespace>": "ws://127.0.0.1:PORT"}` as the runner published it."""
    try:
        services: dict[str, str] = json.loads((state_dir / "services.json").read_text())
    except (OSError, ValueError):
        return {}
    return services


def operator_command(*reach: str) -> list[str]:
    """How the local fleet runs the operator: metrics off, a 2 s probe interval, and `reach` — how it
    finds the API and the pods on this control plane. A restart uses the same (`state.operator_argv`)."""
    argv = [sys.executable, "-m", "ttsfleet", "operator", "--metrics-port", "0", "--probe-interval-s", "2"]
    return [*argv, *reach]


def spawn_beside(state: FleetState, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    """A process next to a running fleet, on its kubeconfig, in its own session; the caller stops it.

    What restarts a replacement operator or emulator, as a cluster would restart a failed one.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as stream:
        return subprocess.Popen(
            argv,
            stdout=stream,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                "KUBECONFIG": state.operator_kubeconfig or state.kubeconfig,
            },
            start_new_session=True,
        )


async def _apply_crds(api_url: str) -> None:
    from ttsfleet.operator import crd

    transport = retry_after.transport()
    async with httpx.AsyncClient(base_url=api_url, transport=transport, trust_env=False) as http:
        (await http.post(CRD_PATH, json=crd.build_crd())).raise_for_status()


@dataclass(frozen=True, slots=True)
class FleetOptions:
    """How `dev up` runs the fleet."""

    state_dir: Path
    api_port: int | None = None
    with_operator: bool = True
    # Emulator flags (latency model); the defaults imitate a cloud region.
    emulator_args: tuple[str, ...] = ()
    control_plane: ControlPlaneChoice = "auto"


class PodsView(Protocol):
    """What the live `dev up` screen shows of the pods, whichever control plane runs them."""

    def snapshot(self) -> list[runner.PodSnapshot]: ...

    def service_urls(self) -> dict[str, str]: ...


OnReady = Callable[[FleetState, PodsView], None]


def resolve_control_plane(requested: ControlPlaneChoice) -> tuple[Literal["real", "embedded"], str]:
    """Which control plane the fleet runs on, and a line saying so (and how to get the real one)."""
    if requested == "embedded":
        return "embedded", "control plane: the embedded API (--control-plane embedded)"
    try:
        programs = binaries.locate()
    except binaries.MissingControlPlane as missing:
        if requested == "real":
            raise
        return "embedded", (
            "control plane: the embedded API (zero-dependency quick start); the real Kubernetes control "
            f"plane, built from Go modules, is not here: {missing}"
        )
    return "real", (
        f"control plane: real Kubernetes {binaries.kubernetes_version()} "
        f"(etcd, kube-apiserver, kube-controller-manager, kube-scheduler from {programs.apiserver.parent})"
    )


def prepare_state_dir(state_dir: Path) -> Path:
    """The absolute state dir (pods run in their own directories), emptied of a previous run's records."""
    resolved = state_dir.resolve()
    resolved.mkdir(parents=True, exist_ok=True)
    FleetState.path(resolved).unlink(missing_ok=True)
    (resolved / "services.json").unlink(missing_ok=True)
    return resolved


def record_state(
    state_dir: Path,
    api_url: str,
    kubeconfig: Path,
    upstream_url: str | None,
    children: tuple[asyncio.subprocess.Process | None, asyncio.subprocess.Process | None],
    operator_argv: list[str],
    **control_plane: Any,
) -> FleetState:
    """Write `state.json` for the fleet this process runs (`children`: emulator, operator) and return it;
    `control_plane` holds what only the real control plane has (its certificates, kubectl, …)."""
    emulator, operator = children
    state = FleetState(
        pid=os.getpid(),
        api_url=api_url,
        kubeconfig=str(kubeconfig),
        services_file=str(state_dir / "services.json"),
        upstream_url=upstream_url,
        emulator_pid=emulator.pid if emulator else None,
        operator_pid=operator.pid if operator else None,
        operator_argv=tuple(operator_argv),
        **control_plane,
    )
    state.write(state_dir)
    return state


def forget_state(state_dir: Path) -> None:
    """The fleet is down: nothing in the state dir may say otherwise."""
    FleetState.path(state_dir).unlink(missing_ok=True)
    (state_dir / "services.json").unlink(missing_ok=True)


async def run_fleet(
    options: FleetOptions, stop: asyncio.Event, on_ready: OnReady = lambda state, pods: None
) -> None:
    """Bring the fleet up, call `on_ready`, run until `stop` is set, then take it down (pods drained)."""
    kind, line = resolve_control_plane(options.control_plane)
    logger.info("%s", line)
    if kind == "real":
        from ttsfleet.devcluster import realfleet

        await realfleet.run_real_fleet(options, stop, on_ready)
        return
    await _run_embedded_fleet(options, stop, on_ready)


async def _run_embedded_fleet(options: FleetOptions, stop: asyncio.Event, on_ready: OnReady) -> None:
    # Imported here: the embedded API is a development tool outside the wheel (`embedded_api`).
    from ttsfleet.devcluster.apiserver import running_apiserver

    state_dir = prepare_state_dir(options.state_dir)
    logs = state_dir / "logs"
    kubeconfig = state_dir / "kubeconfig"
    emulator: asyncio.subprocess.Process | None = None
    operator: asyncio.subprocess.Process | None = None
    async with running_apiserver(
        port=options.api_port, kubeconfig=kubeconfig, request_history_limit=10_000
    ) as apiserver:
        try:
            await _apply_crds(apiserver.base_url)
            upstream_url: str | None = None
            if not os.environ.get("DEEPGRAM_API_KEY"):
                emulator, upstream_url = await processes.start_emulator(
                    ports.free_port(), options.emulator_args, logs / "emulator.log"
                )
            async with kubeapi.KubeApi(apiserver.base_url) as api:
                pod_runner = runner.Runner(
                    api, runner.RunnerSettings(state_dir=state_dir, upstream_url=upstream_url)
                )
                runner_task = asyncio.create_task(pod_runner.run(), name="pod runner")
                try:
                    # Pods share 127.0.0.1: the operator finds each /statusz port in this annotation.
                    argv = operator_command(
                        "--api-server",
                        apiserver.base_url,
                        "--statusz-port-annotation",
                        endpoints.PORT_ANNOTATION,
                    )
                    if options.with_operator:
                        operator = await processes.spawn(
                            argv, logs / "operator.log", {"KUBECONFIG": str(kubeconfig)}
                        )
                    state = record_state(
                        state_dir, apiserver.base_url, kubeconfig, upstream_url, (emulator, operator), argv
                    )
                    on_ready(state, pod_runner)
                    stopping = asyncio.create_task(stop.wait(), name="stop signal")
                    await asyncio.wait({stopping, runner_task}, return_when=asyncio.FIRST_COMPLETED)
                    stopping.cancel()
                finally:
                    await processes.stop(operator)  # first, so it does not re-create what is being taken down
                    runner_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await runner_task
        finally:
            await processes.stop(emulator)
            forget_state(state_dir)


def serve_fleet(options: FleetOptions, on_ready: OnReady) -> None:
    """Run the fleet until SIGINT or SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await run_fleet(options, stop, on_ready)

    asyncio.run(main())


def start_detached(state_dir: Path, extra_args: list[str], log: Path) -> FleetState:
    """Start `ttsfleet dev up` in the background and return its state once it is up."""
    state_dir.mkdir(parents=True, exist_ok=True)
    FleetState.path(state_dir).unlink(missing_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as stream:
        process = subprocess.Popen(
            [sys.executable, "-m", "ttsfleet", "dev", "up", "--state-dir", str(state_dir), *extra_args],
            stdin=subprocess.DEVNULL,
            stdout=stream,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
            start_new_session=True,
        )
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        state = FleetState.read(state_dir)
        if state is not None and state.pid == process.pid:
            return state
        if process.poll() is not None:
            raise RuntimeError(f"dev up exited with {process.returncode}; see {log}")
        time.sleep(0.1)  # a CLI waiting on another process's file, bounded by the deadline
    process.terminate()
    raise RuntimeError(f"dev up did not come up within {START_DEADLINE_S} s; see {log}")


def stop_detached(state_dir: Path) -> bool:
    """SIGTERM the fleet recorded in `state_dir` and wait until it is gone; False when none ran."""
    state = FleetState.read(state_dir)
    if state is None or not is_alive(state.pid):
        FleetState.path(state_dir).unlink(missing_ok=True)
        return False
    os.kill(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_DEADLINE_S
    while time.monotonic() < deadline and is_alive(state.pid):
        time.sleep(0.1)  # the fleet is not our child: poll its pid, bounded by the deadline
    if is_alive(state.pid):
        os.kill(state.pid, signal.SIGKILL)
    return True


def pod_local_port(state: FleetState, pod: Mapping[str, Any]) -> int | None:
    """The loopback port a pod's gateway listens on: the embedded runner's annotation, or the pod IP
    looked up in the node agent's pod-network table on the real control plane."""
    from ttsfleet.operator import probing

    annotated = ((pod.get("metadata") or {}).get("annotations") or {}).get(endpoints.PORT_ANNOTATION)
    if annotated is not None:
        return int(annotated)
    pod_ip = (pod.get("status") or {}).get("podIP")
    if state.pod_network_file is None or not pod_ip:
        return None
    return probing.PodNetworkTable(Path(state.pod_network_file)).local_port(pod_ip, GATEWAY_PORT)


def cluster_view(state: FleetState) -> dict[str, Any]:
    """Deployments and pods as the API holds them (for `dev status`)."""
    with httpx.Client(
        base_url=state.api_url, verify=state.api_verify(), timeout=5.0, trust_env=False
    ) as http:
        deployments = http.get(kubeapi.DEPLOYMENTS.path()).json().get("items", [])
        pods = http.get(kubeapi.PODS.path()).json().get("items", [])
        backends_response = http.get("/apis/ttsfleet.io/v1alpha1/ttsbackends")
        backends = backends_response.json().get("items", []) if backends_response.status_code == 200 else []
    return {"deployments": deployments, "pods": pods, "backends": backends}
