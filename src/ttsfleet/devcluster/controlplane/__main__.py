"""`python -m ttsfleet.devcluster.controlplane [--once]`: start a throw-away cluster and print how long
it took and where its admin kubeconfig is; with `--once` stop at once (a start-time measurement),
else run until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import tempfile
import threading
from pathlib import Path

from ttsfleet.devcluster.controlplane.launcher import running_control_plane


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="stop right after the cluster is ready")
    parser.add_argument("--workdir", type=Path, help="state, certificates, logs (default: a temp dir)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ttsfleet-controlplane-") as scratch:
        workdir = args.workdir or Path(scratch)
        with running_control_plane(workdir) as plane:
            print(f"Kubernetes {plane.version} ready in {plane.started_in_s:.1f} s at {plane.server}")
            print(f"export KUBECONFIG={plane.admin_kubeconfig}", flush=True)
            if not args.once:
                stopping = threading.Event()
                signal.signal(signal.SIGINT, lambda *_: stopping.set())
                signal.signal(signal.SIGTERM, lambda *_: stopping.set())
                stopping.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
