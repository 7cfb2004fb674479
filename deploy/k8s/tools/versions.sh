# shellcheck shell=bash
# Pinned versions of what validates deploy/k8s (sourced by the scripts beside this file).
# Changing one: run fetch-crds.sh, commit deploy/k8s/crds/, `make test-k8s`.
K8S_VERSION=v1.37.2          # kube-apiserver, kubectl, and etcd's version follows k8s's go.mod
CNPG_VERSION=v1.28.0         # CloudNativePG: CRDs and the operator (its admission webhook)
STRIMZI_VERSION=1.2.0        # Strimzi api + crd-generator (Maven Central)
KUSTOMIZE_VERSION=v5.8.2      # renders the overlays (make setup installs it)
K8S_TOOLS_CACHE=${ESPACE_CACHE:-$HOME/.cache/espace}/k8s
