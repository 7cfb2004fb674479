"""The directory of health professionals at full size, on the real system (started here on
bench ports): the import of a 550,000-row synthetic file in the real format, then searches at a
steady 100 requests/s (open loop) for a mix of shapes — a name, a specialty in a city, a
postcode and a sector, a name with a typo, near a postcode — through the gateway and straight
to claims (what the gateway adds), with each shape's p50/p99, the errors, the CPU per request of
each process (gateway, claims, PostgreSQL: a ratio that holds on a busy machine, where the
latencies do not), and the EXPLAIN (ANALYZE, BUFFERS) of each shape's statements, as the
service runs them (prepared: the generic plan PostgreSQL switches to after five executions)
and with the values inlined (the custom plan).

Run: `make bench` (or `.venv/bin/python -m bench.providers --rows 550000 --seconds 30`).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import random
import re
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import aiohttp
import asyncpg

from bench.common import Sample, cpu_busy_seconds, open_loop
from bench.cpu_split import cpu_seconds_by_process
from claims.domain import directory
from claims.service_layer import providers_search
from claims.service_layer.providers_import import load_communes
from tests.integration.system import ROOT, System

PROVIDERS = "/api/v1/claims/providers"
WARM_UP = 300
IDLE_S = 3.0


def demo_file(rows: int) -> Path:
    """The synthetic file, written once per size (var/ keeps it between runs)."""
    path = ROOT / "var" / f"bench-liste-ps-{rows}.csv"
    if not path.exists():
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "claims.entrypoints.cli", "demo-providers", str(path), "--rows", str(rows)],
                       cwd=ROOT, check=True, capture_output=True)
        print(f"demo file: {rows} rows written in {time.perf_counter() - t0:.1f} s ({path.stat().st_size / 1e6:.0f} MB)")
    return path


def typo(word: str, rng: random.Random) -> str:
    """One letter changed, dropped or doubled, as a hurried member types."""
    i = rng.randrange(1, len(word) - 1) if len(word) > 3 else 1
    kind = rng.choice(("swap", "drop", "double", "accent"))
    if kind == "swap":
        return word[:i] + rng.choice("aeioutdnrs") + word[i + 1:]
    if kind == "drop":
        return word[:i] + word[i + 1:]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    return word.replace("e", "é", 1) if "e" in word else word[:i] + word[i + 1:]


SHAPES = ("name", "specialty + city", "postcode + sector", "typo", "near + specialty")


def query_mix(path: Path, rng: random.Random, per_shape: int = 300) -> dict[str, list[dict]]:
    """Queries drawn from the file itself: names, places and sectors that are there."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    picks = rng.sample(rows, per_shape * 3)
    people = [r for r in picks if r["ps_activite_nom"]]
    placed = {c.postcode for c in load_communes() if c.latitude is not None}
    shapes = {
        "name": [{"q": r["ps_activite_nom"]} for r in people[:per_shape]],
        "specialty + city": [{"specialty": r["specialite_code"], "city": r["coordonnees_ville"]} for r in picks[:per_shape]],
        "postcode + sector": [{"postcode": r["coordonnees_code_postal"], "sector": r["secteur_conventionnel_code"] or "1"}
                              for r in picks[per_shape:2 * per_shape]],
        "typo": [{"q": typo(directory.fold(r["ps_activite_nom"]).split()[0], rng)} for r in people[per_shape:2 * per_shape]
                 if len(directory.fold(r["ps_activite_nom"]).split()[0]) >= 4],
        "near + specialty": [{"near": r["coordonnees_code_postal"], "specialty": r["specialite_code"]}
                             for r in picks[2 * per_shape:] if r["coordonnees_code_postal"] in placed],
    }
    return shapes


