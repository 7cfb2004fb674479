"""Policy checks on the Kubernetes manifests (deploy/k8s): the invariants a review should not
have to find by eye. They read the base YAML as written (no cluster, no kustomize needed);
the last tests also render the overlays when `kustomize` (or `kubectl`) is on the PATH.

    .venv/bin/pytest deploy/k8s -q
"""

from __future__ import annotations

import inspect
import ipaddress
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from claims.config import ClaimsSettings
from documents.config import DocumentsSettings
from gateway.config import GatewaySettings
from identity.config import IdentitySettings
from notifications.config import NotificationsSettings
from shared.contracts import topics
from shared.platform.db import apply_migrations

K8S = Path(__file__).resolve().parent
REPO = K8S.parents[1]
BASE = K8S / "base"

SERVICES = {  # name -> (env prefix, port, settings class)
    "gateway": ("GATEWAY_", 8000, GatewaySettings),
    "identity": ("IDENTITY_", 8001, IdentitySettings),
    "notifications": ("NOTIFICATIONS_", 8002, NotificationsSettings),
    "documents": ("DOCUMENTS_", 8003, DocumentsSettings),
    "claims": ("CLAIMS_", 8004, ClaimsSettings),
}
WEB_PORT = 8005  # web: the pages, behind the gateway; its settings class lives in web/
PORTS = {name: port for name, (_, port, _) in SERVICES.items()} | {"web": WEB_PORT}
WITH_DATABASE = ["identity", "notifications", "documents", "claims"]
APP_NAMESPACE = "espace"


# -- loading --------------------------------------------------------------------------------


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _base() -> list[dict]:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text(encoding="utf-8"))
    return [doc for name in kustomization["resources"] for doc in _docs(BASE / name)]


BASE_DOCS = _base()


def _of_kind(kind: str, docs: list[dict] = BASE_DOCS) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


DEPLOYMENTS = _of_kind("Deployment")
POLICIES = list(_of_kind("NetworkPolicy").values())


def _config_env() -> dict[str, str]:
    values = {}
    for line in (BASE / "config.env").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value
    return values


CONFIG = _config_env()


def _container(name: str) -> dict:
    containers = DEPLOYMENTS[name]["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"{name}: one container expected"
    return containers[0]


def _env(name: str) -> dict[str, dict]:
    return {e["name"]: e for e in _container(name).get("env", [])}


# -- every Deployment: hardened, probed, sized ------------------------------------------------


def test_every_workload_is_deployed_with_a_service_and_a_disruption_budget():
    assert set(DEPLOYMENTS) == set(PORTS)
    services = _of_kind("Service")
    budgets = _of_kind("PodDisruptionBudget")
    for name, port in PORTS.items():
        pod_labels = DEPLOYMENTS[name]["spec"]["template"]["metadata"]["labels"]
        service = services[name]
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
        assert _selects(service["spec"]["selector"], pod_labels)
        assert [p["port"] for p in service["spec"]["ports"]] == [port]
        assert _selects(budgets[name]["spec"]["selector"]["matchLabels"], pod_labels)
        assert _selects(DEPLOYMENTS[name]["spec"]["selector"]["matchLabels"], pod_labels)


@pytest.mark.parametrize("name", sorted(PORTS))
def test_containers_run_unprivileged_on_a_read_only_root_filesystem(name):
    pod = DEPLOYMENTS[name]["spec"]["template"]["spec"]
    pod_sc = pod.get("securityContext", {})
    assert pod_sc.get("runAsNonRoot") is True
    assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault"
    assert pod.get("automountServiceAccountToken") is False
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    assert all("hostPath" not in v for v in pod.get("volumes", []))
    for container in pod["containers"] + pod.get("initContainers", []):
        sc = container.get("securityContext", {})
        assert sc.get("runAsNonRoot") is True, container["name"]
        assert sc.get("runAsUser") == 10001, "the images' user (Dockerfile: USER 10001)"
        assert sc.get("readOnlyRootFilesystem") is True
        assert sc.get("allowPrivilegeEscalation") is False
        assert sc.get("privileged", False) is False
        assert sc.get("capabilities", {}).get("drop") == ["ALL"]
        assert not sc.get("capabilities", {}).get("add")
        assert sc.get("seccompProfile", {}).get("type") == "RuntimeDefault"


@pytest.mark.parametrize("name", sorted(PORTS))
def test_service_links_are_off_or_they_would_overwrite_the_port_setting(name):
    # A Service named `identity` injects IDENTITY_PORT=tcp://10.x.y.z:8001, which
    # IdentitySettings reads as its (integer) port and refuses.
    assert DEPLOYMENTS[name]["spec"]["template"]["spec"].get("enableServiceLinks") is False


@pytest.mark.parametrize("name", sorted(PORTS))
def test_tmp_is_a_writable_empty_dir(name):
    pod = DEPLOYMENTS[name]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in _container(name)["volumeMounts"]}
    assert "/tmp" in mounts and not mounts["/tmp"].get("readOnly")
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]


