"""The fleet on a real Kubernetes cluster (kind): images built and loaded, the chart installed with helm,
examples applied as shipped, speech through the Service, one rollout under load, a key rotated.
Minutes, not seconds.

`examples/ttsbackend-aura-en.yaml` is applied unmodified: its NetworkPolicy is enforced by kind's CNI
(kindnet enforces NetworkPolicies since kind 0.24), so the operator's /statusz probes must be admitted
for status.fleet to fill in, and its ServiceMonitor has no Prometheus Operator CRDs to land in, so the
backend must become Ready anyway and say why the ServiceMonitor is missing.

Runs only where a Docker engine, kind, kubectl and helm are present (GitHub's ubuntu runners:
.github/workflows/e2e-kind.yml); elsewhere — our CI machines have no Docker engine — it skips and says
which one is missing. `TTSFLEET_E2E_KIND=0` skips it on a laptop that has them all. Upstream is the
Deepgram emulator, run in the cluster from the dataplane image (its speech is eSpeak-less there, a tone
pattern: the check is audio of the right format), unless `DEEPGRAM_API_KEY` is set: then real Deepgram.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.tools import find_tool, require_tool
from tests.support.waiting import wait_for
from ttsfleet import wavfile
from ttsfleet.devcluster.ports import free_port
from ttsfleet.fingerprints import fingerprint_secret

REPO = Path(__file__).resolve().parents[3]
CLUSTER = os.environ.get("KIND_CLUSTER_NAME", "ttsfleet-e2e")
VERSION = yaml.safe_load((REPO / "charts/ttsfleet/Chart.yaml").read_text())["appVersion"]
# The tags the chart (appVersion) and examples/ (spec.image) name, so nothing needs overriding.
IMAGES = {
    "Dockerfile.operator": f"ghcr.io/ttsfleet/operator:{VERSION}",
    "Dockerfile.dataplane": f"ghcr.io/ttsfleet/dataplane:{VERSION}",
    # The in-cluster Deepgram stand-in: the gateway's image holds no emulator.
    "Dockerfile.emulator": f"ghcr.io/ttsfleet/emulator:{VERSION}",
}
TOKEN = "REPLACE-WITH-A-LONG-RANDOM-FLEET-TOKEN"  # examples/secrets-aura-en.yaml
NAMESPACE = "voice"


def _missing() -> str | None:
    """Why this cannot run here, or None."""
    if os.environ.get("TTSFLEET_E2E_KIND") == "0":
        return "TTSFLEET_E2E_KIND=0: the kind end-to-end test is switched off"
    for tool in ("docker", "kind"):
        if shutil.which(tool) is None:
            return f"needs {tool} on PATH (a real cluster: Docker engine + kind); not found"
    for tool in ("helm", "kubectl"):
        if find_tool(tool) is None:
            return f"needs {tool} (make install puts it in .venv/bin); not found"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60, check=False)
    if info.returncode != 0:
        return f"needs a Docker engine for kind; `docker info` failed: {info.stderr.strip()[-200:]}"
    return None


MISSING = _missing()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(MISSING is not None, reason=str(MISSING))]


def run(*argv: str, timeout_s: float = 600, stdin: str | None = None) -> str:
    """Run a command; fail the test with its output when it fails."""
    result = subprocess.run(
        argv, input=stdin, capture_output=True, text=True, timeout=timeout_s, check=False, cwd=REPO
    )
    assert result.returncode == 0, f"{' '.join(argv)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def kubectl(*args: str, timeout_s: float = 300, stdin: str | None = None) -> str:
    return run(
        str(require_tool("kubectl")), "--context", f"kind-{CLUSTER}", *args, timeout_s=timeout_s, stdin=stdin
    )


EMULATOR = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: deepgram-emulator, namespace: {NAMESPACE}}}
spec:
  selector: {{matchLabels: {{app: deepgram-emulator}}}}
  template:
    metadata: {{labels: {{app: deepgram-emulator}}}}
    spec:
      # examples/namespace-voice.yaml enforces the `restricted` Pod Security Standard.
      securityContext: {{runAsNonRoot: true, runAsUser: 10001, seccompProfile: {{type: RuntimeDefault}}}}
      containers:
        - name: emulator
          image: {IMAGES["Dockerfile.emulator"]}
          imagePullPolicy: IfNotPresent
          securityContext: {{allowPrivilegeEscalation: false, capabilities: {{drop: [ALL]}}}}
          command: [ttsfleet, emulator, --host, 0.0.0.0, --port, "8900"]
          ports: [{{containerPort: 8900}}]
          readinessProbe: {{httpGet: {{path: /_emulator/healthz, port: 8900}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: deepgram-emulator, namespace: {NAMESPACE}}}
spec:
  selector: {{app: deepgram-emulator}}
  ports: [{{port: 8900, targetPort: 8900}}]
"""


