"""A real Kubernetes control plane for the local fleet and the tests, built from Go modules.

`build` compiles etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl from the pinned
module in the repository's `controlplane/` folder into a per-version cache; `binaries` finds them (or a
user's envtest assets); `pki` and `kubeconfigs` make the certificates and credentials; `launcher` runs the
processes and waits until the cluster answers.
"""
