#!/usr/bin/env bash
# `make test-k8s`: the manifests against a real kube-apiserver, on loopback.
#   1. builds (once, cached in ~/.cache/espace/k8s/<versions>) etcd, kube-apiserver, kubectl and
#      the CloudNativePG manager from the Go module proxy (build-k8s-tools.sh);
#   2. starts etcd, kube-apiserver and CloudNativePG's webhook server on 127.0.0.1;
#   3. installs the vendored CRDs and CNPG's webhook configurations, creates the namespaces;
#   4. `kubectl apply --dry-run=server --server-side` of every rendered target: any rejection
#      (schema, CEL rule, core-API validation, CNPG's webhook) fails;
#   5. regenerates the CRDs from their pinned sources and diffs them against deploy/k8s/crds/.
# Usage: test-k8s.sh [TARGET_DIR...]   (default: the overlays; a target is a kustomization dir)
# One apiserver for all the targets; each gets a line `test-k8s: accepted: <dir> (N objects)` or
# `test-k8s: REJECTED: <dir>` followed by the refusals; any rejection makes the exit status 1.
# Ports: ESPACE_TEST_PORT_OFFSET shifts them (etcd 23790/23800, apiserver 16443, CNPG's webhook
# 9443 — it listens on all addresses —, metrics 18080). SKIP_CRD_DIFF=1 skips step 5 (the
# broken-copy test, deploy/k8s/test_k8s_apiserver.py).
set -euo pipefail
start=$(date +%s)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
K8S=$(cd "$HERE/.." && pwd)
source "$HERE/versions.sh"
say() { printf 'test-k8s: %s\n' "$*" >&2; }

BIN=$("$HERE/build-k8s-tools.sh")
KUSTOMIZE=${KUSTOMIZE:-$("$HERE/install-kustomize.sh")}
off=${ESPACE_TEST_PORT_OFFSET:-0}
ETCD_PORT=$((23790 + off)) PEER_PORT=$((23800 + off)) API_PORT=$((16443 + off)) METRICS_PORT=$((18080 + off))
WEBHOOK_PORT=$((9443 + off))  # the manager has no flag for its host: it listens on *:port

W=$(mktemp -d)
pids=() names=()
# Stopped in the reverse order of their start: a kube-apiserver whose etcd is gone first hangs
# in its shutdown (minutes); each gets 15 s after SIGTERM, then SIGKILL.
gone() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null); [[ -z $s || $s == Z* ]]; }
stop() {
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 150); do gone "$1" && break; sleep 0.1; done
  gone "$1" || { say "$2 did not stop within 15 s of SIGTERM: killed"; kill -9 "$1" 2>/dev/null; }
  wait "$1" 2>/dev/null
}
cleanup() {
  set +e
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop "${pids[$i]}" "${names[$i]}"; done
  rm -rf "$W"
}
trap cleanup EXIT

