"""metrics-server, built from its own Go module and run against the real control plane.

`build` compiles `sigs.k8s.io/metrics-server` at the version pinned in the repository's `metricsserver/`
module into a per-version cache; `running` starts it, registers `v1beta1.metrics.k8s.io` with the
aggregator and waits until the APIService is Available. It scrapes each Node's kubelet-style
`/metrics/resource` endpoint, which the node agent serves (`devcluster/nodeagent/resourcemetrics.py`).
"""
