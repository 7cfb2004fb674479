"""`make test-k8s` can fail: a copy of the dev overlay, broken three ways (each in its own copy),
is rejected by the real kube-apiserver + CloudNativePG webhook that tools/test-k8s.sh starts,
with the rejection named in its output, while the unbroken copy is accepted.

Run by `make test-k8s` after the real overlays (not by `make test`: see conftest.py). One
test-k8s.sh run for the four copies, so one apiserver start: the script checks each target
separately, prints `accepted: <dir>` or `REJECTED: <dir>` and the refusals for each, and exits 1
when any is rejected — so each broken copy's REJECTED section is what makes the run fail, and
the unbroken copy's `accepted` shows that the copying itself breaks nothing.

The three breaks:
- cel: a CEL rule of a CRD (`x-kubernetes-validations` of Strimzi's KafkaUser,
  spec.authentication): `validityDays` with `type: scram-sha-512`;
- selector: a Deployment whose selector does not match its pod template's labels (core
  validation of apps/v1);
- latest: a CloudNativePG Cluster on `postgresql:latest`, which CNPG's validating webhook refuses.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

K8S = Path(__file__).resolve().parent
SCRIPT = K8S / "tools" / "test-k8s.sh"
OVERLAY = "overlays/dev"

BREAKS: dict[str, tuple[dict | None, str]] = {
    "good": (None, ""),
    "cel": (
        {
            "target": {"kind": "KafkaUser", "name": "identity"},
            "patch": "- op: add\n  path: /spec/authentication/validityDays\n  value: 30\n",
        },
        r"'validityDays' and 'renewalDays' can be configured only with 'type: tls'",
    ),
    "selector": (
        {
            "target": {"kind": "Deployment", "name": "gateway"},
            "patch": "- op: replace\n  path: /spec/selector/matchLabels\n  value: {app.kubernetes.io/name: gateway-typo}\n",
        },
        r"`selector` does not match template `labels`",
    ),
    "latest": (
        {
            "target": {"kind": "Cluster", "name": "identity-db"},
            "patch": "- op: replace\n  path: /spec/imageName\n  value: ghcr.io/cloudnative-pg/postgresql:latest\n",
        },
        r"Can't use 'latest' as image tag as we can't detect upgrades",
    ),
}


def _copy(tmp: Path, case: str) -> Path:
    """deploy/k8s copied (the overlay needs its base and components), the overlay's
    kustomization rewritten with the break appended to its patches (the good copy is rewritten
    too, so the only difference is the break)."""
    root = tmp / case
    shutil.copytree(K8S, root, ignore=shutil.ignore_patterns("crds", "__pycache__", "*.py", "tools"))
    kustomization = root / OVERLAY / "kustomization.yaml"
    doc = yaml.safe_load(kustomization.read_text(encoding="utf-8"))
    patch, _ = BREAKS[case]
    if patch:
        doc.setdefault("patches", []).append(patch)
    kustomization.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return root / OVERLAY


def _sections(output: str) -> dict[str, tuple[str, str]]:
    """target dir -> (verdict, the refusals printed under it)."""
    found: dict[str, tuple[str, str]] = {}
    current = None
    for line in output.splitlines():
        m = re.match(r"test-k8s: (accepted|REJECTED): (\S+)", line)
        if m:
            current = m.group(2)
            found[current] = (m.group(1), "")
        elif line.startswith("test-k8s: "):
            current = None
        elif current:
            verdict, text = found[current]
            found[current] = (verdict, text + line + "\n")
    return found


@pytest.mark.timeout(1800)  # the binaries are cached by the run before; the first build is not
def test_each_broken_copy_is_rejected_and_the_unbroken_one_accepted(tmp_path: Path) -> None:
    targets = {case: _copy(tmp_path, case) for case in BREAKS}
    env = {**os.environ, "SKIP_CRD_DIFF": "1"}
    run = subprocess.run([str(SCRIPT), *map(str, targets.values())], env=env, capture_output=True, text=True)
    output = run.stdout + run.stderr
    print(output)
    sections = _sections(output)
    assert run.returncode != 0, output

    verdict, refusals = sections[str(targets["good"])]
    assert verdict == "accepted", f"the unbroken copy was rejected:\n{refusals}"
    for case in ("cel", "selector", "latest"):
        verdict, refusals = sections[str(targets[case])]
        assert verdict == "REJECTED", f"{case}: the broken copy was accepted"
        assert re.search(BREAKS[case][1], refusals), f"{case}: rejected, but not for its break:\n{refusals}"
        # rejected for that break only (warnings aside): the other objects of the copy went through
        errors = [line for line in refusals.splitlines() if line.strip() and not line.startswith("Warning:")]
        assert len(errors) == 1 and BREAKS[case][0]["target"]["name"] in errors[0], refusals
