"""The processes a benchmark measures: emulator, gateway and nginx on loopback, pinned to CPU 0.

Each runs in a temporary directory of its own and is stopped by the context manager that started it.
CPU seconds and peak RSS are read from /proc, so any process (nginx included) is measured the same way.
nginx is a Debian package; it is installed on first use (`apt-get`, we run as root) and always started
with its own configuration on 127.0.0.1, never as the system service.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from ttsfleet.devcluster.ports import free_port

SERVER_CPU = 0
LOADGEN_CPU = 1
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
DEEPGRAM_KEY = "bench-deepgram-key"


@dataclass(frozen=True, slots=True)
class Server:
    """A started process and where it listens."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/speak"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """The process's high-water resident set (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _wait_until_serving(server: Server, path: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited at start; see {server.log_path}")
        try:
            httpx.get(server.base_url + path, timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{server.name} not serving {path} in time; see {server.log_path}"
                ) from None
            time.sleep(0.1)  # waiting for the process to listen, with a deadline


@contextlib.contextmanager
def _started(
    name: str, args: list[str], port: int, workdir: Path, env: Mapping[str, str], ready_path: str
) -> Iterator[Server]:
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            args, cwd=workdir, env={**os.environ, **env}, stdout=log_file, stderr=subprocess.STDOUT
        )
    server = Server(name, process, port, log_path)
    try:
        os.sched_setaffinity(process.pid, {SERVER_CPU})
        _wait_until_serving(server, ready_path)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_S)


def _ttsfleet(*args: str) -> list[str]:
    return [sys.executable, "-m", "ttsfleet", *args]


@contextlib.contextmanager
def emulator(workdir: Path, options: Sequence[str] = ()) -> Iterator[Server]:
    """The Deepgram emulator with its default, realistic latency model, or as `options` (its CLI) say."""
    port = free_port()
    args = _ttsfleet(
        "emulator", "--host", "127.0.0.1", "--port", str(port), "--log-level", "WARNING", *options
    )
    with _started("emulator", args, port, workdir, {}, "/_emulator/healthz") as server:
        yield server


@contextlib.contextmanager
def gateway(
    workdir: Path,
    upstream: Server,
    tokens: list[str],
    settings: Mapping[str, str],
    pod_name: str = "bench",
    ready_path: str = "/readyz",
) -> Iterator[Server]:
    """`ttsfleet dataplane` before `upstream`, accepting `tokens`; `settings` are TTSFLEET_* variables.

    Started once `ready_path` answers 2xx (`/livez` for a gateway that waits for its share to be ready).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    key_file = workdir / "deepgram-key"
    key_file.write_text(DEEPGRAM_KEY + "\n")
    tokens_file = workdir / "tokens"
    tokens_file.write_text("\n".join(tokens) + "\n")
    port = free_port()
    args = _ttsfleet(
        "dataplane",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--pod-name",
        pod_name,
        "--upstream-url",
        f"ws://127.0.0.1:{upstream.port}",
        "--deepgram-key-file",
        str(key_file),
        "--client-tokens-file",
        str(tokens_file),
    )
    with _started(pod_name, args, port, workdir, settings, ready_path) as server:
        yield server


def ensure_nginx() -> str:
    """The nginx binary, installing the Debian package first when it is missing."""
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if found:
        return found
    subprocess.run(["apt-get", "update", "-qq"], check=True, stdout=subprocess.DEVNULL)
    for package in ("nginx-light", "nginx"):
        installed = subprocess.run(
            ["apt-get", "install", "-y", "-qq", package],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            stdout=subprocess.DEVNULL,
            check=False,
        )
        if installed.returncode == 0:
            break
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not found:
        raise RuntimeError("nginx could not be installed (apt-get install nginx-light / nginx)")
    return found


_NGINX_CONF = """\
# One process (no master), so /proc figures cover all of nginx; loopback only.
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 16384;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream_port};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_buffering off;
            proxy_read_timeout 300s;
            proxy_send_timeout 300s;
        }}
    }}
}}
"""


@contextlib.contextmanager
def nginx(workdir: Path, upstream: Server) -> Iterator[Server]:
    """nginx as a plain WebSocket reverse proxy in front of `upstream`."""
    binary = ensure_nginx()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(_NGINX_CONF.format(workdir=workdir, port=port, upstream_port=upstream.port))
    args = [binary, "-p", str(workdir), "-e", str(workdir / "error.log"), "-c", str(conf)]
    with _started("nginx", args, port, workdir, {}, "/_emulator/healthz") as server:
        yield server