class Spy:
    """Records the statements a search runs, with the SET LOCAL in force (to EXPLAIN them)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.settings: list[str] = []
        self.statements: list[tuple[str, tuple, tuple[str, ...]]] = []

    def transaction(self, **kwargs):
        return self.conn.transaction(**kwargs)

    async def execute(self, sql: str, *args):
        if sql.startswith("SET LOCAL"):
            self.settings.append(sql)
        return await self.conn.execute(sql, *args)

    async def fetch(self, sql: str, *args):
        self.statements.append((sql, args, tuple(self.settings)))
        rows = await self.conn.fetch(sql, *args)
        if not self.conn.is_in_transaction():
            self.settings = []
        return rows

    async def fetchrow(self, sql: str, *args):
        if sql.startswith("SELECT set_config("):  # a setting that comes with a value (the generation)
            self.settings.append(sql)
        else:
            self.statements.append((sql, args, tuple(self.settings)))
        return await self.conn.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args):
        return await self.conn.fetchval(sql, *args)


def _params(params: dict) -> providers_search.Search:
    return providers_search.Search(
        q=params.get("q"), specialty=params.get("specialty"), postcode=params.get("postcode"), city=params.get("city"),
        department=params.get("department"), sector=int(params["sector"]) if "sector" in params else None,
        near=params.get("near"),
    )


PLAN_LINE = re.compile(r"Scan|Limit|Nested Loop|Sort|Execution Time|Planning Time|Index Cond|Order By|Buffers: shared|Heap Fetches")


def _literal(value) -> str:
    """A parameter as an SQL literal, for EXECUTE (which takes no bound parameters)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, asyncpg.Point):
        return f"'({value.x!r},{value.y!r})'"
    if isinstance(value, (int, float, Decimal)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, (list, tuple)):
        items = ",".join('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in value)
        return "'{" + items.replace("'", "''") + "}'"
    return "'" + str(value).replace("'", "''") + "'"


async def _plan(conn: asyncpg.Connection, sql: str, args: tuple, settings: tuple[str, ...], generic: bool) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of one statement. Generic: what a prepared statement runs once
    PostgreSQL stops planning it for each call's values (the service's statements are prepared,
    and after five executions PostgreSQL may switch): PREPARE, then EXECUTE with
    plan_cache_mode forced. Custom: planned for these values."""
    async with conn.transaction():
        for setting in settings:
            await conn.execute(setting)
        if not generic:
            return [r[0] for r in await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *args)]
        await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        await conn.execute(f"PREPARE bench_generic AS {sql}")
        try:
            values = ", ".join(_literal(v) for v in args)
            return [r[0] for r in await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_generic({values})")]
        finally:
            await conn.execute("DEALLOCATE bench_generic")


async def explain(db_url: str, shapes: dict[str, list[dict]]) -> None:
    """Each shape's statements under EXPLAIN (ANALYZE, BUFFERS), with the generic plan and with
    the custom plan (see _plan), and whether a table was read whole."""
    conn = await asyncpg.connect(db_url.replace("+asyncpg", ""))
    try:
        for shape, queries in shapes.items():
            spy = Spy(conn)
            await providers_search.search(spy, _params(queries[0]), None, 20)
            print(f"\nEXPLAIN {shape}  {queries[0]}")
            for number, (sql, args, settings) in enumerate(spy.statements, 1):
                for generic in (True, False):
                    plan = await _plan(conn, sql, args, settings, generic)
                    label = "generic plan" if generic else "custom plan"
                    print(f"  statement {number}/{len(spy.statements)}, {label}" + (f" ({'; '.join(settings)})" if settings else ""))
                    for line in plan:
                        if PLAN_LINE.search(line):
                            print("   " + line.rstrip()[:160])
                    full_scans = [line for line in plan if re.search(r"Seq Scan on (providers|provider_names)", line)]
                    print(f"   -> {'SEQUENTIAL SCAN' if full_scans else 'index use only, no sequential scan'}")
    finally:
        await conn.close()


async def search_load(label: str, url: str, shapes: dict[str, list[dict]], rate: float, seconds: float, system) -> None:
    """The mix at `rate` (open loop) against `url`: p50/p99 per shape and overall, statuses, and
    the CPU per request of each of the system's processes (and the machine's busy share)."""
    order = [(shape, v[i]) for i in range(max(len(v) for v in shapes.values())) for shape, v in shapes.items() if i < len(v)]
    count = int(rate * seconds)
    # Each query once: the warm-up's are others than the run's (nothing is timed twice, so what
    # claims remembers between queries is only what different queries share, e.g. a surname).
    warm_up, order = order[count:count + WARM_UP], order[:count]
    per_shape: dict[str, Sample] = {shape: Sample() for shape in shapes}
    statuses: dict[int, int] = {}
    connector = aiohttp.TCPConnector(limit=256, keepalive_timeout=3)
    async with aiohttp.ClientSession(url, connector=connector) as http:

        async def get(params: dict) -> tuple[bool, int]:
            async with http.get(PROVIDERS, params={k: str(v) for k, v in params.items()}) as r:
                body = await r.json()
                return r.status == 200 and isinstance(body.get("items"), list), r.status

        for shape, q in warm_up:  # warm-up: connections, prepared statements, PostgreSQL's buffers
            await get(q)

        async def call(i: int) -> bool:
            shape, params = order[i % len(order)]
            t0 = time.perf_counter()
            try:
                ok, status = await get(params)
            except (aiohttp.ClientError, ValueError):
                ok, status = False, 0
            statuses[status] = statuses.get(status, 0) + 1
            sample = per_shape[shape]
            if ok:
                sample.latencies_ms.append((time.perf_counter() - t0) * 1000)
            else:
                sample.errors += 1
            return ok

        # What each process spends with no search at all (consumers, relays, the broker), over a
        # few idle seconds: taken off its CPU during the run, so what remains is the searches'.
        idle_before = cpu_seconds_by_process(system)
        await asyncio.sleep(IDLE_S)
        idle = {n: (v - idle_before.get(n, 0.0)) / IDLE_S for n, v in cpu_seconds_by_process(system).items()}
        cpu_before, busy_before = cpu_seconds_by_process(system), cpu_busy_seconds()
        total = await open_loop(call, rate=rate, count=count)
        cpu_after, busy = cpu_seconds_by_process(system), cpu_busy_seconds() - busy_before
    print(f"{label}:")
    for shape, sample in per_shape.items():
        sample.elapsed_s = total.elapsed_s
        print("  " + sample.line(f"search {shape} (mix at {rate:.0f}/s)"))
    goal = "   (goal p99 <= 20 ms, 0 errors)" if "gateway" in label else ""
    print("  " + total.line(f"search, all shapes at {rate:.0f}/s (open loop)") + f"   statuses {statuses}{goal}")
    requests = max(1, len(total.latencies_ms) + total.errors)
    per = {n: max(0.0, cpu_after[n] - cpu_before.get(n, 0.0) - idle.get(n, 0.0) * total.elapsed_s) / requests * 1000
           for n in cpu_after}
    busiest = sorted((n for n in per if per[n] >= 0.05), key=lambda n: -per[n])
    cores = os.cpu_count() or 1
    print("  CPU per request (less each process's idle rate): " + ", ".join(f"{n.split('.')[0]} {per[n]:.2f} ms" for n in busiest)
          + f"; the machine {busy / total.elapsed_s / cores * 100:.0f} % busy (anyone), load {os.getloadavg()[0]:.1f}")


async def run(rows: int, rate: float, seconds: float) -> None:
    path = demo_file(rows)
    system = System.start("bench-providers", extra_env={"GATEWAY_RATE_LIMITS_ENABLED": "false", "LOG_LEVEL": "WARNING"})
    try:
        print(f"system up ({system.mode}); {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}"
              " (what else runs on the machine moves these figures)")
        env = {**os.environ, "CLAIMS_DATABASE_URL": system.db_url("claims")}
        t0 = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "claims.entrypoints.cli", "import-providers", str(path)],
                                env=env, cwd=ROOT, capture_output=True, text=True)
        elapsed = time.perf_counter() - t0
        if result.returncode != 0:
            raise RuntimeError(result.stderr)
        print(f"{'import of ' + f'{rows:,}' + ' rows (CLI, whole process)':<46} {elapsed:8.1f} s  {rows / elapsed:,.0f} rows/s"
              "   (goal: well under 60 s)")
        print("   " + result.stdout.strip())
        print("   " + result.stderr.strip().splitlines()[-1])
        # Enough queries of each shape that no query comes twice: the gateway's run, then claims
        # direct with others.
        per_run = int(rate * seconds) + WARM_UP
        shapes = query_mix(path, random.Random(2026), per_shape=2 * per_run // len(SHAPES) + 50)
        halves = [{k: v[i::2] for k, v in shapes.items()} for i in (0, 1)]
        print(f"load average before the searches: {os.getloadavg()[0]:.1f}")
        claims_url = f"http://127.0.0.1:{system.env['CLAIMS_PORT']}"
        # Back to back, so that both see the same machine: through the gateway, then straight to
        # claims (the limit the gateway adds to).
        await search_load("through the gateway", system.gateway_url, halves[0], rate, seconds, system)
        await search_load("claims direct (the limit)", claims_url, halves[1], rate, seconds, system)
        print(f"load average after the searches: {os.getloadavg()[0]:.1f}")
        await explain(system.db_url("claims"), shapes)
    finally:
        system.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=550_000)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.rate, args.seconds))


if __name__ == "__main__":
    main()
