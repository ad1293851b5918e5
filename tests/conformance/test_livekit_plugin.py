"""A second independent client: LiveKit Agents' Deepgram plugin, which speaks Deepgram's TTS with its own
aiohttp code (no Deepgram SDK), pointed at our server by its `base_url`.

It sends `mip_opt_out` on both faces and `container=none` on REST; a German voice checks that the
voices of Deepgram's spec pass, and the recording upstream shows what reached it.
"""

from __future__ import annotations

import aiohttp
import httpx
from livekit.plugins import deepgram

from tests.support.speaking import SpeakTarget

VOICE = "aura-2-kara-de"
RATE = 16000


def _tts(target: SpeakTarget, session: aiohttp.ClientSession) -> deepgram.TTS:
    return deepgram.TTS(
        model=VOICE,
        encoding="linear16",
        sample_rate=RATE,
        api_key=target.token,
        base_url=f"{target.http_url}/v1/speak",
        http_session=session,
        mip_opt_out=True,
    )


def _recorded(base_url: str) -> list[dict[str, str]]:
    records = httpx.get(f"{base_url}/_emulator/requests", timeout=5.0).json()["requests"]
    return [dict(record["query"]) | {"transport": record["transport"]} for record in records]


async def test_plugin_speaks_over_rest_and_websocket(speak_target: SpeakTarget, recorder_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        tts = _tts(speak_target, session)
        rest_audio = bytearray()
        async with tts.synthesize("Guten Tag, wie geht es Ihnen?") as chunked:
            async for event in chunked:
                rest_audio += event.frame.data
        stream = tts.stream()
        stream.push_text("Hallo aus dem Gateway. ")
        stream.end_input()
        socket_audio = bytearray()
        async for event in stream:
            socket_audio += event.frame.data
        await stream.aclose()
        await tts.aclose()
    for audio in (rest_audio, socket_audio):
        assert 0.8 < len(audio) / (2 * RATE) < 6.0
    reached = [r for r in _recorded(recorder_url) if r.get("model") == VOICE]
    for transport in ("rest", "websocket"):
        assert any(r["transport"] == transport and r.get("mip_opt_out") == "true" for r in reached), reached