@pytest.mark.parametrize("name", sorted(PORTS))
def test_probes_use_healthz_for_liveness_and_readyz_for_readiness(name):
    container = _container(name)
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port_names == {"http": PORTS[name]}
    for probe, path in [("livenessProbe", "/healthz"), ("startupProbe", "/healthz"), ("readinessProbe", "/readyz")]:
        get = container[probe]["httpGet"]
        assert get["path"] == path, probe
        assert port_names.get(get["port"], get["port"]) == PORTS[name], probe


@pytest.mark.parametrize("name", sorted(PORTS))
def test_resources_have_requests_and_limits_within_them(name):
    resources = _container(name)["resources"]
    for kind in ("cpu", "memory"):
        request = _quantity(resources["requests"][kind])
        limit = _quantity(resources["limits"][kind])
        assert 0 < request <= limit, kind


def test_identity_memory_limit_leaves_room_for_one_argon2_hash_per_hashing_thread():
    resources = _container("identity")["resources"]
    threads = max(1, int(-(-_quantity(resources["limits"]["cpu"]) // 1)))  # resourceFieldRef rounds up
    per_hash = 19 * 2**20  # argon2id m=19 MiB
    baseline = 160 * 2**20  # ~120 MiB resident once built (measured locally), plus pools
    assert _quantity(resources["limits"]["memory"]) >= baseline + threads * per_hash
    workers = _env("identity")["IDENTITY_PASSWORD_HASH_WORKERS"]["valueFrom"]["resourceFieldRef"]
    assert workers["resource"] == "limits.cpu" and workers["containerName"] == "identity"


@pytest.mark.parametrize("name", sorted(PORTS))
def test_images_are_ours_and_untagged_in_the_base(name):
    assert _container(name)["image"] == f"espace/{name}", "the overlays set registry and tag"


@pytest.mark.parametrize("name", sorted(PORTS))
def test_container_port_is_the_one_the_image_is_built_for(name):
    # One Dockerfile for every image (SERVICE and PORT build arguments): docker-compose.yml
    # holds the arguments each image is built with, and the port must be the same here.
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    args = compose["services"][name]["build"]["args"]
    assert args["SERVICE"] == name
    assert int(args["PORT"]) == PORTS[name] == _container(name)["ports"][0]["containerPort"]


# -- configuration: names the services read, values that exist --------------------------------


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_variable_is_a_setting_of_the_service_and_it_runs_as_prod(name):
    prefix, _, settings = SERVICES[name]
    env = _env(name)
    assert env[f"{prefix}ENVIRONMENT"].get("value") == "prod"
    fields = set(settings.model_fields)
    for var in env:
        if var.startswith("OTEL_"):
            continue
        assert var.startswith(prefix), var
        assert var[len(prefix) :].lower() in fields, f"{var} is not a {settings.__name__} field"


@pytest.mark.parametrize("name", WITH_DATABASE)
def test_database_url_comes_from_the_cloudnativepg_app_secret(name):
    prefix = SERVICES[name][0]
    ref = _env(name)[f"{prefix}DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": f"{name}-db-app", "key": "uri"}
    assert f"{prefix}KAFKA_BOOTSTRAP" in _env(name)


def test_every_config_map_key_used_is_in_config_env():
    for name in SERVICES:
        for var, entry in _env(name).items():
            ref = entry.get("valueFrom", {}).get("configMapKeyRef")
            if ref:
                assert ref["name"] == "espace-config", var
                assert ref["key"] in CONFIG, f"{name}: {var} reads missing key {ref['key']}"


def test_shared_config_points_at_the_strimzi_bootstrap_and_identity():
    assert CONFIG["KAFKA_BOOTSTRAP"] == "espace-kafka-bootstrap:9093"
    assert CONFIG["IDENTITY_URL"] == "http://identity:8001"
    for name in ["notifications", "documents", "claims", "gateway"]:
        assert _env(name)[f"{SERVICES[name][0]}IDENTITY_URL"]["valueFrom"]["configMapKeyRef"]["key"] == "IDENTITY_URL"


def test_the_config_values_are_accepted_by_the_settings_in_prod():
    env = {k: v for k, v in CONFIG.items() if k.startswith(("GATEWAY_", "NOTIFICATIONS_"))}
    GatewaySettings(**_as_fields(env, "GATEWAY_"), environment="prod")
    NotificationsSettings(
        **_as_fields(env, "NOTIFICATIONS_"), environment="prod", database_url="postgresql://n:x@db:5432/n"
    )
    files = json.loads(CONFIG["IDENTITY_JWT_PRIVATE_KEY_FILES"])
    assert files and all(f.startswith("/etc/espace/jwt/") for f in files)


def test_identity_signing_keys_are_files_mounted_from_a_secret():
    pod = DEPLOYMENTS["identity"]["spec"]["template"]["spec"]
    mount = next(m for m in _container("identity")["volumeMounts"] if m["mountPath"] == "/etc/espace/jwt")
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert mount.get("readOnly") is True
    assert volume["secret"]["secretName"] == "identity-jwt-keys"
    assert volume["secret"]["defaultMode"] & 0o007 == 0, "keys not readable by others"
    assert pod["securityContext"]["fsGroup"] == 10001, "the app reads them through its group"


def test_secret_settings_come_from_secrets_never_from_values():
    # Whatever a settings class types as SecretStr is set from a Secret, never inline or from
    # the ConfigMap.
    for name, (prefix, _, settings) in SERVICES.items():
        env = _env(name)
        for field_name, info in settings.model_fields.items():
            if "SecretStr" not in str(info.annotation):
                continue
            var = prefix + field_name.upper()
            if var in env:
                assert "secretKeyRef" in env[var].get("valueFrom", {}), f"{name}: {var}"
    refs = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for n in PORTS
        for e in _env(n).values()
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    # <svc>-db-app: made by CloudNativePG; <svc> (the KafkaUser's): made by Strimzi; the others
    # by ops (README.md, "Secrets to create").
    made_by_operators = {f"{n}-db-app" for n in WITH_DATABASE} | set(WITH_DATABASE)
    expected = made_by_operators | {"gateway-secrets", "notifications-smtp", "identity-secrets", "web-secrets"}
    assert refs == expected


def test_gateway_trusts_one_proxy_hop_behind_the_ingress():
    assert CONFIG["GATEWAY_TRUSTED_PROXY_HOPS"] == "1"
    assert _env("gateway")["GATEWAY_RATE_LIMIT_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "gateway-secrets"


# -- no secret material in the tree ---------------------------------------------------------------


def _all_k8s_files() -> list[Path]:
    return [p for p in K8S.rglob("*") if p.is_file() and p.suffix in {".yaml", ".yml", ".env"}]


def test_no_secret_with_literal_data_is_committed():
    for path in _all_k8s_files():
        text = path.read_text(encoding="utf-8")
        assert "-----BEGIN" not in text, f"{path}: key material"
        if path.suffix == ".env":
            continue
        for doc in _docs(path):
            if doc.get("kind") == "Secret":
                assert not doc.get("data") and not doc.get("stringData"), f"{path}: Secret with data"
            if doc.get("kind") in ("Kustomization", "Component"):
                assert not doc.get("secretGenerator"), f"{path}: secretGenerator"


# -- network policies --------------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    namespace: str | None  # None: outside the cluster
    labels: dict = field(default_factory=dict, hash=False)
    ip: str = "10.0.0.1"


def _app(name: str) -> Peer:
    return Peer(APP_NAMESPACE, DEPLOYMENTS[name]["spec"]["template"]["metadata"]["labels"])


KAFKA = Peer(APP_NAMESPACE, {"strimzi.io/cluster": "espace", "strimzi.io/kind": "Kafka"})
INGRESS_CONTROLLER = Peer("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
KUBE_DNS = Peer("kube-system", {"k8s-app": "kube-dns"})
STRANGER = Peer("default", {"app": "curl"})
INTERNET = Peer(None, ip="203.0.113.25")


def _db(name: str) -> Peer:
    return Peer(APP_NAMESPACE, {"cnpg.io/cluster": f"{name}-db", "cnpg.io/podRole": "instance"})


def _selects(selector: dict | None, labels: dict) -> bool:
    selector = selector or {}
    match_labels = selector.get("matchLabels", selector if "matchExpressions" not in selector else {})
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def _peer_matches(rule_peer: dict, policy_ns: str, peer: Peer) -> bool:
    if "ipBlock" in rule_peer:
        if peer.namespace is not None:
            return False
        net = ipaddress.ip_network(rule_peer["ipBlock"]["cidr"])
        ip = ipaddress.ip_address(peer.ip)
        return ip in net and not any(ip in ipaddress.ip_network(e) for e in rule_peer["ipBlock"].get("except", []))
    if peer.namespace is None:
        return False
    if "namespaceSelector" in rule_peer:
        if not _selects(rule_peer["namespaceSelector"], {"kubernetes.io/metadata.name": peer.namespace}):
            return False
    elif peer.namespace != policy_ns:
        return False
    return _selects(rule_peer.get("podSelector"), peer.labels)


def _port_matches(rule: dict, port: int, protocol: str) -> bool:
    if not rule.get("ports"):
        return True
    return any(
        p.get("protocol", "TCP") == protocol and ("port" not in p or p["port"] <= port <= p.get("endPort", p["port"]))
        for p in rule["ports"]
    )


def _allowed(direction: str, subject: Peer, other: Peer, port: int, protocol: str) -> bool:
    """Does the subject's side allow this connection (Egress: subject sends; Ingress: receives)?"""
    if subject.namespace != APP_NAMESPACE:
        return True  # not ours: no policy of this namespace applies to it
    key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    applying = [
        p
        for p in POLICIES
        if _selects(p["spec"]["podSelector"], subject.labels) and direction in p["spec"]["policyTypes"]
    ]
    if not applying:
        return True
    return any(
        _port_matches(rule, port, protocol)
        and (peers_key not in rule or any(_peer_matches(peer, APP_NAMESPACE, other) for peer in rule[peers_key]))
        for policy in applying
        for rule in policy["spec"].get(key, [])
    )


def can_connect(src: Peer, dst: Peer, port: int, protocol: str = "TCP") -> bool:
    return _allowed("Egress", src, dst, port, protocol) and _allowed("Ingress", dst, src, port, protocol)


def test_everything_is_denied_by_default_in_both_directions():
    deny = [
        p
        for p in POLICIES
        if p["spec"]["podSelector"] == {} and not p["spec"].get("ingress") and not p["spec"].get("egress")
    ]
    assert any(set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"} for p in deny)
    assert not can_connect(STRANGER, _app("gateway"), 8000)
    assert not can_connect(_app("gateway"), INTERNET, 443)


@pytest.mark.parametrize("name", sorted(PORTS))
def test_every_deployment_is_selected_by_a_policy_that_admits_its_port_and_dns(name):
    pod = _app(name)
    own = [p for p in POLICIES if p["spec"]["podSelector"] != {} and _selects(p["spec"]["podSelector"], pod.labels)]
    assert own, f"no NetworkPolicy selects {name}"
    assert any(
        _port_matches(rule, PORTS[name], "TCP") for p in own for rule in p["spec"].get("ingress", [])
    ), f"no ingress rule for {name}:{PORTS[name]}"
    assert can_connect(pod, KUBE_DNS, 53, "UDP") and can_connect(pod, KUBE_DNS, 53, "TCP")


def test_only_the_ingress_controller_reaches_the_gateway_from_outside():
    assert can_connect(INGRESS_CONTROLLER, _app("gateway"), 8000)
    for name in WITH_DATABASE:
        assert not can_connect(INGRESS_CONTROLLER, _app(name), SERVICES[name][1])
    assert not can_connect(INTERNET, _app("gateway"), 8000)


@pytest.mark.parametrize("name", WITH_DATABASE)
def test_the_gateway_reaches_each_service_on_its_port_only(name):
    port = SERVICES[name][1]
    assert can_connect(_app("gateway"), _app(name), port)
    assert not can_connect(_app("gateway"), _app(name), 9999)
    assert not can_connect(_app("gateway"), _db(name), 5432)
    assert not can_connect(_app("gateway"), KAFKA, 9093)


@pytest.mark.parametrize("name", ["gateway", "notifications", "documents", "claims"])
def test_every_service_reaches_identity_for_the_jwks(name):
    assert can_connect(_app(name), _app("identity"), 8001)


@pytest.mark.parametrize("name", WITH_DATABASE)
def test_services_reach_kafka_and_their_own_database_and_nothing_else(name):
    assert can_connect(_app(name), KAFKA, 9093)
    assert can_connect(_app(name), _db(name), 5432)
    for other in WITH_DATABASE:
        if other != name:
            assert not can_connect(_app(name), _db(other), 5432), f"{name} -> {other}-db"
            if other != "identity":
                assert not can_connect(_app(name), _app(other), SERVICES[other][1]), f"{name} -> {other}"
    assert not can_connect(_app(name), INTERNET, 443)


def test_only_notifications_reaches_the_smtp_relay_on_the_configured_port():
    port = int(CONFIG["NOTIFICATIONS_SMTP_PORT"])
    assert can_connect(_app("notifications"), INTERNET, port)
    for name in ["gateway", "identity", "documents", "claims"]:
        assert not can_connect(_app(name), INTERNET, port)


def test_database_and_kafka_pods_keep_their_own_traffic():
    # replication between instances of one cluster, never across clusters
    assert can_connect(_db("identity"), _db("identity"), 5432)
    assert not can_connect(_db("identity"), _db("claims"), 5432)
    operator = Peer("cnpg-system", {"app.kubernetes.io/name": "cloudnative-pg"})
    assert can_connect(operator, _db("claims"), 8000)
    assert can_connect(KAFKA, KAFKA, 9091)
    assert not can_connect(KAFKA, _db("identity"), 5432)


# -- Kafka topics and databases ------------------------------------------------------------------


def test_every_contract_topic_and_its_dead_letter_topic_has_a_kafka_topic():
    kafka_topics = _of_kind("KafkaTopic")
    expected = {name for topic in topics.ALL for name in (topic, topics.dead_letter(topic))}
    declared = {t["spec"].get("topicName", name) for name, t in kafka_topics.items()}
    assert declared == expected
    for t in kafka_topics.values():
        assert t["apiVersion"] == "kafka.strimzi.io/v1", "Strimzi 1.x serves v1 only"
        assert t["metadata"]["labels"]["strimzi.io/cluster"] == "espace"
        assert t["spec"]["partitions"] == 3
        assert t["spec"]["replicas"] >= int(t["spec"]["config"]["min.insync.replicas"]) + 1


def test_the_topic_carrying_link_tokens_has_a_short_retention():
    kafka_topics = {t["spec"].get("topicName", n): t for n, t in _of_kind("KafkaTopic").items()}
    config = kafka_topics[topics.IDENTITY_MEMBERS]["spec"]["config"]
    day = 24 * 3600 * 1000
    assert int(config["retention.ms"]) <= day
    # Kafka deletes whole closed segments only: a long segment would outlive the retention.
    assert int(config["segment.ms"]) <= int(config["retention.ms"]) // 4
    dlq = kafka_topics[topics.dead_letter(topics.IDENTITY_MEMBERS)]["spec"]["config"]
    assert int(dlq["retention.ms"]) <= 7 * day


def test_one_cloudnativepg_cluster_per_service_database():
    clusters = _of_kind("Cluster")
    assert set(clusters) == {f"{name}-db" for name in WITH_DATABASE}
    for name in WITH_DATABASE:
        cluster = clusters[f"{name}-db"]
        assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
        assert cluster["spec"]["bootstrap"]["initdb"] == {"database": name, "owner": name}
        assert cluster["spec"].get("enableSuperuserAccess") is False


# -- migrations, sizing, Kafka users and their ACLs, backups ------------------------------------


def test_migrations_cannot_run_twice_at_once_and_rollouts_keep_the_old_version_serving():
    # Every replica applies its migrations at start (shared.platform.db.apply_migrations) under
    # one PostgreSQL advisory lock: replicas starting together wait for each other, and the
    # ones after the first find nothing to do.
    source = inspect.getsource(apply_migrations)
    assert "pg_advisory_lock(" in source and "pg_advisory_unlock(" in source
    readme = (K8S / "README.md").read_text(encoding="utf-8")
    assert "backward compatible" in readme, "the rolling-update story for migrations is told"
    for name in WITH_DATABASE:
        strategy = DEPLOYMENTS[name]["spec"]["strategy"]
        # The new version migrates while the old one still serves: never fewer pods than asked.
        assert strategy["type"] == "RollingUpdate" and strategy["rollingUpdate"]["maxUnavailable"] == 0, name
        assert "advisory lock" in (BASE / "databases.yaml").read_text(encoding="utf-8")


# Measured: each Python service idles at 105-130 MB RSS, the gateway at ~70 MiB (85 MiB
# streaming an upload), Kafka at 360 MB (make run, issue notes; make bench).
IDLE_RSS = {"gateway": 85 * 2**20, "kafka": 360 * 10**6} | {name: 130 * 10**6 for name in [*WITH_DATABASE, "web"]}


@pytest.mark.parametrize("name", sorted(PORTS))
def test_memory_requests_and_limits_are_above_the_measured_figures_and_say_so(name):
    resources = _container(name)["resources"]
    assert _quantity(resources["requests"]["memory"]) >= 1.2 * IDLE_RSS[name]
    assert _quantity(resources["limits"]["memory"]) >= 2 * IDLE_RSS[name]
    text = (BASE / f"{name}.yaml").read_text(encoding="utf-8")
    comment = text[text.index("          resources:") :].split("requests:")[0]
    assert "Measured" in comment and re.search(r"\d+ ?(MB|MiB)", comment), f"{name}: the figure behind the sizing"


def test_kafka_nodes_are_sized_above_kafkas_measured_footprint():
    (pool,) = _of_kind("KafkaNodePool", _docs(K8S / "components/kafka-cluster/kafka.yaml")).values()
    assert _quantity(pool["spec"]["resources"]["requests"]["memory"]) >= 2 * IDLE_RSS["kafka"]
    assert "Measured" in (K8S / "components/kafka-cluster/kafka.yaml").read_text(encoding="utf-8")


# What each service may do on Kafka: (reads, writes). Health data (claims.claims.v1) is read by
# documents and notifications only; each writes its own topic and the .dlq of what it reads.
ACL_MATRIX = {
    "identity": (set(), {topics.IDENTITY_MEMBERS}),
    "notifications": (
        {topics.IDENTITY_MEMBERS, topics.DOCUMENTS_DOCUMENTS, topics.CLAIMS_CLAIMS},
        {topics.NOTIFICATIONS_DELIVERIES},
    ),
    "claims": ({topics.IDENTITY_MEMBERS, topics.DOCUMENTS_DOCUMENTS}, {topics.CLAIMS_CLAIMS}),
    "documents": ({topics.IDENTITY_MEMBERS, topics.CLAIMS_CLAIMS}, {topics.DOCUMENTS_DOCUMENTS}),
}


def _acls(user: dict) -> tuple[set[str], set[str], set[str]]:
    reads, writes, groups = set(), set(), set()
    for acl in user["spec"]["authorization"]["acls"]:
        resource, ops = acl["resource"], set(acl["operations"])
        assert resource.get("patternType", "literal") == "literal", "no prefix or wildcard grants"
        assert ops <= {"Read", "Write", "Describe"}, ops
        if resource["type"] == "topic":
            (reads if "Read" in ops else writes).add(resource["name"])
            assert not ("Read" in ops and "Write" in ops), "a grant reads or writes, not both"
        elif resource["type"] == "group":
            groups.add(resource["name"])
        else:
            raise AssertionError(f"unexpected ACL resource {resource}")
    return reads, writes, groups


def test_each_service_has_a_kafka_user_that_reads_and_writes_only_its_own_topics():
    users = _of_kind("KafkaUser")
    assert set(users) == set(ACL_MATRIX)
    for name, (reads, writes) in ACL_MATRIX.items():
        user = users[name]
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == "espace"
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"
        got_reads, got_writes, groups = _acls(user)
        assert got_reads == reads, name
        assert got_writes == writes | {topics.dead_letter(t) for t in reads}, name
        assert groups == ({name} if reads else set()), "its own consumer group (group_id = the service name)"
        env = _env(name)
        prefix = SERVICES[name][0]
        assert env[f"{prefix}KAFKA_SASL_USERNAME"]["value"] == name
        assert env[f"{prefix}KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": name, "key": "password"}


def test_health_data_is_readable_by_documents_and_notifications_only():
    readers = {name for name, (reads, _) in ACL_MATRIX.items() if topics.CLAIMS_CLAIMS in reads}
    assert readers == {"documents", "notifications"}
    written = [name for name, (_, writes) in ACL_MATRIX.items() if topics.CLAIMS_CLAIMS in writes]
    assert written == ["claims"]


def test_what_each_service_consumes_in_its_code_is_granted_by_its_acls():
    # The consumers each service's app really wires (ServiceRuntime.consume): topics, group ids.
    # One process per service: their table models share SQLModel's metadata and cannot all be
    # imported into one interpreter.
    import json
    import subprocess
    import sys

    probe = (
        "import importlib, json, sys; runtime = importlib.import_module(sys.argv[1] + '.main').app.state.runtime; "
        "print(json.dumps([[r.consumer.name, list(r.consumer.topics)] for r in runtime.consumers]))"
    )
    for name, (reads, _) in ACL_MATRIX.items():
        out = subprocess.run([sys.executable, "-c", probe, name], capture_output=True, text=True, check=True, timeout=120)
        for group, consumed in json.loads(out.stdout.strip().splitlines()[-1]):
            assert set(consumed) <= reads, f"{name} consumes {set(consumed) - reads} without a grant"
            assert group == name, "the consumer group the ACL grants"


def test_the_kafka_cluster_enforces_the_acls_on_its_only_listener():
    (kafka,) = _of_kind("Kafka", _docs(K8S / "components/kafka-cluster/kafka.yaml")).values()
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    assert listener["tls"] is True and listener["authentication"]["type"] == "scram-sha-512"
    assert CONFIG["KAFKA_BOOTSTRAP"].endswith(f":{listener['port']}")
    assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"
    assert "userOperator" in kafka["spec"]["entityOperator"]


def test_every_topic_sets_its_own_retention():
    for name, topic in _of_kind("KafkaTopic").items():
        config = topic["spec"]["config"]
        assert int(config["retention.ms"]) > 0 and config["cleanup.policy"] == "delete", name


def test_every_database_is_backed_up_continuously_and_daily_to_an_object_store():
    scheduled = {b["spec"]["cluster"]["name"]: b for b in _of_kind("ScheduledBackup").values()}
    for name, cluster in _of_kind("Cluster").items():
        backup = cluster["spec"]["backup"]
        store = backup["barmanObjectStore"]
        assert store["destinationPath"].startswith(("s3://", "gs://", "https://")), name
        for key in ("accessKeyId", "secretAccessKey"):
            assert store["s3Credentials"][key]["name"] == "backup-object-store", "credentials from a Secret"
        assert backup["retentionPolicy"].endswith("d")
        assert scheduled[name]["spec"]["method"] == "barmanObjectStore"


# -- the overlays, rendered (when a kustomize is at hand) -----------------------------------------


def _kustomize() -> list[str] | None:
    if os.environ.get("KUSTOMIZE"):
        return [os.environ["KUSTOMIZE"], "build"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def _render(overlay: str) -> list[dict]:
    command = _kustomize()
    if command is None:
        pytest.skip("no kustomize or kubectl on the PATH (set KUSTOMIZE=/path/to/kustomize)")
    out = subprocess.run([*command, str(K8S / "overlays" / overlay)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def test_production_renders_with_two_replicas_or_more_everywhere():
    docs = _render("production")
    deployments = _of_kind("Deployment", docs)
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in _of_kind("HorizontalPodAutoscaler", docs).values()}
    assert set(hpas) == set(PORTS), "an HPA on CPU for every (stateless) workload"
    for hpa in hpas.values():
        assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    for name, deployment in deployments.items():
        if name in hpas:
            assert "replicas" not in deployment["spec"], f"{name}: the HPA owns the count"
            assert hpas[name]["spec"]["minReplicas"] >= 2
        else:
            assert deployment["spec"]["replicas"] >= 2, name
        image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        assert re.fullmatch(rf"[a-z0-9.\-]+\.[a-z]+/espace/{name}[:@].+", image), f"registry and tag: {image}"
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {"espace"}
    assert _of_kind("Ingress", docs), "production exposes the gateway"


def test_dev_renders_with_one_replica_and_a_one_node_kafka():
    docs = _render("dev")
    for deployment in _of_kind("Deployment", docs).values():
        assert deployment["spec"]["replicas"] == 1
    (pool,) = _of_kind("KafkaNodePool", docs).values()
    assert pool["spec"]["replicas"] == 1
    for topic in _of_kind("KafkaTopic", docs).values():
        assert topic["spec"]["replicas"] == 1 and topic["spec"]["config"]["min.insync.replicas"] == "1"


# -- helpers ------------------------------------------------------------------------------------


def _quantity(value: str | int | float) -> float:
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def _as_fields(env: dict[str, str], prefix: str) -> dict[str, str]:
    return {k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix)}


# -- metrics component ----------------------------------------------------------------------


def test_the_metrics_component_gives_each_workload_its_own_metrics_port_setting_and_scrape_annotations():
    component = yaml.safe_load((K8S / "components" / "metrics" / "kustomization.yaml").read_text(encoding="utf-8"))
    patched = {}
    for patch in component["patches"]:
        name = patch["target"]["name"]
        ops = {op["path"]: op["value"] for op in yaml.safe_load(patch["patch"])}
        patched[name] = ops
    assert set(patched) == set(SERVICES)
    [policy] = _docs(K8S / "components" / "metrics" / "networkpolicy.yaml")
    [rule] = policy["spec"]["ingress"]
    for name, ops in patched.items():
        prefix, port, settings_cls = SERVICES[name]
        env = ops["/spec/template/spec/containers/0/env/-"]
        assert env["name"] == f"{prefix}METRICS_PORT" and "metrics_port" in settings_cls.model_fields
        metrics_port = int(env["value"])
        assert metrics_port != port
        assert ops["/spec/template/spec/containers/0/ports/-"]["containerPort"] == metrics_port
        annotations = ops["/spec/template/metadata/annotations"]
        assert annotations["prometheus.io/port"] == str(metrics_port)
        assert annotations["prometheus.io/path"] == "/metrics"
        assert _port_matches(rule, metrics_port, "TCP")


@pytest.mark.parametrize("name", [*WITH_DATABASE, "web"])
def test_the_gateway_addresses_each_upstream_by_its_service_name_and_port(name):
    # The defaults (127.0.0.1) suit `make run` only: in a pod they would point at the gateway itself.
    port = PORTS[name]
    value = _env("gateway")[f"GATEWAY_{name.upper()}_URL"]
    url = value.get("value") or CONFIG[value["valueFrom"]["configMapKeyRef"]["key"]]
    assert url == f"http://{name}:{port}"
    assert can_connect(_app("gateway"), _app(name), port)