targets=("$@")
((${#targets[@]})) || targets=("$K8S/overlays/dev" "$K8S/overlays/production")
mkdir -p "$W/rendered"
for i in "${!targets[@]}"; do
  "$KUSTOMIZE" build "${targets[$i]}" > "$W/rendered/$i.yaml" || { say "error: kustomize build ${targets[$i]} failed"; exit 1; }
done

# -- certificates: a CA, the apiserver's serving cert (also the webhook's), SA keys, a token --
P=$W/pki; mkdir -p "$P"
(
  cd "$P"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj /CN=test-k8s-ca 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj /CN=127.0.0.1 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > san.ext
  openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 1 -extfile san.ext 2>/dev/null
  cp apiserver.crt tls.crt; cp apiserver.key tls.key  # the names CNPG's webhook server reads
  openssl genrsa -out sa.key 2048 2>/dev/null; openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  token=$(openssl rand -hex 16); echo "$token,admin,admin,system:masters" > tokens.csv
  cat > kubeconfig <<KC
apiVersion: v1
kind: Config
clusters: [{name: t, cluster: {server: "https://127.0.0.1:$API_PORT", certificate-authority: "$P/ca.crt"}}]
users: [{name: t, user: {token: "$token"}}]
contexts: [{name: t, context: {cluster: t, user: t}}]
current-context: t
KC
)
export KUBECONFIG=$P/kubeconfig
KUBECTL=$BIN/kubectl

# -- etcd, kube-apiserver ----------------------------------------------------------------
"$BIN/etcd" --data-dir "$W/etcd" --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" --listen-peer-urls "http://127.0.0.1:$PEER_PORT" \
  --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" --initial-cluster "default=http://127.0.0.1:$PEER_PORT" \
  --log-level warn > "$W/etcd.log" 2>&1 &
pids+=($!) names+=(etcd)
# --endpoint-reconciler-type=none: the default reconciler refuses a loopback advertise address.
"$BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$ETCD_PORT" --bind-address=127.0.0.1 \
  --advertise-address=127.0.0.1 --secure-port="$API_PORT" --tls-cert-file="$P/apiserver.crt" \
  --tls-private-key-file="$P/apiserver.key" --client-ca-file="$P/ca.crt" --token-auth-file="$P/tokens.csv" \
  --authorization-mode=RBAC --service-account-issuer=https://kubernetes.default.svc \
  --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
  --service-cluster-ip-range=10.96.0.0/16 --allow-privileged=true --endpoint-reconciler-type=none \
  > "$W/apiserver.log" 2>&1 &
pids+=($!) names+=(kube-apiserver)
for _ in $(seq 120); do "$KUBECTL" get --raw /readyz >/dev/null 2>&1 && break; sleep 0.5; done
"$KUBECTL" get --raw /readyz >/dev/null || { tail -20 "$W/apiserver.log" >&2; say "error: kube-apiserver did not become ready"; exit 1; }
say "kube-apiserver $K8S_VERSION ready after $(( $(date +%s) - start )) s"

# -- CRDs, CloudNativePG's webhook, namespaces ------------------------------------------------
"$KUBECTL" apply --server-side -f "$K8S/crds/" >/dev/null
"$KUBECTL" wait --for condition=established --timeout=60s crd --all >/dev/null
"$KUBECTL" create namespace cnpg-system >/dev/null
OPERATOR_NAMESPACE=cnpg-system WEBHOOK_CERT_DIR=$P "$BIN/manager" controller \
  --metrics-bind-address="127.0.0.1:$METRICS_PORT" --webhook-port="$WEBHOOK_PORT" --leader-elect=false \
  > "$W/cnpg.log" 2>&1 &
pids+=($!) names+=("the CNPG manager")
CNPG_DIR=$(GOFLAGS=-mod=mod go mod download -json "github.com/cloudnative-pg/cloudnative-pg@$CNPG_VERSION" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
python3 "$HERE/webhooks.py" "$CNPG_DIR/releases/cnpg-${CNPG_VERSION#v}.yaml" "$P/ca.crt" "$WEBHOOK_PORT" > "$W/webhooks.yaml"
for _ in $(seq 120); do (exec 3<>"/dev/tcp/127.0.0.1/$WEBHOOK_PORT") 2>/dev/null && break; sleep 0.5; done
(exec 3<>"/dev/tcp/127.0.0.1/$WEBHOOK_PORT") 2>/dev/null || { tail -20 "$W/cnpg.log" >&2; say "error: CNPG's webhook server did not start"; exit 1; }
"$KUBECTL" apply --server-side -f "$W/webhooks.yaml" >/dev/null

status=0
for i in "${!targets[@]}"; do
  f=$W/rendered/$i.yaml name=${targets[$i]%/} name=${name#"$K8S/"}
  for ns in $(python3 -c 'import sys,yaml; print(" ".join(sorted({d["metadata"].get("namespace") for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["metadata"].get("namespace")})))' "$f"); do
    "$KUBECTL" get namespace "$ns" >/dev/null 2>&1 || "$KUBECTL" create namespace "$ns" >/dev/null
  done
  n=$(grep -c '^kind:' "$f")
  if out=$("$KUBECTL" apply --dry-run=server --server-side --field-manager=test-k8s -f "$f" 2>&1); then
    say "accepted: $name ($n objects)"
    grep '^Warning: ' <<<"$out" | sort -u >&2 || true
  else
    status=1
    say "REJECTED: $name"
    grep -v ' serverside-applied (server dry run)$' <<<"$out" >&2
  fi
done

if [[ ${SKIP_CRD_DIFF:-} != 1 ]]; then
  "$HERE/fetch-crds.sh" "$W/crds" 2>/dev/null
  if diff -r -q "$K8S/crds" "$W/crds" >&2; then
    say "vendored CRDs match what CNPG $CNPG_VERSION and Strimzi $STRIMZI_VERSION generate"
  else
    status=1; say "error: deploy/k8s/crds differs from a fresh generation (run deploy/k8s/tools/fetch-crds.sh)"
  fi
fi
say "took $(( $(date +%s) - start )) s"
exit $status
