"""`make bench` / `make bench-quick`: run every benchmark that exists and print its figures.

Each benchmark writes its own JSON under `benchmarks/results/`; `docs/performance.md` records the
figures with the command that produced them.
"""

from __future__ import annotations

import argparse
import sys

from benchmarks import emulator_capacity


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="fewer levels and shorter runs (under 3 minutes)"
    )
    args = parser.parse_args()
    levels, seconds = ("50,100", "5") if args.quick else ("50,100,200,400", "10")
    sys.argv = ["emulator_capacity", "--levels", levels, "--seconds", seconds]
    return emulator_capacity.main()


if __name__ == "__main__":
    sys.exit(main())
