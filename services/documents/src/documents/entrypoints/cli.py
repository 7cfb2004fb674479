"""documents's command line:
  documents issue-letters FILE.json   letters (a JSON list, or one JSON object per line) issued
                                      as the back office would, routed online or to the post
  documents print-batch [--out DIR]   one PDF of every letter queued for post + a CSV manifest
                                      under var/print/<date>/; those letters are marked sent
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from importlib.resources import files
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from documents.adapters.antivirus import ClamdScanner
from documents.adapters.pdf import PdfRenderer
from documents.adapters.storage import build_storage
from documents.config import DocumentsSettings
from shared.platform.db import PLATFORM_MIGRATIONS, Database, apply_migrations
from shared.platform.problems import ProblemError


async def _documents():
    from documents.service_layer.context import Documents

    settings = DocumentsSettings()
    db = Database(settings.database_url.get_secret_value(), pool_size=2)
    await apply_migrations(db.url, ("platform", PLATFORM_MIGRATIONS), ("documents", files("documents") / "migrations"))
    docs = Documents(settings=settings, db=db, storage=build_storage(settings), renderer=PdfRenderer(1),
                     scanner=ClamdScanner(settings.clamd_host, settings.clamd_port, settings.clamd_timeout_s))
    await docs.storage.start()
    return docs


def _read_letters(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8").strip()
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


async def _issue(path: Path, wait_s: float) -> int:
    from documents.entrypoints.http_backoffice import LetterIn
    from documents.service_layer import letters

    adapter = TypeAdapter(LetterIn)
    items = [adapter.validate_python(raw) for raw in _read_letters(path)]
    docs = await _documents()
    issued = failed = 0
    try:
        for item in items:
            # Members imported a moment ago may still be on their way from identity: wait a little.
            for attempt in range(int(wait_s * 2) + 1):
                try:
                    document = await letters.issue_letter(docs, item.to_letter(), agent_id=None)
                    print(f"{item.membership_number}: {document.kind} {document.id} ({document.delivery})")
                    issued += 1
                    break
                except ProblemError as exc:
                    unknown = any(e.code == "unknown_member" for e in exc.errors)
                    if unknown and attempt < int(wait_s * 2):
                        await asyncio.sleep(0.5)
                        continue
                    print(f"{item.membership_number}: refused ({', '.join(e.message for e in exc.errors) or exc.detail})",
                          file=sys.stderr)
                    failed += 1
                    break
    finally:
        docs.renderer.close()
        await docs.db.dispose()
    print(f"{issued} letter(s) issued, {failed} refused")
    return 1 if failed else 0


async def _print(out: Path) -> int:
    from documents.service_layer.printing import print_batch

    docs = await _documents()
    try:
        batch = await print_batch(docs, out)
    finally:
        await docs.db.dispose()
    if batch.pdf is None:
        print("nothing to print" + (f" ({batch.held} letter(s) wait for a postal address)" if batch.held else ""))
        return 0
    print(f"{batch.printed} letter(s): {batch.pdf} and {batch.manifest}"
          + (f"; {batch.held} wait for a postal address" if batch.held else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="documents")
    commands = parser.add_subparsers(dest="command", required=True)
    issue = commands.add_parser("issue-letters", help="issue letters from a JSON file")
    issue.add_argument("file", type=Path)
    issue.add_argument("--wait", type=float, default=30.0, help="seconds to wait for members not known yet")
    printing = commands.add_parser("print-batch", help="write the print batch of letters queued for post")
    printing.add_argument("--out", type=Path, default=None, help="folder (default: $ESPACE_VAR/print or var/print)")
    args = parser.parse_args(argv)
    try:
        if args.command == "issue-letters":
            return asyncio.run(_issue(args.file, args.wait))
        import os

        out = args.out or Path(os.environ.get("ESPACE_VAR", "var")) / "print"
        return asyncio.run(_print(out))
    except (OSError, ValueError, ValidationError) as exc:
        print(f"{args.command} failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
