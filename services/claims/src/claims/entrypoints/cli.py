"""claims's command line.

    claims import-reimbursements FILE.csv     the Sécu (NOEMIE) feed: valued, settled, announced
    claims demo-reimbursements OUT.csv [...]  writes a realistic feed for the demo members (and N synthetic ones)
    claims check-plans                        loads and validates the plan files
    claims import-providers FILE.csv          the directory of health professionals (annuaire santé file), replaced whole
    claims demo-providers OUT.csv [--rows N]  writes a synthetic directory file in the real format
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from importlib.resources import files
from pathlib import Path

from claims.config import ClaimsSettings
from claims.domain.plans import PlanCatalog, PlanFileError
from claims.service_layer import noemie
from shared.contracts import topics
from shared.platform.backpressure import ConsumerPacing
from shared.platform.db import PLATFORM_MIGRATIONS, Database, apply_migrations


async def _import(path: Path) -> noemie.ImportReport:
    settings = ClaimsSettings()
    catalog = PlanCatalog.load()
    db = Database(settings.database_url.get_secret_value(), pool_size=1)
    try:
        await apply_migrations(db.url, ("platform", PLATFORM_MIGRATIONS), ("claims", files("claims") / "migrations"))
        # The running service's outbox relay publishes the events (woken by NOTIFY).
        async with ConsumerPacing(settings, topics.CLAIMS_CLAIMS, max_lag=settings.import_max_lag) as consumers:
            paced = 0.0

            async def pace() -> None:
                nonlocal paced
                started = time.monotonic()
                await noemie.outbox_room(db, settings.import_max_lag)
                await consumers.wait_for_room()
                paced += time.monotonic() - started

            report = await noemie.import_file(db, catalog, path, pace=pace if settings.import_max_lag > 0 else None)
            report.paced_s = paced
            return report
    finally:
        await db.dispose()


async def _import_providers(path: Path):
    import asyncpg

    from claims.service_layer import providers_import
    from shared.platform.db import asyncpg_dsn

    settings = ClaimsSettings()
    url = settings.database_url.get_secret_value()
    await apply_migrations(url, ("platform", PLATFORM_MIGRATIONS), ("claims", files("claims") / "migrations"))
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return await providers_import.import_file(conn, path)
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="claims")
    commands = parser.add_subparsers(dest="command", required=True)
    importer = commands.add_parser("import-reimbursements", help="import a NOEMIE CSV file")
    importer.add_argument("file", type=Path)
    demo = commands.add_parser("demo-reimbursements", help="write a demo NOEMIE CSV file")
    demo.add_argument("out", type=Path)
    demo.add_argument("--members", type=Path, default=Path("deploy/local/demo-members.csv"))
    demo.add_argument("--synthetic-members", type=Path, help="also write N synthetic members to this CSV (for identity)")
    demo.add_argument("--synthetic", type=int, default=0, help="how many synthetic members")
    demo.add_argument("--lines", type=int, default=0, help="total lines (default: about 5 per member)")
    demo.add_argument("--heavy", type=int, default=0, help="lines for the first member alone (a long history)")
    demo.add_argument("--seed", type=int, default=2026)
    commands.add_parser("check-plans", help="validate the plan files")
    providers = commands.add_parser("import-providers", help="replace the directory with an annuaire santé file (liste-ps-*.csv)")
    providers.add_argument("file", type=Path)
    demo_ps = commands.add_parser("demo-providers", help="write a synthetic annuaire santé file")
    demo_ps.add_argument("out", type=Path)
    demo_ps.add_argument("--rows", type=int, default=5000)
    demo_ps.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    try:
        if args.command == "import-reimbursements":
            started = time.perf_counter()
            report = asyncio.run(_import(args.file))
            for problem in report.problems[:200]:
                print(problem, file=sys.stderr)
            if len(report.problems) > 200:
                print(f"… {len(report.problems) - 200} more", file=sys.stderr)
            elapsed = time.perf_counter() - started
            print(f"{report.summary()} in {elapsed:.1f} s")
        elif args.command == "import-providers":
            from claims.service_layer.providers_import import print_report

            started = time.perf_counter()
            report = asyncio.run(_import_providers(args.file))
            print_report(report, time.perf_counter() - started)
        elif args.command == "demo-providers":
            from claims.entrypoints import demo_providers

            count = demo_providers.write(args.out, args.rows, args.seed)
            print(f"{count} row(s) written to {args.out}")
        elif args.command == "demo-reimbursements":
            from claims.entrypoints import demo_feed

            count = demo_feed.write(args)
            print(f"{count} line(s) written to {args.out}")
        else:
            catalog = PlanCatalog.load()
            print(f"{len(catalog.plans)} plan version(s) valid: {', '.join(f'{c}-{y}' for c, y in sorted(catalog.plans))}")
    except PlanFileError as exc:
        print(f"plan file refused: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"{args.command} failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
