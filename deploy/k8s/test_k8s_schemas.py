"""Every object of the base and of each rendered overlay against its schema, offline and strict
(k8s_schemas.py: Kubernetes' own JSON schemas for core kinds, the vendored CRDs for custom
resources). A couple of seconds; the real kube-apiserver check is `make test-k8s`."""

from __future__ import annotations

import copy

import k8s_schemas
import pytest

TARGETS = ("base", *(f"overlays/{o}" for o in k8s_schemas.OVERLAYS))


@pytest.mark.parametrize("target", TARGETS)
def test_every_object_matches_its_schema(target):
    docs = k8s_schemas.render(target)
    assert docs, target
    problems = [p for doc in docs for p in k8s_schemas.problems(doc)]
    assert not problems, "\n".join(problems)


def test_every_custom_resource_kind_used_has_a_vendored_crd():
    kinds = {(d["apiVersion"], d["kind"]) for t in TARGETS for d in k8s_schemas.render(t)}
    custom = {k for k in kinds if k[0].split("/")[0].endswith((".cnpg.io", ".strimzi.io"))}
    assert custom <= set(k8s_schemas.crd_schemas()), custom - set(k8s_schemas.crd_schemas())
    assert {k for _, k in custom} >= {"Cluster", "ScheduledBackup", "KafkaTopic", "KafkaUser", "Kafka", "KafkaNodePool"}


def _first(kind: str) -> dict:
    return copy.deepcopy(next(d for d in k8s_schemas.render("overlays/dev") if d["kind"] == kind))


def test_the_validation_fails_on_typos_wrong_types_and_unknown_kinds():
    deployment = _first("Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["resource"] = {}  # resources
    deployment["spec"]["replicas"] = "two"
    cluster = _first("Cluster")
    cluster["spec"]["storage"]["sizee"] = "1Gi"
    cluster["spc"] = {}
    topic = _first("KafkaTopic")
    topic["spec"]["retention"] = "1d"  # belongs in spec.config as retention.ms
    user = _first("KafkaUser")
    user["spec"]["authorization"]["acls"][0]["operations"] = ["Rread"]
    found = "\n".join(
        p
        for doc in (deployment, cluster, topic, user, {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
        for p in k8s_schemas.problems(doc)
    )
    for expected in ("'resource' was unexpected", "'two' is not of type 'integer'", "'sizee' was unexpected",
                     "'spc' was unexpected", "'retention' was unexpected", "'Rread' is not one of",
                     "no schema for example.com/v1 Widget"):
        assert expected in found, f"{expected!r} not reported in:\n{found}"
