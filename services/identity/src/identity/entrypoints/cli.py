"""identity's command line: `identity import-members FILE.csv` upserts the member registry;
`identity create-agent --email … --name …` makes a management-centre agent and prints the
one-time link where the agent sets a password (and enrols the second factor)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from importlib.resources import files
from pathlib import Path

from identity.config import IdentitySettings
from identity.service_layer.agents import create_agent
from identity.service_layer.registry import import_members, read_csv
from shared.platform.db import PLATFORM_MIGRATIONS, Database, apply_migrations


async def _import(path: Path) -> int:
    settings = IdentitySettings()
    db = Database(settings.database_url.get_secret_value(), pool_size=1)
    try:
        await apply_migrations(db.url, ("platform", PLATFORM_MIGRATIONS), ("identity", files("identity") / "migrations"))
        # The running service's outbox relay publishes the MemberEnrolled events (woken by NOTIFY).
        return await import_members(db, read_csv(path))
    finally:
        await db.dispose()


async def _create_agent(email: str, name: str):
    settings = IdentitySettings()
    db = Database(settings.database_url.get_secret_value(), pool_size=1)
    try:
        await apply_migrations(db.url, ("platform", PLATFORM_MIGRATIONS), ("identity", files("identity") / "migrations"))
        return await create_agent(db, settings, email, name)
    finally:
        await db.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="identity")
    commands = parser.add_subparsers(dest="command", required=True)
    importer = commands.add_parser("import-members", help="upsert members from a CSV file")
    importer.add_argument("file", type=Path)
    agent = commands.add_parser("create-agent", help="create a back-office agent (or send a new link)")
    agent.add_argument("--email", required=True)
    agent.add_argument("--name", required=True)
    args = parser.parse_args(argv)
    if args.command == "create-agent":
        try:
            link = asyncio.run(_create_agent(args.email, args.name))
        except (OSError, ValueError) as exc:
            print(f"create-agent failed: {exc}", file=sys.stderr)
            return 1
        # The link is the one secret this command makes: printed once, to whoever ran it, for
        # the agent alone (never logged).
        print(f"agent {link.agent_id} {'created' if link.created else 'exists: new link issued, older ones revoked'}")
        print(f"password-setting link (single use, until {link.expires_at:%Y-%m-%d %H:%M} UTC):")
        print(link.url)
        return 0
    if args.command == "import-members":
        try:
            count = asyncio.run(_import(args.file))
        except (OSError, ValueError) as exc:
            print(f"import failed: {exc}", file=sys.stderr)
            return 1
        print(f"{count} member(s) added or changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
