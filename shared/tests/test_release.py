"""`make release SERVICE=<name>` (shared/platform/release.py): it refuses a contract that would
break a consumer, and otherwise bumps, writes the changelog, commits and tags — shown on a
temporary copy of the contracts and in a temporary git repository, never on this one. No ports,
no subprocess but git: the documents "generated" are the temporary tree's own."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest

from shared.contracts import compat
from shared.platform import release as rel

REPO = Path(__file__).resolve().parents[2]
DROPPED = "total_mutuelle_paid_cents"  # of claims.ClaimSettled; notifications and documents read it


def _contract_tree(root: Path) -> None:
    """The committed contracts (every asyncapi.json and the event schemas) under `root`."""
    for service in compat.SERVICES:
        (root / "services" / service).mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "services" / service / "asyncapi.json", root / "services" / service / "asyncapi.json")
    shutil.copytree(REPO / compat.SCHEMAS_DIR, root / compat.SCHEMAS_DIR)


def _claims_without_the_field(root: Path) -> dict:
    """claims' AsyncAPI document as its code would generate it with the field dropped."""
    doc = json.loads((root / "services/claims/asyncapi.json").read_text(encoding="utf-8"))
    settled = doc["components"]["schemas"]["ClaimSettled"]
    del settled["properties"][DROPPED]
    settled["required"].remove(DROPPED)
    return doc


def _models_without_the_field() -> dict[str, tuple[int, dict]]:
    current = json.loads(json.dumps(compat.current_schemas()))
    version, schema = current["claims.ClaimSettled"]
    del schema["properties"][DROPPED]
    schema["required"].remove(DROPPED)
    return current


def _committed(root: Path):
    return lambda service: (root / "services" / service / "asyncapi.json").read_text(encoding="utf-8")


def test_the_real_contracts_allow_every_release_today(tmp_path: Path) -> None:
    _contract_tree(tmp_path)
    for service in compat.SERVICES:
        assert [str(p) for p in compat.release_problems(service, root=tmp_path, generate=_committed(tmp_path))] == []


def test_a_field_dropped_from_claim_settled_is_refused_naming_the_field_and_its_consumers(tmp_path: Path) -> None:
    # claims's code no longer has the field, and its document was regenerated and committed:
    # the staleness check passes, the consumer check must not.
    _contract_tree(tmp_path)
    doc = _claims_without_the_field(tmp_path)
    (tmp_path / "services/claims/asyncapi.json").write_text(json.dumps(doc), encoding="utf-8")
    problems = compat.release_problems(
        "claims", root=tmp_path, generate=lambda _: json.dumps(doc), current=_models_without_the_field()
    )
    consumer = [p for p in problems if p.kind == "consumer"]
    assert {(p.event, p.field, p.consumers) for p in consumer} == {
        ("claims.ClaimSettled", DROPPED, ("notifications",)),
        ("claims.ClaimSettled", DROPPED, ("documents",)),
    }
    assert any("read by notifications (services/notifications/asyncapi.json)" in str(p) for p in consumer)
    schema = [p for p in problems if p.kind == "schema"]
    assert [(p.field, p.consumers) for p in schema] == [(DROPPED, ("documents", "notifications"))]
    assert "field total_mutuelle_paid_cents was removed (read by documents, notifications)" in str(schema[0])
    assert not [p for p in problems if p.kind == "stale"]
    # the other services' releases are not blocked by claims' change... except those reading it
    assert compat.consumer_breaks(compat.committed_documents(tmp_path), producer="identity") == []


def test_an_event_dropped_altogether_is_refused(tmp_path: Path) -> None:
    _contract_tree(tmp_path)
    doc = json.loads((tmp_path / "services/claims/asyncapi.json").read_text(encoding="utf-8"))
    payload = doc["components"]["schemas"]["claims.claims.v1:send:Message:Payload"]
    payload["oneOf"] = [o for o in payload.get("oneOf", []) if not o["$ref"].endswith("/ClaimSettledMessage")]
    problems = compat.consumer_breaks({**compat.committed_documents(tmp_path), "claims": doc}, producer="claims")
    assert sorted(p.consumers for p in problems) == [("documents",), ("notifications",)]
    assert all("claims.ClaimSettled: read by" in str(p) and "no service's AsyncAPI document sends it" in str(p) for p in problems)


def test_a_stale_committed_document_is_refused(tmp_path: Path) -> None:
    _contract_tree(tmp_path)
    doc = _claims_without_the_field(tmp_path)  # the code changed, the document was not regenerated
    problems = compat.release_problems("claims", root=tmp_path, generate=lambda _: json.dumps(doc))
    assert [p.kind for p in problems if p.kind == "stale"] == ["stale"]
    assert "services/claims/asyncapi.json is stale" in str(problems[0])
    # and the consumer check runs on what the code generates, not on the stale file
    assert any(p.kind == "consumer" and p.field == DROPPED for p in problems)


# -- a whole release, in a temporary git repository ---------------------------------------------


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout


