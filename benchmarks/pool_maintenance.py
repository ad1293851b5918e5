"""What a pass of the pool's spare sizing costs, against a lease's choice of socket among the same sockets.

    python -m benchmarks.pool_maintenance [--sockets 90,270,500] [--passes 2000]

The pool sizes its spares after every lease and release (`Pool._maintain`), reading every idle socket of
the key (`sockets.sockets_to_open`); a lease chooses among the same sockets (`sockets.pick`). At a
thousand sessions a key has about 90 sockets, at two thousand about 270 (docs/performance.md). Each
socket here has spent a different part of its Flush and character budgets, as a busy key's have. Prints
the microseconds of each per pass, and the sizing's cost per idle socket.
"""

from __future__ import annotations

import argparse
import timeit
from dataclasses import dataclass
from typing import Any, cast

from ttsfleet.dataplane.settings import PoolSettings
from ttsfleet.dataplane.sockets import PooledSocket, PoolKey, pick, sockets_to_open
from ttsfleet.protocol import Encoding, SocketLimits

KEY = PoolKey("aura-2-thalia-en", Encoding.LINEAR16, 24000, 1.0)
LIMITS = SocketLimits()
NOW = 30.0  # seconds into the budget window: every socket's charges are still in it


class _OpenSocket:
    """All the sizing and the choice ask of the socket itself."""

    is_open = True


@dataclass(frozen=True)
class Cost:
    sockets: int
    sizing_us: float  # one `sockets_to_open` pass
    pick_us: float  # one lease's `pick`

    @property
    def sizing_us_per_socket(self) -> float:
        return self.sizing_us / self.sockets


def idle_sockets(count: int) -> list[PooledSocket]:
    """`count` idle sockets of one key, each with 0 to 14 utterances of 40 characters in its window."""
    made = []
    for socket_id in range(count):
        pooled = PooledSocket(socket_id, KEY, cast(Any, _OpenSocket()), 0.0, 1, LIMITS.window_s)
        for second in range(socket_id % 15):
            pooled.charge(1.0 + second, 40)
        made.append(pooled)
    return made


def measure(count: int, passes: int) -> Cost:
    present = idle_sockets(count)
    settings = PoolSettings()

    def sizing() -> None:
        sockets_to_open(present, 0, 10, 50.0, 0.15, NOW, settings, LIMITS)

    def choice() -> None:
        pick(present, 40, NOW, LIMITS, lambda pooled: pooled.socket.is_open)

    # The best of five repeats: the least disturbed by whatever else the machine does.
    sizing_s = min(timeit.repeat(sizing, number=passes, repeat=5)) / passes
    pick_s = min(timeit.repeat(choice, number=passes, repeat=5)) / passes
    return Cost(count, sizing_s * 1e6, pick_s * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sockets", default="90,270,500", help="idle sockets of the key, comma-separated")
    parser.add_argument("--passes", type=int, default=2000)
    args = parser.parse_args()
    for count in (int(part) for part in args.sockets.split(",")):
        cost = measure(count, args.passes)
        print(
            f"{cost.sockets:4} idle sockets: sizing {cost.sizing_us:6.1f} µs a pass"
            f" ({cost.sizing_us_per_socket:.2f} a socket), a lease's pick {cost.pick_us:6.1f} µs"
            f" (sizing ÷ pick {cost.sizing_us / cost.pick_us:.2f})",
            flush=True,
        )


if __name__ == "__main__":
    main()
