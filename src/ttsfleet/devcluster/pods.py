"""One pod as a local process: how its container is launched, probed, drained and stopped.

The first container of the template runs as `python -m ttsfleet …` (args starting with `ttsfleet`) or as
its own command, in `<pod dir>` with its volumes materialised there (`volumes.py`). Container paths in
args, and the gateway's file settings (docs/contracts.md) read from the mounted config file, are rewritten
to the materialised files through `TTSFLEET_*` variables, so the ConfigMap's bytes (and the config hash
the gateway reports) stay as rendered. The listen port comes from `TTSFLEET_SERVER__PORT`.

Termination is the kubelet's: the preStop hook (exec, the container's port swapped for the real one and
`python3` for this interpreter; or httpGet), then SIGTERM, all within terminationGracePeriodSeconds,
then SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from ttsfleet import contracts
from ttsfleet.devcluster import endpoints, volumes

logger = logging.getLogger(__name__)

# Gateway settings that name files, with their contract defaults (docs/contracts.md).
PATH_SETTINGS: tuple[tuple[str, str, str], ...] = (
    ("credentials", "deepgram_key_file", contracts.DEEPGRAM_KEY_FILE),
    ("auth", "client_tokens_file", contracts.TOKENS_FILE),
    ("shares", "file", ""),  # no default: without one the pod has no fleet-wide budgets
)
PYTHON_NAMES = ("python", "python3", sys.executable)
# Host variables a pod must not inherit: they would override what the pod template says.
_PRIVATE_PREFIXES = ("TTSFLEET_", "KUBECONFIG", "DEEPGRAM_API_KEY")
RESTART_BACKOFF_MAX_S = 10.0


class Phase(enum.StrEnum):
    """Where a pod's process is in its life."""

    STARTING = "starting"
    RUNNING = "running"
    TERMINATING = "terminating"
    EXITED = "exited"


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    """An httpGet probe: path, period and failure threshold (the period capped by the runner)."""

    path: str
    period_s: float
    timeout_s: float
    failures: int


@dataclass(frozen=True, slots=True)
class Launch:
    """Everything needed to start the container: argv, environment, working directory."""

    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: Path


def probe_spec(probe: Mapping[str, Any] | None, period_cap_s: float) -> ProbeSpec | None:
    """A template probe as the runner runs it; None for none or a kind not emulated (exec, tcpSocket)."""
    if not probe or "httpGet" not in probe:
        return None
    return ProbeSpec(
        path=str(probe["httpGet"].get("path", "/")),
        period_s=min(float(probe.get("periodSeconds", 10)), period_cap_s),
        timeout_s=float(probe.get("timeoutSeconds", 1)),
        failures=int(probe.get("failureThreshold", 3)),
    )


def _python_argv(argv: Sequence[str]) -> list[str]:
    if argv and argv[0] == "ttsfleet":
        return [sys.executable, "-m", "ttsfleet", *argv[1:]]
    if argv and argv[0] in PYTHON_NAMES:
        return [sys.executable, *argv[1:]]
    return list(argv)


def _config_file(argv: Sequence[str], env: Mapping[str, str]) -> str | None:
    for flag, value in itertools.pairwise(argv):
        if flag == "--config":
            return value
    return env.get("TTSFLEET_CONFIG")


def path_overrides(config_path: str | None, paths: volumes.PathMap) -> dict[str, str]:
    """`TTSFLEET_*` variables pointing the gateway's file settings at materialised files."""
    document: Any = {}
    if config_path and Path(config_path).is_file():
        with contextlib.suppress(yaml.YAMLError):
            document = yaml.safe_load(Path(config_path).read_text()) or {}
    overrides = {}
    for group, name, default in PATH_SETTINGS:
        value = (document.get(group) or {}).get(name, default) if isinstance(document, dict) else default
        local = paths.local(str(value)) if value else None
        if local is not None:
            overrides[f"TTSFLEET_{group.upper()}__{name.upper()}"] = local
    return overrides


def field_value(path: str, pod: Mapping[str, Any]) -> str:
    """A `fieldRef.fieldPath` of the pod (metadata.name, metadata.namespace, status.podIP, …)."""
    value: Any = pod
    for part in path.split("."):
        value = value.get(part, "") if isinstance(value, dict) else ""
    return str(value)


