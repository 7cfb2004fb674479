#!/usr/bin/env bash
# Builds what `make test-k8s` runs — etcd, kube-apiserver and kubectl (k8s.io/kubernetes) and the
# CloudNativePG operator (for its admission webhook) — from the Go module proxy, once, into
# ~/.cache/espace/k8s/<version>/bin. A binary already there is not rebuilt. Prints the bin dir.
# Go >= 1.26 is needed (k8s 1.37's go.mod); everything else comes from the module proxy.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/versions.sh"

BIN="$K8S_TOOLS_CACHE/k8s-$K8S_VERSION-cnpg-$CNPG_VERSION/bin"
mkdir -p "$BIN"
say() { printf 'build-k8s-tools: %s\n' "$*" >&2; }
have_all() { for b in etcd kube-apiserver kubectl manager; do [[ -x $BIN/$b ]] || return 1; done; }
if have_all; then echo "$BIN"; exit 0; fi

command -v go >/dev/null || { say "error: Go (>= 1.26) is needed to build the Kubernetes tools"; exit 1; }
export GOFLAGS=-mod=mod GOTOOLCHAIN=local
WORK="$K8S_TOOLS_CACHE/src"
mkdir -p "$WORK"

if [[ ! -x $BIN/kube-apiserver || ! -x $BIN/kubectl || ! -x $BIN/etcd ]]; then
  # A wrapper module: k8s.io/kubernetes replaces its staging modules by ./staging paths, which
  # a module from the proxy does not have; point each at its published v0.x.y instead.
  KAS="$WORK/kas-$K8S_VERSION"; mkdir -p "$KAS"; cd "$KAS"
  say "downloading k8s.io/kubernetes@$K8S_VERSION"
  go mod download k8s.io/kubernetes@"$K8S_VERSION"
  MOD=$(go env GOMODCACHE)/k8s.io/kubernetes@$K8S_VERSION
  STAGING="v0.${K8S_VERSION#v1.}"
  { printf 'module espace.local/kas\n\ngo 1.26.0\n\nreplace (\n'
    sed -n '/^replace (/,/^)/p' "$MOD/go.mod" | grep '=> ./staging' | awk -v v="$STAGING" '{print "\t"$1" => "$1" "v}'
    printf ')\n'; } > go.mod
  printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "go.etcd.io/etcd/server/v3"\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver"\n\t_ "k8s.io/kubernetes/cmd/kubectl"\n)\n' > tools.go
  go get k8s.io/kubernetes@"$K8S_VERSION" >/dev/null 2>&1 || go get k8s.io/kubernetes@"$K8S_VERSION"
  go mod tidy >/dev/null 2>&1 || go mod tidy
  minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  L="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    L="$L -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  say "building etcd, kube-apiserver, kubectl $K8S_VERSION (about 5 min on 2 cores the first time)"
  nice -n 19 go build -trimpath -ldflags "$L" -o "$KAS/bin/" go.etcd.io/etcd/server/v3 \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl
  mv "$KAS/bin/server" "$BIN/etcd"; mv "$KAS/bin/kube-apiserver" "$KAS/bin/kubectl" "$BIN/"
fi

if [[ ! -x $BIN/manager ]]; then
  # `go install …/cmd/manager@v` fails here (the proxy refuses the module's version list), a
  # wrapper module that requires the exact version works.
  CW="$WORK/cnpg-$CNPG_VERSION"; mkdir -p "$CW"; cd "$CW"
  printf 'module espace.local/cnpgw\n\ngo 1.26.0\n\nrequire github.com/cloudnative-pg/cloudnative-pg %s\n' "$CNPG_VERSION" > go.mod
  printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/cloudnative-pg/cloudnative-pg/cmd/manager"\n' > tools.go
  go mod tidy >/dev/null 2>&1 || go mod tidy
  say "building the CloudNativePG manager $CNPG_VERSION (about 2 min)"
  nice -n 19 go build -trimpath -ldflags "-s -w" -o "$BIN/manager" github.com/cloudnative-pg/cloudnative-pg/cmd/manager
fi
have_all
echo "$BIN"