# The gateways' egress policy allows Deepgram's port on `ipBlock`s, which do not match pods on many CNIs:
# an in-cluster upstream needs its own rule (docs/security.md, "NetworkPolicy").
EMULATOR_EGRESS = f"""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: aura-en-to-emulator, namespace: {NAMESPACE}}}
spec:
  podSelector: {{matchLabels: {{app.kubernetes.io/instance: aura-en}}}}
  policyTypes: [Egress]
  egress:
    - to: [{{podSelector: {{matchLabels: {{app: deepgram-emulator}}}}}}]
      ports: [{{protocol: TCP, port: 8900}}]
"""
LOAD_SECONDS = 240
# Four agents in the backend's namespace (labelled as a client namespace), each speaking in a loop
# through the Service for LOAD_SECONDS and counting what failed; the last line is the tally.
LOAD_POD = f"""
apiVersion: v1
kind: Pod
metadata: {{name: rollout-load, namespace: {NAMESPACE}}}
spec:
  restartPolicy: Never
  containers:
    - name: load
      image: {IMAGES["Dockerfile.dataplane"]}
      imagePullPolicy: IfNotPresent
      command:
        - sh
        - -c
        - |
          end=$(( $(date +%s) + {LOAD_SECONDS} ))
          agent() {{
            ok=0; failed=0
            while [ "$(date +%s)" -lt "$end" ]; do
              if ttsfleet say "speaking during a rollout" --url ws://aura-en.{NAMESPACE}:8080 \\
                  --token {TOKEN} -o /tmp/out-$1.wav >/dev/null 2>&1
              then ok=$((ok+1)); else failed=$((failed+1)); fi
            done
            echo "$ok $failed" > /tmp/tally-$1
          }}
          for n in 1 2 3 4; do agent $n & done
          wait
          cat /tmp/tally-* | awk '{{ok+=$1; failed+=$2}} END {{print "ok=" ok " failed=" failed}}'
"""


def jsonpath(expression: str) -> str:
    return kubectl("get", "ttsb/aura-en", "-n", NAMESPACE, "-o", f"jsonpath={expression}").strip()


def assert_converged() -> None:
    assert jsonpath("{.metadata.generation}") == jsonpath("{.status.observedGeneration}")


def rollout_under_load() -> None:
    """A spec change rolls every pod while agents speak through the Service; none of them fails."""
    kubectl("apply", "-f", "-", stdin=LOAD_POD)
    kubectl("wait", "--for=condition=Ready", "pod/rollout-load", "-n", NAMESPACE, "--timeout=120s")
    started = time.monotonic()
    change = {"spec": {"rollout": {"drainTimeoutSeconds": 45}}}
    kubectl("patch", "ttsb/aura-en", "-n", NAMESPACE, "--type=merge", "-p", json.dumps(change))
    kubectl("rollout", "status", "deployment/aura-en", "-n", NAMESPACE, "--timeout=300s")
    assert time.monotonic() - started < LOAD_SECONDS - 10, "the rollout outlasted the load: not under load"
    kubectl("wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/rollout-load", "-n", NAMESPACE,
            f"--timeout={LOAD_SECONDS + 120}s")  # fmt: skip
    tally = kubectl("logs", "pod/rollout-load", "-n", NAMESPACE).strip().splitlines()[-1]
    ok, failed = (int(part.split("=")[1]) for part in tally.split())
    assert ok > 0 and failed == 0, f"utterances during the rollout: {tally}"
    kubectl("wait", "--for=condition=Ready", "ttsb/aura-en", "-n", NAMESPACE, "--timeout=300s")
    assert_converged()


def set_key(key: str, tmp_path: Path) -> None:
    """Put `key` into the example's key Secret (a patch file: the key stays off command lines)."""
    patch = tmp_path / "key-patch.yaml"
    patch.touch(mode=0o600)
    patch.write_text(yaml.safe_dump({"stringData": {"api-key": key}}))
    kubectl(
        "patch", "secret", "aura-en-deepgram", "-n", NAMESPACE, "--type=merge", "--patch-file", str(patch)
    )


@pytest.fixture(scope="module")
def kind_cluster() -> Iterator[str]:
    """A kind cluster with the images loaded; deleted afterwards unless it existed before."""
    existed = CLUSTER in run("kind", "get", "clusters").split()
    if not existed:
        run("kind", "create", "cluster", "--name", CLUSTER, "--wait", "180s")
    try:
        for dockerfile, tag in IMAGES.items():
            run("docker", "build", "-f", dockerfile, "-t", tag, ".", timeout_s=1200)
            run("kind", "load", "docker-image", tag, "--name", CLUSTER)
        yield CLUSTER
    finally:
        if not existed and os.environ.get("TTSFLEET_KIND_KEEP") != "1":
            run("kind", "delete", "cluster", "--name", CLUSTER)


