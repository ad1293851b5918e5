"""Fault specifications: what can go wrong on a connection, parsed from `name:key=value:…` strings.

A spec comes per connection (query parameter `emulator_fault`, repeatable) or globally (the
`--fault` flag, `POST /_emulator/faults`). Global faults may carry `count=N` to hit only the next N
connections, which is how retry paths are exercised. Parsing is pure; the server applies them.

    refuse:status=429              answer the handshake / request with 401, 403, 429 or 503
    close:reason=NET-0000:after_bytes=N | :after_ms=N   close with 1011 and that reason
    stall[:after_bytes=N]          stop sending anything, keep the socket open
    slow:frame_delay_ms=N          add N ms before every audio frame
    reset[:after_bytes=N | :after_ms=N]  reset the TCP connection
    max_age:seconds=N              this socket closes with 1011 NET-0003 after N seconds
    concurrency:limit=N            at most N open sockets per key, else 429
Every spec also takes `on=ws|rest|any` (default any) and, globally, `count=N`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ttsfleet.protocol import CloseReason


class FaultKind(enum.StrEnum):
    REFUSE = "refuse"
    CLOSE = "close"
    STALL = "stall"
    SLOW = "slow"
    RESET = "reset"
    MAX_AGE = "max_age"
    CONCURRENCY = "concurrency"


class Scope(enum.StrEnum):
    WEBSOCKET = "ws"
    REST = "rest"
    ANY = "any"


class InvalidFault(ValueError):
    """A fault spec that cannot be parsed; the message says what is wrong."""


REFUSABLE_STATUSES = frozenset({401, 403, 429, 503})
CLOSE_REASONS = frozenset(
    {CloseReason.INTERNAL, CloseReason.CLIENT_IDLE, CloseReason.SEND_FAILED, CloseReason.SOCKET_TOO_OLD}
)

_ALLOWED_PARAMS: dict[FaultKind, frozenset[str]] = {
    FaultKind.REFUSE: frozenset({"status"}),
    FaultKind.CLOSE: frozenset({"reason", "after_bytes", "after_ms"}),
    FaultKind.STALL: frozenset({"after_bytes"}),
    FaultKind.SLOW: frozenset({"frame_delay_ms"}),
    FaultKind.RESET: frozenset({"after_bytes", "after_ms"}),
    FaultKind.MAX_AGE: frozenset({"seconds"}),
    FaultKind.CONCURRENCY: frozenset({"limit"}),
}
_COMMON_PARAMS = frozenset({"on", "count"})


@dataclass(frozen=True, slots=True)
class Fault:
    """One parsed fault; fields not used by its kind stay None."""

    kind: FaultKind
    scope: Scope = Scope.ANY
    count: int | None = None
    status: int | None = None
    reason: CloseReason | None = None
    after_bytes: int | None = None
    after_ms: float | None = None
    frame_delay_ms: float | None = None
    seconds: float | None = None
    limit: int | None = None

    def applies_to(self, scope: Scope) -> bool:
        return self.scope is Scope.ANY or self.scope is scope


def _number(name: str, raw: str, spec: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise InvalidFault(f"{spec!r}: {name} must be a number, not {raw!r}") from None
    if value < 0:
        raise InvalidFault(f"{spec!r}: {name} must not be negative")
    return value


def parse_fault(spec: str) -> Fault:
    """Parse one spec; raises InvalidFault naming the problem."""
    name, *parts = spec.strip().split(":")
    try:
        kind = FaultKind(name)
    except ValueError:
        known = ", ".join(kind.value for kind in FaultKind)
        raise InvalidFault(f"{spec!r}: unknown fault {name!r} (known: {known})") from None
    params: dict[str, str] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep:
            raise InvalidFault(f"{spec!r}: {part!r} is not key=value")
        if key not in _ALLOWED_PARAMS[kind] | _COMMON_PARAMS:
            raise InvalidFault(f"{spec!r}: {kind} takes no parameter {key!r}")
        params[key] = value
    try:
        scope = Scope(params.get("on", Scope.ANY.value))
    except ValueError:
        raise InvalidFault(f"{spec!r}: on must be ws, rest or any") from None
    count = int(_number("count", params["count"], spec)) if "count" in params else None
    fault = Fault(kind=kind, scope=scope, count=count)
    return _complete(fault, params, spec)


def _complete(fault: Fault, params: dict[str, str], spec: str) -> Fault:
    kind = fault.kind
    values: dict[str, object] = {}
    for key in ("after_bytes", "limit"):
        if key in params:
            values[key] = int(_number(key, params[key], spec))
    for key in ("after_ms", "frame_delay_ms", "seconds"):
        if key in params:
            values[key] = _number(key, params[key], spec)
    if kind is FaultKind.REFUSE:
        status = int(_number("status", params.get("status", "503"), spec))
        if status not in REFUSABLE_STATUSES:
            raise InvalidFault(f"{spec!r}: status must be one of {sorted(REFUSABLE_STATUSES)}")
        values["status"] = status
    elif kind is FaultKind.CLOSE:
        try:
            reason = CloseReason(params.get("reason", CloseReason.INTERNAL.value))
        except ValueError:
            reason = None
        if reason not in CLOSE_REASONS:
            allowed = ", ".join(sorted(r.value for r in CLOSE_REASONS))
            raise InvalidFault(f"{spec!r}: reason must be one of {allowed}")
        values["reason"] = reason
        if "after_bytes" not in values and "after_ms" not in values:
            values["after_bytes"] = 0
    elif kind is FaultKind.SLOW and "frame_delay_ms" not in values:
        raise InvalidFault(f"{spec!r}: slow needs frame_delay_ms")
    elif kind is FaultKind.MAX_AGE and "seconds" not in values:
        raise InvalidFault(f"{spec!r}: max_age needs seconds")
    elif kind is FaultKind.CONCURRENCY and "limit" not in values:
        raise InvalidFault(f"{spec!r}: concurrency needs limit")
    elif (
        kind in (FaultKind.STALL, FaultKind.RESET)
        and "after_bytes" not in values
        and "after_ms" not in values
    ):
        values["after_bytes"] = 0
    return Fault(**{**_fields(fault), **values})  # type: ignore[arg-type]


def _fields(fault: Fault) -> dict[str, object]:
    return {name: getattr(fault, name) for name in Fault.__slots__}


@dataclass(frozen=True, slots=True)
class ConnectionFaults:
    """The faults in force for one connection, grouped for the server's hot path."""

    refuse_status: int | None = None
    close: Fault | None = None
    stall_after_bytes: int | None = None
    frame_delay_ms: float = 0.0
    reset: Fault | None = None
    max_age_s: float | None = None
    concurrency_limit: int | None = None

    @classmethod
    def combine(cls, faults: list[Fault]) -> ConnectionFaults:
        """Group faults; when a kind repeats, the first one wins."""
        found: dict[FaultKind, Fault] = {}
        for fault in faults:
            found.setdefault(fault.kind, fault)
        refuse = found.get(FaultKind.REFUSE)
        stall = found.get(FaultKind.STALL)
        slow = found.get(FaultKind.SLOW)
        max_age = found.get(FaultKind.MAX_AGE)
        concurrency = found.get(FaultKind.CONCURRENCY)
        return cls(
            refuse_status=refuse.status if refuse else None,
            close=found.get(FaultKind.CLOSE),
            stall_after_bytes=stall.after_bytes if stall else None,
            frame_delay_ms=slow.frame_delay_ms or 0.0 if slow else 0.0,
            reset=found.get(FaultKind.RESET),
            max_age_s=max_age.seconds if max_age else None,
            concurrency_limit=concurrency.limit if concurrency else None,
        )


class GlobalFaults:
    """Faults for every connection, each optionally limited to the next `count` connections."""

    def __init__(self, specs: tuple[str, ...] = ()) -> None:
        self._faults: list[list[Fault | int | None]] = []
        self.replace(list(specs))

    def replace(self, specs: list[str]) -> None:
        parsed = [parse_fault(spec) for spec in specs]  # all or nothing
        self._faults = [[fault, fault.count] for fault in parsed]
        self._specs = list(specs)

    @property
    def specs(self) -> list[str]:
        return list(self._specs)

    def take(self, scope: Scope) -> list[Fault]:
        """Faults for a new connection of `scope`, spending one use of each counted fault."""
        taken: list[Fault] = []
        for entry in self._faults:
            fault, remaining = entry
            assert isinstance(fault, Fault)
            if not fault.applies_to(scope):
                continue
            if remaining is None:
                taken.append(fault)
            elif isinstance(remaining, int) and remaining > 0:
                entry[1] = remaining - 1
                taken.append(fault)
        return taken
