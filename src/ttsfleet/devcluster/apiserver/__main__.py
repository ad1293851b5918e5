"""`python -m ttsfleet.devcluster.apiserver --port N --kubeconfig PATH`: the API as a standalone process."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from ttsfleet.devcluster.apiserver.serving import serve


def main(argv: list[str] | None = None) -> None:
    """Parse the flags and serve until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m ttsfleet.devcluster.apiserver",
        description="An embedded Kubernetes API for the local ttsfleet.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one (default: 0)")
    parser.add_argument(
        "--kubeconfig", type=Path, default=None, help="write a kubeconfig for the server here"
    )
    args = parser.parse_args(argv)
    asyncio.run(serve(host=args.host, port=args.port or None, kubeconfig=args.kubeconfig))


if __name__ == "__main__":
    main()
