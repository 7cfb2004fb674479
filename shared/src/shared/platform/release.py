"""`make release SERVICE=<name> [VERSION=x.y.z]`: release one workload on its own.

Refuses (exit 2, nothing changed) when:
- the working tree has uncommitted changes to tracked files, or untracked files in the
  service's directory or shared/ (the release must be what is committed);
- VERSION is not x.y.z above the current one, or its tag already exists;
- the service's event contracts would break a consumer (shared/contracts/compat.py): a field a
  consumer's committed AsyncAPI document reads that the service's code no longer sends, a
  published schema broken (a field removed or retyped), a committed example that no longer
  parses, or a committed services/<name>/asyncapi.json or event schema that is stale.

Otherwise it
1. sets the version (default: the patch after the current one) in the service's pyproject.toml,
   its entry in uv.lock, its asyncapi.json (`info.version`, which the service serves), and
   web's `__version__`;
2. prepends a section to <dir>/CHANGELOG.md: the commits touching <dir> since the previous
   release's tag `<name>-v<current version>` (or the newest `<name>-v*` tag; with none yet,
   since the commit that added the CHANGELOG, whose first section covers the history before
   it), and how many commits to shared/ ship with it;
3. commits those files ("<name> <version>") and creates the annotated tag `<name>-v<version>`.

It does not push, and it does not build or push an image (no Docker engine here): that is the
CI's or the releaser's next step, printed at the end.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from shared.contracts import compat

REPO = Path(__file__).resolve().parents[4]
DIRS = {
    "identity": "services/identity",
    "notifications": "services/notifications",
    "documents": "services/documents",
    "claims": "services/claims",
    "gateway": "gateway",
    "web": "web",
}
PORTS = {"gateway": 8000, "identity": 8001, "notifications": 8002, "documents": 8003, "claims": 8004, "web": 8005}
SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
CHANGELOG_HEADER = (
    "# Changelog — {name}\n\n"
    "Written by `make release SERVICE={name}` (shared/platform/release.py): one section per release,\n"
    "newest first, from the commits to `{dir}/` since the previous tag `{name}-v<version>`.\n"
)


class ReleaseRefused(Exception):
    pass


@dataclass(frozen=True)
class Released:
    service: str
    previous: str
    version: str
    tag: str
    commit: str
    section: str


def _git(root: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"git {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


def _tag_exists(root: Path, tag: str) -> bool:
    return bool(_git(root, "tag", "--list", tag).strip())


def current_version(root: Path, service: str) -> str:
    text = (root / DIRS[service] / "pyproject.toml").read_text(encoding="utf-8")
    project = text.split("[project]", 1)[1]
    match = re.search(r'^version\s*=\s*"([^"]+)"', project, re.M)
    if not match:
        raise ReleaseRefused(f"{DIRS[service]}/pyproject.toml: no version in [project]")
    return match.group(1)


def next_version(current: str, requested: str | None) -> str:
    cur = SEMVER.match(current)
    if not cur:
        raise ReleaseRefused(f"the current version {current!r} is not x.y.z")
    if requested is None:
        major, minor, patch = map(int, cur.groups())
        return f"{major}.{minor}.{patch + 1}"
    new = SEMVER.match(requested)
    if not new:
        raise ReleaseRefused(f"VERSION={requested!r}: expected x.y.z (e.g. 1.4.0)")
    if tuple(map(int, new.groups())) <= tuple(map(int, cur.groups())):
        raise ReleaseRefused(f"VERSION={requested} is not above the current version {current}")
    return requested


def _check_clean(root: Path, service: str) -> None:
    tracked = _git(root, "status", "--porcelain", "--untracked-files=no").splitlines()
    untracked = [line for line in _git(root, "status", "--porcelain", "--", DIRS[service], "shared").splitlines() if line.startswith("??")]
    dirty = tracked + untracked
    if dirty:
        shown = "\n  ".join(dirty[:10]) + ("\n  ..." if len(dirty) > 10 else "")
        raise ReleaseRefused(f"uncommitted changes (a release is made from what is committed):\n  {shown}")


def previous_ref(root: Path, service: str, current: str) -> tuple[str | None, str]:
    """The commit to log from, and how to name it in the changelog."""
    tag = f"{service}-v{current}"
    if _tag_exists(root, tag):
        return tag, tag
    tags = _git(root, "tag", "--list", f"{service}-v*", "--sort=-v:refname").split()
    if tags:
        return tags[0], tags[0]
    changelog = f"{DIRS[service]}/CHANGELOG.md"
    added = _git(root, "log", "--diff-filter=A", "--format=%H", "-1", "--", changelog).strip()
    if added:
        return added, f"{added[:7]} (the commit that added {changelog})"
    return None, "the beginning"


def changelog_section(root: Path, service: str, version: str, since: str | None, since_name: str, today: date) -> str:
    span = [f"{since}..HEAD"] if since else ["HEAD"]
    lines = _git(root, "log", "--no-merges", "--format=%h%x09%s", *span, "--", DIRS[service]).splitlines()
    shared = _git(root, "log", "--no-merges", "--format=%h", *span, "--", "shared").split()
    out = [f"## {version} — {today.isoformat()}", ""]
    if lines:
        out.append(f"Changes to `{DIRS[service]}/` since {since_name}:")
        out.append("")
        out += [f"- {subject} ({sha})" for sha, _, subject in (line.partition("\t") for line in lines)]
    else:
        out.append(f"No change to `{DIRS[service]}/` since {since_name}.")
    if shared:
        out += ["", f"Also in this image: {len(shared)} commit(s) to `shared/` in the same span "
                    f"(`git log {since + '..' if since else ''}{service}-v{version} -- shared`)."]
    return "\n".join(out) + "\n"


def _write_changelog(path: Path, service: str, section: str) -> None:
    if path.exists():
        text = path.read_text(encoding="utf-8")
        cut = text.find("\n## ")
        head, rest = (text, "") if cut < 0 else (text[: cut + 1], text[cut + 1 :])
    else:
        head, rest = CHANGELOG_HEADER.format(name=service, dir=DIRS[service]), ""
    path.write_text(head.rstrip("\n") + "\n\n" + section + ("\n" + rest if rest else ""), encoding="utf-8")


def _set_versions(root: Path, service: str, old: str, new: str) -> list[str]:
    d = DIRS[service]
    changed = []
    pyproject = root / d / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    head, project = text.split("[project]", 1)
    project = re.sub(r'^(version\s*=\s*)"[^"]+"', rf'\g<1>"{new}"', project, count=1, flags=re.M)
    pyproject.write_text(head + "[project]" + project, encoding="utf-8")
    changed.append(f"{d}/pyproject.toml")

    lock = root / "uv.lock"
    if lock.exists():
        text = lock.read_text(encoding="utf-8")
        name = re.search(r'^name\s*=\s*"([^"]+)"', pyproject.read_text(encoding="utf-8"), re.M).group(1)  # type: ignore[union-attr]
        entry = f'name = "{name}"\nversion = "{old}"\n'
        if entry in text:
            lock.write_text(text.replace(entry, f'name = "{name}"\nversion = "{new}"\n', 1), encoding="utf-8")
            changed.append("uv.lock")

    asyncapi = root / d / "asyncapi.json"
    if asyncapi.exists():
        doc = json.loads(asyncapi.read_text(encoding="utf-8"))
        doc.setdefault("info", {})["version"] = new
        # as shared.platform.asyncapi.render writes it
        asyncapi.write_text(json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
        changed.append(f"{d}/asyncapi.json")

    init = root / d / "src" / service / "__init__.py"
    if init.exists():
        text = init.read_text(encoding="utf-8")
        bumped = re.sub(r'^__version__ = "[^"]*"', f'__version__ = "{new}"', text, count=1, flags=re.M)
        if bumped != text:
            init.write_text(bumped, encoding="utf-8")
            changed.append(f"{d}/src/{service}/__init__.py")
    return changed


def release(
    service: str,
    version: str | None = None,
    *,
    root: Path = REPO,
    generate: Callable[[str], str] | None = None,
    current_schemas: Mapping[str, tuple[int, dict]] | None = None,
    today: date | None = None,
) -> Released:
    """See the module. `generate` and `current_schemas` are what the contract check compares
    against (default: the real code's); tests give a temporary repository's."""
    if service not in DIRS:
        raise ReleaseRefused(f"SERVICE={service!r}: one of {', '.join(DIRS)}")
    root = Path(root)
    _check_clean(root, service)
    old = current_version(root, service)
    new = next_version(old, version)
    tag = f"{service}-v{new}"
    if _tag_exists(root, tag):
        raise ReleaseRefused(f"the tag {tag} already exists")
    problems = compat.release_problems(service, root=root, generate=generate, current=current_schemas)
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise ReleaseRefused(f"{service}'s event contracts would break (nothing changed, no tag):\n{listed}")

    since, since_name = previous_ref(root, service, old)
    section = changelog_section(root, service, new, since, since_name, today or date.today())
    changed = _set_versions(root, service, old, new)
    changelog = root / DIRS[service] / "CHANGELOG.md"
    _write_changelog(changelog, service, section)
    changed.append(f"{DIRS[service]}/CHANGELOG.md")
    _git(root, "add", "--", *changed)
    _git(root, "commit", "-q", "-m", f"{service} {new}", "-m", section, "--", *changed)
    _git(root, "tag", "-a", tag, "-m", f"{service} {new}\n\n{section}")
    commit = _git(root, "rev-parse", "HEAD").strip()
    return Released(service, old, new, tag, commit, section)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("service", choices=list(DIRS))
    parser.add_argument("--version", default=None, help="x.y.z (default: the next patch)")
    args = parser.parse_args(argv)
    try:
        done = release(args.service, args.version or None)
    except ReleaseRefused as refused:
        print(f"release refused: {refused}", file=sys.stderr)
        return 2
    print(done.section)
    print(f"released {done.service} {done.previous} -> {done.version}: commit {done.commit[:10]}, tag {done.tag} (annotated).")
    print("Not pushed, no image built. Next, once reviewed:")
    print(f"  git push origin HEAD {done.tag}")
    print(f"  docker build --build-arg SERVICE={done.service} --build-arg PORT={PORTS[done.service]} "
          f"-t <registry>/espace/{done.service}:{done.version} . && docker push <registry>/espace/{done.service}:{done.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