def test_the_chart_runs_the_examples_speaks_and_rotates_a_key(kind_cluster: str, tmp_path: Path) -> None:
    helm = str(require_tool("helm"))
    run(
        helm, "upgrade", "--install", "ttsfleet", "charts/ttsfleet", "--kube-context", f"kind-{kind_cluster}",
        "--namespace", "ttsfleet-system", "--create-namespace", "--wait", "--timeout", "5m",
    )  # fmt: skip
    kubectl("apply", "-f", "examples/namespace-voice.yaml", "-f", "examples/secrets-aura-en.yaml")
    kubectl("apply", "-f", "examples/ttsbackend-aura-en.yaml")  # as shipped
    kubectl("wait", "--for=condition=Ready", "ttsb/aura-en", "-n", NAMESPACE, "--timeout=300s")
    assert_converged()
    # The operator's probes pass the backend's NetworkPolicy: both pods report in status.fleet.
    wait_for(lambda: jsonpath("{.status.fleet.podsProbed}") == "2", 120, "both pods probed", interval_s=2.0)
    degraded = jsonpath('{.status.conditions[?(@.type=="Degraded")].reason}')
    assert degraded == "OptionalKindUnavailable", degraded  # no Prometheus Operator in kind
    real_key = os.environ.get("DEEPGRAM_API_KEY")
    if real_key:
        set_key(real_key, tmp_path)
    else:
        kubectl("apply", "-f", "-", stdin=EMULATOR + "---" + EMULATOR_EGRESS)
        kubectl("rollout", "status", "deployment/deepgram-emulator", "-n", NAMESPACE, "--timeout=180s")
        emulator = {"spec": {"deepgram": {"url": f"ws://deepgram-emulator.{NAMESPACE}:8900"}}}
        kubectl("patch", "ttsb/aura-en", "-n", NAMESPACE, "--type=merge", "-p", json.dumps(emulator))
        kubectl("wait", "--for=jsonpath={.status.observedGeneration}=2", "ttsb/aura-en", "-n", NAMESPACE)
        kubectl("rollout", "status", "deployment/aura-en", "-n", NAMESPACE, "--timeout=300s")
        kubectl("wait", "--for=condition=Ready", "ttsb/aura-en", "-n", NAMESPACE, "--timeout=300s")

    # Speak through the Service, from outside the cluster, and from inside with `helm test`.
    port = free_port()
    forward = subprocess.Popen(
        [
            str(require_tool("kubectl")),
            "--context",
            f"kind-{kind_cluster}",
            "port-forward",
            "-n",
            NAMESPACE,
            "svc/aura-en",
            f"{port}:8080",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wav = tmp_path / "kind.wav"

        def says() -> bool:
            said = subprocess.run(
                [sys.executable, "-m", "ttsfleet", "say", "the fleet is ready", "--url", f"ws://127.0.0.1:{port}",
                 "--token", TOKEN, "-o", str(wav)],
                capture_output=True, timeout=60, check=False,
            )  # fmt: skip
            return said.returncode == 0

        wait_for(says, 60, "speech through the port-forwarded Service", interval_s=1.0)
        fmt, pcm = wavfile.parse(wav.read_bytes())
        assert fmt.sample_rate == 24000 and len(pcm) > 0.2 * 2 * 24000
    finally:
        forward.terminate()
        forward.wait(10)
    run(
        helm,
        "test",
        "ttsfleet",
        "--kube-context",
        f"kind-{kind_cluster}",
        "-n",
        "ttsfleet-system",
        "--timeout",
        "3m",
    )

    rollout_under_load()

    # Rotate the key (reload): every pod reports the new fingerprint, and the operator says so.
    if real_key:
        return  # one real key only: rotation is exercised against the emulator
    new_key = f"kind-rotated-{int(time.time())}"
    set_key(new_key, tmp_path)
    fingerprint = fingerprint_secret(new_key)
    kubectl(
        "wait", f"--for=jsonpath={{.status.credentials.currentFingerprint}}={fingerprint}", "ttsb/aura-en",
        "-n", NAMESPACE, "--timeout=180s",
    )  # fmt: skip
    kubectl(
        "wait",
        "--for=jsonpath={.status.credentials.complete}=true",
        "ttsb/aura-en",
        "-n",
        NAMESPACE,
        "--timeout=180s",
    )

    def rotation_event() -> bool:
        events = kubectl(
            "get", "events", "-n", NAMESPACE, "--field-selector", "reason=CredentialRotationComplete"
        )
        return fingerprint in events

    wait_for(rotation_event, 120, "the CredentialRotationComplete Event", interval_s=2.0)
