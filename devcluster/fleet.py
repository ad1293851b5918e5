"""`ttsfleet dev up`: the whole local fleet in one supervising process, and the state dir that finds it.

The supervisor serves the embedded API in-process (the TTSBackend CRD stored at start, a kubeconfig
written), starts the Deepgram emulator as a process (unless `DEEPGRAM_API_KEY` is set: then pods talk to
the URL their config names), runs the pod runner in-process and, when this build has one, the operator
as a process. `state.json` in the state dir records pids and addresses for `dev status` and `dev down`;
it is written once everything is up and removed on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from ttsfleet.devcluster import endpoints, kubeapi, runner
from ttsfleet.devcluster.apiserver import running_apiserver

logger = logging.getLogger(__name__)

STATE_DIR_ENV = "TTSFLEET_DEV_STATE_DIR"
START_DEADLINE_S = 60.0
STOP_DEADLINE_S = 150.0  # pods may drain for their whole grace period
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

    @staticmethod
    def path(state_dir: Path) -> Path:
        """Where the state of a fleet using `state_dir` is kept."""
        return state_dir / "state.json"

    @classmethod
    def read(cls, state_dir: Path) -> FleetState | None:
        """The recorded state, or None when no fleet wrote one."""
        try:
            return cls(**json.loads(cls.path(state_dir).read_text()))
        except (OSError, ValueError, TypeError):
            return None

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


async def _wait_answers(url: str, process: asyncio.subprocess.Process, what: str) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    async with httpx.AsyncClient(timeout=1.0, trust_env=False) as http:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"{what} exited with {process.returncode} (see its log)")
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(url)).status_code < 500:
                    return
            await asyncio.sleep(0.1)  # polling a process we cannot watch, bounded by the deadline
    raise RuntimeError(f"{what} did not answer {url} within {START_DEADLINE_S} s")


def operator_command(api_url: str) -> list[str]:
    """How the local fleet runs the operator (the e2e tests restart it with the same command)."""
    return [
        sys.executable,
        "-m",
        "ttsfleet",
        "operator",
        "--api-server",
        api_url,
        "--metrics-port",
        "0",
        "--probe-interval-s",
        "2",
        # Pods share 127.0.0.1: the operator finds each /statusz port in this annotation.
        "--statusz-port-annotation",
        endpoints.PORT_ANNOTATION,
    ]


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
            env={**os.environ, "PYTHONSAFEPATH": "1", "KUBECONFIG": state.kubeconfig},
            start_new_session=True,
        )


async def _spawn(argv: list[str], log: Path, env: Mapping[str, str]) -> asyncio.subprocess.Process:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as stream:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=stream,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, **env, "PYTHONSAFEPATH": "1"},
            start_new_session=True,
        )


async def _stop(process: asyncio.subprocess.Process | None, deadline_s: float = 20.0) -> None:
    if process is None or process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), deadline_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


async def _apply_crds(api_url: str) -> None:
    from ttsfleet.operator import crd

    async with httpx.AsyncClient(base_url=api_url, trust_env=False) as http:
        (await http.post(CRD_PATH, json=crd.build_crd())).raise_for_status()


@dataclass(frozen=True, slots=True)
class FleetOptions:
    """How `dev up` runs the fleet."""

    state_dir: Path
    api_port: int | None = None
    with_operator: bool = True
    # Emulator flags (latency model); the defaults imitate a cloud region.
    emulator_args: tuple[str, ...] = ()


async def run_fleet(
    options: FleetOptions,
    stop: asyncio.Event,
    on_ready: Callable[[FleetState, runner.Runner], None] = lambda state, pods: None,
) -> None:
    """Bring the fleet up, call `on_ready`, run until `stop` is set, then take it down (pods drained)."""
    state_dir = options.state_dir.resolve()  # pods run in their own directories: paths must be absolute
    logs = state_dir / "logs"
    state_dir.mkdir(parents=True, exist_ok=True)
    FleetState.path(state_dir).unlink(missing_ok=True)
    (state_dir / "services.json").unlink(missing_ok=True)
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
                port = runner.free_port()
                emulator = await _spawn(
                    [
                        sys.executable,
                        "-m",
                        "ttsfleet",
                        "emulator",
                        "--port",
                        str(port),
                        *options.emulator_args,
                    ],
                    logs / "emulator.log",
                    {},
                )
                await _wait_answers(f"http://127.0.0.1:{port}/_emulator/healthz", emulator, "the emulator")
                upstream_url = f"ws://127.0.0.1:{port}"
            async with kubeapi.KubeApi(apiserver.base_url) as api:
                pod_runner = runner.Runner(
                    api, runner.RunnerSettings(state_dir=state_dir, upstream_url=upstream_url)
                )
                runner_task = asyncio.create_task(pod_runner.run(), name="pod runner")
                try:
                    if options.with_operator:
                        argv = operator_command(apiserver.base_url)
                        operator = await _spawn(argv, logs / "operator.log", {"KUBECONFIG": str(kubeconfig)})
                    state = FleetState(
                        pid=os.getpid(),
                        api_url=apiserver.base_url,
                        kubeconfig=str(kubeconfig),
                        services_file=str(state_dir / "services.json"),
                        upstream_url=upstream_url,
                        emulator_pid=emulator.pid if emulator else None,
                        operator_pid=operator.pid if operator else None,
                    )
                    state.write(state_dir)
                    on_ready(state, pod_runner)
                    stopping = asyncio.create_task(stop.wait(), name="stop signal")
                    await asyncio.wait({stopping, runner_task}, return_when=asyncio.FIRST_COMPLETED)
                    stopping.cancel()
                finally:
                    await _stop(operator)  # first, so it does not re-create what is being taken down
                    runner_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await runner_task
        finally:
            await _stop(emulator)
            FleetState.path(state_dir).unlink(missing_ok=True)
            (state_dir / "services.json").unlink(missing_ok=True)


def serve_fleet(options: FleetOptions, on_ready: Callable[[FleetState, runner.Runner], None]) -> None:
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
            env={**os.environ, "PYTHONSAFEPATH": "1"},
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


def cluster_view(state: FleetState) -> dict[str, Any]:
    """Deployments and pods as the API holds them (for `dev status`)."""
    with httpx.Client(base_url=state.api_url, timeout=5.0, trust_env=False) as http:
        deployments = http.get(kubeapi.DEPLOYMENTS.path()).json().get("items", [])
        pods = http.get(kubeapi.PODS.path()).json().get("items", [])
        backends_response = http.get("/apis/ttsfleet.io/v1alpha1/ttsbackends")
        backends = backends_response.json().get("items", []) if backends_response.status_code == 200 else []
    return {"deployments": deployments, "pods": pods, "backends": backends}
