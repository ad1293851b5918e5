"""The fleet's API clients wait out a 429 with Retry-After, as the real kube-apiserver asks while a new
resource's watch cache initializes ("storage is (re)initializing"); here against a real HTTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from ttsfleet.devcluster import retry_after

STATUS = {"kind": "Status", "status": "Failure", "code": 429, "message": "storage is (re)initializing"}


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[str]]]:
    """/busy: 429 (Retry-After: 0) twice, then 200; /shedding: 429 without Retry-After; /always: 429."""
    seen: list[str] = []

    async def busy(request: web.Request) -> web.Response:
        seen.append(request.method)
        if len(seen) <= 2:
            return web.json_response(STATUS, status=429, headers={"Retry-After": "0"})
        return web.json_response({"kind": "List", "items": [], "body": await request.text()})

    async def shedding(request: web.Request) -> web.Response:
        seen.append(request.method)
        return web.json_response(STATUS, status=429)

    async def always(request: web.Request) -> web.Response:
        seen.append(request.method)
        return web.json_response(STATUS, status=429, headers={"Retry-After": "0"})

    app = web.Application()
    app.router.add_route("*", "/busy", busy)
    app.router.add_get("/shedding", shedding)
    app.router.add_get("/always", always)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def test_a_429_with_retry_after_is_sent_again_with_its_body(server: tuple[str, list[str]]) -> None:
    url, seen = server
    async with httpx.AsyncClient(base_url=url, transport=retry_after.transport()) as http:
        response = await http.post("/busy", json={"kind": "TTSBackend"})
    assert response.status_code == 200
    assert response.json()["body"] == '{"kind":"TTSBackend"}'
    assert seen == ["POST", "POST", "POST"]


async def test_a_429_without_retry_after_is_returned_as_it_came(server: tuple[str, list[str]]) -> None:
    url, seen = server
    async with httpx.AsyncClient(base_url=url, transport=retry_after.transport()) as http:
        response = await http.get("/shedding")
    assert response.status_code == 429 and seen == ["GET"]


async def test_it_gives_up_after_ten_attempts(server: tuple[str, list[str]]) -> None:
    url, seen = server
    async with httpx.AsyncClient(base_url=url, transport=retry_after.transport()) as http:
        response = await http.get("/always")
    assert response.status_code == 429 and len(seen) == retry_after.ATTEMPTS