def _commit(root: Path, path: str, text: str, subject: str) -> None:
    file = root / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(text, encoding="utf-8")
    _git(root, "add", path)
    _git(root, "commit", "-q", "-m", subject)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    _git(root, "config", "user.name", "Release Test")
    _git(root, "config", "user.email", "release-test@example.org")
    _git(root, "config", "commit.gpgsign", "false")
    _git(root, "config", "tag.gpgsign", "false")
    _contract_tree(root)
    for d in rel.DIRS.values():
        (root / d).mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / d / "pyproject.toml", root / d / "pyproject.toml")
        shutil.copy(REPO / d / "CHANGELOG.md", root / d / "CHANGELOG.md")
    shutil.copy(REPO / "uv.lock", root / "uv.lock")
    (root / "web/src/web").mkdir(parents=True)
    shutil.copy(REPO / "web/src/web/__init__.py", root / "web/src/web/__init__.py")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "the tree as it was, changelogs added")
    _commit(root, "services/claims/src/claims/valuation.py", "x = 1\n", "claims: value optical care by the 100% santé basket")
    _commit(root, "gateway/src/gateway/app.py", "y = 1\n", "gateway: a change that is not claims'")
    _commit(root, "shared/src/shared/platform/db.py", "z = 1\n", "shared: pool size")
    _commit(root, "services/claims/README.md", "# claims\n", "claims: README on disputes")
    return root


def test_a_release_bumps_writes_the_changelog_commits_and_tags(repo: Path) -> None:
    done = rel.release("claims", "0.2.0", root=repo, generate=_committed(repo), today=date(2026, 12, 3))
    assert (done.previous, done.version, done.tag) == ("0.1.0", "0.2.0", "claims-v0.2.0")
    assert rel.current_version(repo, "claims") == "0.2.0"
    assert 'name = "espace-claims"\nversion = "0.2.0"\n' in (repo / "uv.lock").read_text()
    assert 'name = "espace-identity"\nversion = "0.1.0"\n' in (repo / "uv.lock").read_text()  # only claims
    assert json.loads((repo / "services/claims/asyncapi.json").read_text())["info"]["version"] == "0.2.0"

    changelog = (repo / "services/claims/CHANGELOG.md").read_text()
    assert changelog.startswith("# Changelog — claims\n")
    new, old = changelog.index("## 0.2.0 — 2026-12-03"), changelog.index("## 0.1.0 — before per-service releases")
    assert new < old
    section = changelog[new:old]
    assert "- claims: value optical care by the 100% santé basket (" in section
    assert "- claims: README on disputes (" in section
    assert "gateway" not in section and "the tree as it was" not in section
    assert "1 commit(s) to `shared/`" in section

    # one commit with exactly the release's files, an annotated tag on it, nothing pushed
    assert _git(repo, "log", "-1", "--format=%s").strip() == "claims 0.2.0"
    assert sorted(_git(repo, "show", "--name-only", "--format=", "HEAD").split()) == [
        "services/claims/CHANGELOG.md", "services/claims/asyncapi.json", "services/claims/pyproject.toml", "uv.lock",
    ]
    assert _git(repo, "cat-file", "-t", "claims-v0.2.0").strip() == "tag"
    assert _git(repo, "rev-parse", "claims-v0.2.0^{commit}").strip() == done.commit
    assert _git(repo, "remote").strip() == ""
    assert _git(repo, "status", "--porcelain").strip() == ""

    # the next release (default: the next patch) starts from that tag
    _commit(repo, "services/claims/src/claims/valuation.py", "x = 2\n", "claims: round the basket ceiling")
    again = rel.release("claims", root=repo, generate=_committed(repo), today=date(2026, 12, 4))
    assert again.version == "0.2.1"
    assert "since claims-v0.2.0" in again.section
    assert "round the basket ceiling" in again.section and "optical care" not in again.section


def test_web_and_gateway_release_the_same_way(repo: Path) -> None:
    done = rel.release("web", "0.1.1", root=repo, generate=_committed(repo))
    assert done.tag == "web-v0.1.1"
    assert '__version__ = "0.1.1"' in (repo / "web/src/web/__init__.py").read_text()
    assert rel.release("gateway", root=repo).tag == "gateway-v0.1.1"
    assert "gateway: a change that is not claims'" in (repo / "gateway/CHANGELOG.md").read_text()


def test_a_release_that_breaks_a_consumer_changes_nothing(repo: Path) -> None:
    doc = _claims_without_the_field(repo)
    head = _git(repo, "rev-parse", "HEAD")
    with pytest.raises(rel.ReleaseRefused) as refused:
        rel.release("claims", "0.2.0", root=repo, generate=lambda _: json.dumps(doc), current_schemas=_models_without_the_field())
    message = str(refused.value)
    assert f"claims.ClaimSettled: field `{DROPPED}` is read by notifications" in message
    assert "stale" in message  # the committed document was not regenerated either
    assert _git(repo, "rev-parse", "HEAD") == head and _git(repo, "tag").strip() == ""
    assert _git(repo, "status", "--porcelain").strip() == ""


def test_other_refusals(repo: Path) -> None:
    with pytest.raises(rel.ReleaseRefused, match="not above the current version 0.1.0"):
        rel.release("claims", "0.1.0", root=repo, generate=_committed(repo))
    with pytest.raises(rel.ReleaseRefused, match="expected x.y.z"):
        rel.release("claims", "1.0", root=repo, generate=_committed(repo))
    with pytest.raises(rel.ReleaseRefused, match="one of identity"):
        rel.release("billing", root=repo)
    (repo / "services/claims/README.md").write_text("edited\n")
    with pytest.raises(rel.ReleaseRefused, match="uncommitted changes"):
        rel.release("claims", root=repo, generate=_committed(repo))
    _git(repo, "checkout", "--", "services/claims/README.md")
    _git(repo, "tag", "-a", "claims-v0.1.1", "-m", "made by hand")
    with pytest.raises(rel.ReleaseRefused, match="the tag claims-v0.1.1 already exists"):
        rel.release("claims", root=repo, generate=_committed(repo))
