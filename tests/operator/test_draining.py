"""The preStop drain script, run for real against a stand-in gateway on localhost."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ttsfleet.operator.rendering import draining


@dataclass
class FakeGateway:
    """Answers POST /drain and GET /statusz; sessions close one per /statusz poll after a drain."""

    sessions: int
    calls: list[str] = field(default_factory=list)
    port: int = 0


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    state = FakeGateway(sessions=2)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            state.calls.append(f"POST {self.path}")
            self.send_response(202 if self.path == "/drain" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            state.calls.append(f"GET {self.path}")
            body = json.dumps({"sessions": {"active": state.sessions, "total": 9}}).encode()
            if "POST /drain" in state.calls and state.sessions:
                state.sessions -= 1
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="fake-gateway", daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


def run_script(port: int, delay_s: str = "0", drain_s: str = "10") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", draining.DRAIN_SCRIPT, str(port), delay_s, drain_s],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_script_drains_then_waits_until_sessions_are_gone(gateway: FakeGateway) -> None:
    result = run_script(gateway.port)
    assert result.returncode == 0, result.stderr
    assert gateway.calls[0] == "POST /drain"
    assert gateway.calls[1:] == ["GET /statusz"] * 3
    assert gateway.sessions == 0


def test_script_gives_up_at_the_drain_deadline(gateway: FakeGateway) -> None:
    gateway.sessions = 10_000
    result = run_script(gateway.port, drain_s="0.3")
    assert result.returncode == 0, result.stderr
    assert gateway.sessions > 0


def test_script_exits_cleanly_when_nothing_listens() -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as probe:
        free_port = probe.server_address[1]
    result = run_script(free_port)
    assert result.returncode == 0, result.stderr