def container_env(
    container: Mapping[str, Any], pod: Mapping[str, Any], lookup: Callable[[str, str, str], str | None]
) -> dict[str, str]:
    """The container's env: values, fieldRefs and Secret/ConfigMap key refs (read once, as Kubernetes)."""
    env: dict[str, str] = {}
    for entry in container.get("env") or ():
        name = str(entry["name"])
        source = entry.get("valueFrom")
        if source is None:
            env[name] = str(entry.get("value", ""))
        elif "fieldRef" in source:
            env[name] = field_value(str(source["fieldRef"]["fieldPath"]), pod)
        else:
            for kind, key in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                if key in source:
                    value = lookup(kind, str(source[key]["name"]), str(source[key]["key"]))
                    if value is not None:
                        env[name] = value
    return env


def launch_for(
    pod: Mapping[str, Any],
    pod_dir: Path,
    port: int,
    lookup: Callable[[str, str, str], str | None],
    extra_env: Mapping[str, str],
    host_env: Mapping[str, str],
) -> Launch:
    """How to start the pod's first container locally."""
    spec = pod["spec"]
    container = spec["containers"][0]
    paths = volumes.path_map(pod_dir, spec.get("volumes") or (), container.get("volumeMounts") or ())
    argv = [paths.rewrite(str(arg)) for arg in (*container.get("command", ()), *container.get("args", ()))]
    env = {k: v for k, v in host_env.items() if not k.startswith(_PRIVATE_PREFIXES)}
    own = container_env(container, pod, lookup)
    env.update({key: paths.rewrite(value) for key, value in own.items()})
    env.update(path_overrides(_config_file(argv, own), paths))
    env.update(
        {
            "TMPDIR": str(pod_dir / "tmp"),
            "TTSFLEET_SERVER__HOST": endpoints.POD_IP,
            "TTSFLEET_SERVER__PORT": str(port),
            **extra_env,
        }
    )
    return Launch(argv=tuple(_python_argv(argv)), env=env, cwd=pod_dir)


def pre_stop_argv(container: Mapping[str, Any], port: int) -> list[str] | None:
    """The exec preStop command with the container's port swapped for the real one; None without one."""
    handler = ((container.get("lifecycle") or {}).get("preStop") or {}).get("exec")
    if not handler:
        return None
    declared = {str(entry.get("containerPort")) for entry in container.get("ports") or ()}
    return _python_argv([str(port) if str(arg) in declared else str(arg) for arg in handler["command"]])


def pre_stop_http_path(container: Mapping[str, Any]) -> str | None:
    """The path of an httpGet preStop hook, if that is the kind."""
    handler = ((container.get("lifecycle") or {}).get("preStop") or {}).get("httpGet")
    return str(handler.get("path", "/")) if handler else None


