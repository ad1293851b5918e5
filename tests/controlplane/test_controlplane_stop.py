"""Stopping the control plane: every component leaves on SIGTERM, none has to be killed.

Components stop newest first, each gone before the next is told: an apiserver whose etcd went first
waits out its grace period and is then killed, which costs every test run and every `dev down`.
"""

from __future__ import annotations

import signal
from pathlib import Path

from ttsfleet.devcluster.controlplane.launcher import running_control_plane


def test_every_component_leaves_on_sigterm_and_none_is_killed(tmp_path: Path) -> None:
    with running_control_plane(tmp_path) as plane:
        processes = dict(plane.processes)
        assert list(processes) == ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]
    codes = {name: process.returncode for name, process in processes.items()}
    assert all(code is not None and code != -signal.SIGKILL for code in codes.values()), codes
