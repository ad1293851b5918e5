"""Admission of a `/v1/speak` request, shared by the WebSocket and REST faces.

Checks run in Deepgram's order — injected refusal, credentials, parameters, concurrency — and the
first failure becomes a `Refusal` with the HTTP status, err_code and message to send.
"""

from __future__ import annotations

from dataclasses import dataclass

from ttsfleet.emulator.context import EmulatorContext
from ttsfleet.emulator.faults import ConnectionFaults, InvalidFault, Scope, parse_fault
from ttsfleet.emulator.keys import Access, Need
from ttsfleet.protocol import (
    ErrorBody,
    ErrorCode,
    InvalidOptions,
    SpeakOptions,
    Transport,
    UnknownModel,
    error_code_for_status,
    parse_speak_options,
    read_credential,
)
from ttsfleet.protocol.formats import QueryInput
from ttsfleet.protocol.headers import Credential

_REFUSAL_MESSAGES = {
    401: "Invalid credentials.",
    403: "Insufficient permissions for the requested model.",
    429: "Too many requests: the project's concurrency limit is reached.",
    503: "The service is temporarily unavailable.",
}


@dataclass(frozen=True, slots=True)
class Refusal(Exception):
    status: int
    err_code: str
    message: str

    def body(self, request_id: str) -> ErrorBody:
        return ErrorBody(self.err_code, self.message, request_id)


@dataclass(frozen=True, slots=True)
class Admission:
    credential: Credential
    options: SpeakOptions
    faults: ConnectionFaults


def collect_faults(ctx: EmulatorContext, scope: Scope, specs: list[str]) -> ConnectionFaults:
    """Per-connection faults first, then the global ones (which spend their counts)."""
    try:
        own = [parse_fault(spec) for spec in specs]
    except InvalidFault as error:
        raise Refusal(400, ErrorCode.INVALID_QUERY_PARAMETER, f"emulator_fault: {error}") from None
    faults = ConnectionFaults.combine(own + ctx.faults.take(scope))
    return faults


def admit(
    ctx: EmulatorContext,
    transport: Transport,
    query: QueryInput,
    fault_specs: list[str],
    authorization: str | None,
    subprotocols: list[str] | None,
) -> Admission:
    """Admit a request or raise Refusal."""
    scope = Scope.WEBSOCKET if transport is Transport.WEBSOCKET else Scope.REST
    faults = collect_faults(ctx, scope, fault_specs)
    if faults.refuse_status is not None:
        ctx.stats.faults_applied[f"refuse:{faults.refuse_status}"] += 1
        status = faults.refuse_status
        raise Refusal(status, error_code_for_status(status), _REFUSAL_MESSAGES[status])
    credential = read_credential(authorization, subprotocols)
    if credential is None:
        raise Refusal(401, ErrorCode.INVALID_AUTH, _REFUSAL_MESSAGES[401])
    access = ctx.keys.check(credential.secret, ctx.now(), Need.SPEAK)
    if access is Access.UNKNOWN:
        raise Refusal(401, ErrorCode.INVALID_AUTH, _REFUSAL_MESSAGES[401])
    if access is Access.FORBIDDEN:
        raise Refusal(403, ErrorCode.INSUFFICIENT_PERMISSIONS, "The API key lacks the usage:write scope.")
    try:
        options = parse_speak_options(query, transport, ctx.settings.known_models)
    except UnknownModel as error:
        raise Refusal(400, ErrorCode.UNKNOWN_MODEL, str(error)) from None
    except InvalidOptions as error:
        raise Refusal(400, ErrorCode.INVALID_QUERY_PARAMETER, str(error)) from None
    if transport is Transport.WEBSOCKET:
        limit = faults.concurrency_limit or ctx.settings.max_sockets_per_key or None
        if limit is not None and ctx.stats.open_for_key(credential.secret) >= limit:
            raise Refusal(429, ErrorCode.TOO_MANY_REQUESTS, _REFUSAL_MESSAGES[429])
    return Admission(credential, options, faults)