@dataclass
class PodProcess:
    """The process behind one Pod; `run()` supervises it until `terminate()` finishes."""

    namespace: str
    name: str
    template_hash: str
    port: int
    pod_dir: Path
    container: dict[str, Any]
    launch: Launch
    grace_s: float
    readiness: ProbeSpec | None
    liveness: ProbeSpec | None
    on_change: Callable[[], None]
    created: float = field(default_factory=time.monotonic)
    phase: Phase = Phase.STARTING
    ready: bool = False
    ready_since: float | None = None
    restarts: int = 0
    _process: asyncio.subprocess.Process | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def key(self) -> tuple[str, str]:
        """(namespace, name)."""
        return (self.namespace, self.name)

    @property
    def pid(self) -> int | None:
        """The current process id, if one runs."""
        return self._process.pid if self._process is not None else None

    def is_available(self, min_ready_s: float, now: float) -> bool:
        """Ready for at least minReadySeconds."""
        return self.ready and self.ready_since is not None and now - self.ready_since >= min_ready_s

    def _set_ready(self, ready: bool) -> None:
        if ready != self.ready:
            self.ready = ready
            self.ready_since = time.monotonic() if ready else None
            self.on_change()

    async def _start(self) -> asyncio.subprocess.Process:
        (self.pod_dir / "tmp").mkdir(parents=True, exist_ok=True)
        log = (self.pod_dir / "container.log").open("ab")
        try:
            return await asyncio.create_subprocess_exec(
                *self.launch.argv,
                cwd=self.launch.cwd,
                env=self.launch.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the runner's terminal is not the pod's
            )
        finally:
            log.close()

    async def run(self) -> None:
        """Start the container, probe it, and restart it when it exits (restartPolicy Always)."""
        backoff_s = 0.5
        async with httpx.AsyncClient(trust_env=False) as http:
            while not self._stopping.is_set():
                self._process = await self._start()
                self.phase = Phase.RUNNING
                self.on_change()
                probing = asyncio.create_task(self._probe(http), name=f"probe {self.name}")
                exited = asyncio.create_task(self._process.wait(), name=f"wait {self.name}")
                stopping = asyncio.create_task(self._stopping.wait(), name=f"stop {self.name}")
                await asyncio.wait({probing, exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
                probing.cancel()
                stopping.cancel()
                # `terminate()` marks the phase first and sets `_stopping` only once the process is gone, so
                # an exit on its SIGTERM lands here first: that is the pod's end, not a crash to restart.
                if self._stopping.is_set() or self.phase is Phase.TERMINATING:
                    exited.cancel()
                    break
                if not exited.done():  # liveness failed: kill and start again
                    self._process.kill()
                await exited
                self._set_ready(False)
                self.restarts += 1
                code = exited.result()
                logger.warning("pod %s/%s exited (%s); restarting", self.namespace, self.name, code)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(backoff_s):  # back off, or stop at once
                        await self._stopping.wait()
                backoff_s = min(backoff_s * 2, RESTART_BACKOFF_MAX_S)
        await self._done.wait()

    async def _check(self, http: httpx.AsyncClient, probe: ProbeSpec) -> bool:
        try:
            url = f"http://{endpoints.POD_IP}:{self.port}{probe.path}"
            response = await http.get(url, timeout=probe.timeout_s)
        except httpx.HTTPError:
            return False
        return 200 <= response.status_code < 400

    async def _probe(self, http: httpx.AsyncClient) -> None:
        readiness_failures = liveness_failures = 0
        started = False
        period = min(p.period_s for p in (self.readiness, self.liveness, ProbeSpec("/", 1.0, 1, 1)) if p)
        while True:
            if self.readiness is None:
                started = True
                self._set_ready(True)
            elif await self._check(http, self.readiness):
                readiness_failures, started = 0, True
                self._set_ready(True)
            else:
                readiness_failures += 1
                if readiness_failures >= self.readiness.failures:
                    self._set_ready(False)
            if started and self.liveness is not None:
                if await self._check(http, self.liveness):
                    liveness_failures = 0
                else:
                    liveness_failures += 1
                    if liveness_failures >= self.liveness.failures:
                        return
            # The probe period: this is the kubelet's schedule, not a wait for a condition.
            await asyncio.sleep(period if started else min(period, 0.1))

    async def terminate(self) -> None:
        """preStop, SIGTERM, SIGKILL when the grace period runs out; returns once the process is gone."""
        if self.phase is Phase.TERMINATING or self.phase is Phase.EXITED:
            await self._done.wait()
            return
        self.phase = Phase.TERMINATING
        self.on_change()
        deadline = time.monotonic() + self.grace_s
        process = self._process
        try:
            if process is not None and process.returncode is None:
                await self._pre_stop(deadline)
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
                try:
                    async with asyncio.timeout(max(deadline - time.monotonic(), 0.1)):
                        await process.wait()
                except TimeoutError:
                    logger.warning("pod %s/%s outlived its grace period; SIGKILL", self.namespace, self.name)
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    await process.wait()
        finally:
            self._stopping.set()
            self._set_ready(False)
            self.phase = Phase.EXITED
            self._done.set()
            self.on_change()

    async def _pre_stop(self, deadline: float) -> None:
        argv = pre_stop_argv(self.container, self.port)
        path = pre_stop_http_path(self.container)
        remaining = max(deadline - time.monotonic(), 0.1)
        if argv is not None:
            hook = await asyncio.create_subprocess_exec(
                *argv,
                cwd=self.pod_dir,
                env=self.launch.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            try:
                async with asyncio.timeout(remaining):
                    await hook.wait()
            except TimeoutError:
                hook.kill()
                await hook.wait()
        elif path is not None:
            async with httpx.AsyncClient(trust_env=False) as http:
                with contextlib.suppress(httpx.HTTPError):
                    await http.get(f"http://{endpoints.POD_IP}:{self.port}{path}", timeout=remaining)


def host_environment() -> dict[str, str]:
    """The runner's own environment, the base a pod's environment starts from."""
    return dict(os.environ)
