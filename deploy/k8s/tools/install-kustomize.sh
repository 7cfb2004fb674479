#!/usr/bin/env bash
# Installs kustomize (pinned) once into ~/.cache/espace/bin from the Go module proxy and prints
# its path; `make setup` runs it so the manifest tests can render the overlays on a fresh machine.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/versions.sh"
BIN=${ESPACE_CACHE:-$HOME/.cache/espace}/bin
target="$BIN/kustomize-$KUSTOMIZE_VERSION"
if [[ ! -x $target ]]; then
  command -v go >/dev/null || { echo "install-kustomize: error: Go is needed to install kustomize" >&2; exit 1; }
  mkdir -p "$BIN"
  echo "install-kustomize: building kustomize $KUSTOMIZE_VERSION (about 30 s, once)" >&2
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  GOFLAGS=-mod=mod GOTOOLCHAIN=local GOBIN="$tmp" nice -n 10 go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
  mv "$tmp/kustomize" "$target"
fi
echo "$target"
