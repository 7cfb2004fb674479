#!/usr/bin/env bash
# A local S3-compatible server (gofakes3 over memory, deploy/local/s3server/main.go), built once
# from the Go module proxy into ~/.cache/espace (outside the clone), for documents' S3 adapter
# tests. `s3server.sh build` prints the binary's path; `s3server.sh run ADDR` runs it.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
SRC="$HERE/s3server"
VERSION="gofakes3-$(grep -o 'gofakes3 v[0-9.]*' "$SRC/go.mod" | cut -d' ' -f2)-$(sha256sum "$SRC/main.go" | cut -c1-12)"
BIN="${ESPACE_CACHE:-$HOME/.cache/espace}/s3server/$VERSION/s3server"

build() {
  if [[ ! -x "$BIN" ]]; then
    mkdir -p "$(dirname "$BIN")"
    echo "s3server.sh: building $VERSION (once; cached in $(dirname "$BIN"))" >&2
    (cd "$SRC" && GOFLAGS=-mod=readonly go build -trimpath -o "$BIN.tmp" . && mv "$BIN.tmp" "$BIN")
  fi
  echo "$BIN"
}

case "${1:-build}" in
  build) build ;;
  run) exec "$(build)" -addr "${2:-127.0.0.1:9000}" ;;
  *) echo "usage: $0 build|run [ADDR]" >&2; exit 2 ;;
esac
