"""Run the emulator under uvicorn with the protocol classes that expose each connection."""

from __future__ import annotations

import structlog
import uvicorn

from ttsfleet.emulator.app import create_app
from ttsfleet.emulator.connection import HttpProtocol, WebSocketProtocol
from ttsfleet.emulator.settings import EmulatorSettings
from ttsfleet.logs import configure_logging

log = structlog.get_logger(__name__)


def run(settings: EmulatorSettings, log_level: str = "INFO") -> None:
    """Serve until interrupted."""
    configure_logging(log_level, component="emulator")
    app = create_app(settings)
    ctx = app.state.ctx
    if settings.is_open_auth:
        log.warning("no --api-key given: every non-empty key is accepted")
    if ctx.renderer.backend != "espeak-ng":
        log.warning("eSpeak NG unavailable: serving a fallback waveform", backend=ctx.renderer.backend)
    log.info(
        "emulator starting",
        host=settings.host,
        port=settings.port,
        synthesis=ctx.renderer.backend,
        faults=list(settings.faults),
        **ctx.latency.describe(),
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=HttpProtocol,
        ws=WebSocketProtocol,
        # Far above max_frame_bytes so oversized frames reach the app and get Deepgram's BIG-0000.
        ws_max_size=max(16 * 1024 * 1024, settings.max_frame_bytes * 4),
        ws_ping_interval=None,  # Deepgram does not ping clients; clients ping it
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    uvicorn.Server(config).run()
