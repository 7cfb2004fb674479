"""Import of the directory file (annuaire santé, liste-ps-YYYYMMDD.csv) as a whole new directory.

One transaction, under an advisory lock (one import at a time):
1. the file is parsed row by row (malformed rows are counted with their line numbers and left
   out) and COPYed into a fresh table `providers_next`;
2. the indexes of `providers` (as the migrations made them) are built on it, after the load;
3. the counts are taken against the directory being served: added, changed, removed;
4. `providers` is renamed away and `providers_next` renamed to `providers`, the old one dropped.
Searches read the old directory until the commit and the new one after: never half of one. The
rename waits for the searches running at that moment (milliseconds) and the searches arriving
meanwhile wait for it. If anything fails, everything rolls back and the old directory stays.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import itertools
import math
import time
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path

import asyncpg

from claims.domain import directory
from claims.domain.directory import MalformedRow, ProviderRow

IMPORT_LOCK = 727276
COS_LAT = math.cos(math.radians(46.5))  # the `geo` plane: (longitude × cos 46.5°, latitude)
PROVIDER_COLUMNS = (
    "id", "last_name", "first_name", "civility", "company", "display_name", "name_norm", "name_key", "specialty_code",
    "specialty_label", "ps_type", "street", "postcode", "city", "city_norm", "department", "phone", "sector",
    "optam", "optam_code", "optam_label", "practice_code", "practice_label", "commune_code", "row_hash",
)
COMMUNE_COLUMNS = ("insee_code", "postcode", "name", "name_norm", "department", "population")
BATCH = 20_000  # rows per COPY
MAX_PROBLEMS = 1000  # line numbers kept for the report; the count goes on past it


@dataclass
class ImportReport:
    rows: int = 0  # rows in the new directory
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    duplicates: int = 0  # the same practitioner at the same site twice in the file: kept once
    malformed: int = 0
    problems: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase

    def malformed_row(self, line: int, reason: str) -> None:
        self.malformed += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"ligne {line} : {reason}")

    def summary(self) -> str:
        return (f"{self.rows} rows: added {self.added}, changed {self.changed}, removed {self.removed},"
                f" unchanged {self.unchanged}, duplicates {self.duplicates}, malformed {self.malformed}")


@dataclass(frozen=True, slots=True)
class Commune:
    insee_code: str
    name: str
    department: str
    postcode: str
    population: int
    latitude: float | None
    longitude: float | None


def geo_point(latitude: float | None, longitude: float | None) -> asyncpg.Point | None:
    if latitude is None or longitude is None:
        return None
    return asyncpg.Point(longitude * COS_LAT, latitude)


COMMUNES_CSV = files("claims") / "directory_data" / "communes.csv"


def communes_checksum() -> str:
    return hashlib.blake2b(COMMUNES_CSV.read_bytes(), digest_size=8).hexdigest()


def load_communes() -> list[Commune]:
    out = []
    with COMMUNES_CSV.open(encoding="utf-8", newline="") as handle:
        for r in csv.DictReader(handle):
            out.append(Commune(r["insee_code"], r["name"], r["department"], r["postcode"], int(r["population"] or 0),
                               float(r["latitude"]) if r["latitude"] else None,
                               float(r["longitude"]) if r["longitude"] else None))
    return out


class CommuneIndex:
    """Where a row's commune is: by postcode and city name, else the postcode's most populous."""

    def __init__(self, communes: list[Commune]) -> None:
        self.exact: dict[tuple[str, str], Commune] = {}
        self.by_postcode: dict[str, Commune] = {}
        for c in sorted(communes, key=lambda c: -c.population):
            self.exact.setdefault((c.postcode, directory.fold(c.name)), c)
            self.by_postcode.setdefault(c.postcode, c)

    def find(self, postcode: str, city_norm: str) -> Commune | None:
        return self.exact.get((postcode, city_norm)) or self.by_postcode.get(postcode)


def read_file(path: Path, report: ImportReport) -> Iterator[ProviderRow]:
    """The rows of a directory file, by column name. A field may be quoted and hold `;` or line
    breaks; `line` is the file line the row starts on."""
    with path.open(newline="", encoding="utf-8-sig", errors="strict") as handle:
        reader = csv.reader(handle, delimiter=";", quotechar='"', strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise ValueError(f"{path}: fichier vide") from None
        if len(header) == 1 and "," in header[0]:
            raise ValueError(f"{path}: séparateur attendu « ; » (le fichier semble séparé par des virgules)")
        index = directory.header_index(header)
        width = len(header)
        line = reader.line_num + 1
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                report.malformed_row(line, f"ligne illisible ({exc})")
                line = reader.line_num + 1
                continue
            start, line = line, reader.line_num + 1
            if not values or values == [""]:
                continue
            if len(values) != width:
                report.malformed_row(start, f"{len(values)} champs au lieu de {width}")
                continue
            try:
                yield directory.parse_row(values, index, start)
            except MalformedRow as exc:
                report.malformed_row(start, str(exc))


def records(rows: Iterator[ProviderRow], communes: CommuneIndex, report: ImportReport) -> Iterator[tuple]:
    seen: set[int] = set()
    for row in rows:
        rid = directory.row_id(row.identity)
        if rid in seen:
            report.duplicates += 1
            continue
        seen.add(rid)
        city_norm = directory.fold(row.city)
        commune = communes.find(row.postcode, city_norm)
        yield (
            rid, row.last_name, row.first_name, row.civility, row.company, row.display_name, row.name_norm, row.name_key,
            row.specialty_code, row.specialty_label, row.ps_type, row.street, row.postcode, row.city, city_norm,
            commune.department if commune else directory.department_of(row.postcode), row.phone, row.sector,
            row.optam, row.optam_code, row.optam_label, row.practice_code, row.practice_label,
            commune.insee_code if commune else None, directory.row_hash(row),
        )


async def _sync_communes(conn: asyncpg.Connection, communes: list[Commune], checksum: str) -> None:
    """The commune list, reloaded when the one shipped differs from the one loaded."""
    if await conn.fetchval("SELECT communes FROM directory_state WHERE id = 1") == checksum:
        return
    await conn.execute("DELETE FROM communes")
    await conn.execute("DELETE FROM commune_places")
    await conn.copy_records_to_table("communes", columns=list(COMMUNE_COLUMNS), records=[
        (c.insee_code, c.postcode, c.name, directory.fold(c.name), c.department, c.population) for c in communes
    ])
    places = {c.insee_code: c for c in communes if c.latitude is not None and c.longitude is not None}
    await conn.copy_records_to_table("commune_places", columns=["insee_code", "latitude", "longitude", "geo"], records=[
        (c.insee_code, c.latitude, c.longitude, geo_point(c.latitude, c.longitude)) for c in places.values()
    ])


_INDEX = re.compile(r"^CREATE (UNIQUE )?INDEX (\S+) ON (?:public\.)?(\S+) (.*)$")
SWAPPED = ("providers", "provider_names", "provider_specialties")  # the tables an import replaces


async def _index_definitions(conn: asyncpg.Connection, table: str) -> list[tuple[str, bool, str]]:
    """(name without its generation suffix, unique, what follows `ON <table>`) of each index
    the migrations gave `table` (and each import copied since)."""
    out = []
    for r in await conn.fetch(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1", table
    ):
        match = _INDEX.match(r["indexdef"])
        if match is None or match[3] != table:
            raise RuntimeError(f"unexpected index on {table}: {r['indexdef']}")
        out.append((re.sub(r"_g\d+$", "", match[2]), bool(match[1]), match[4]))
    return out


async def _build_indexes(conn: asyncpg.Connection, table: str, generation: int, report: ImportReport) -> None:
    """The indexes of `table` built on `table`_next, named for the generation."""
    for name, unique, rest in await _index_definitions(conn, table):
        clock = time.perf_counter()
        new_name = f"{name}_g{generation}"
        await conn.execute(f"CREATE {'UNIQUE ' if unique else ''}INDEX {new_name} ON {table}_next {rest}")
        if name == f"{table}_pkey":
            await conn.execute(f"ALTER TABLE {table}_next ADD CONSTRAINT {new_name} PRIMARY KEY USING INDEX {new_name}")
        report.timings[f"index {name}"] = time.perf_counter() - clock


async def import_file(conn: asyncpg.Connection, path: Path) -> ImportReport:
    """Replace the directory with the file's content (see the module's docstring)."""
    report = ImportReport()
    communes = load_communes()
    rows = records(read_file(path, report), CommuneIndex(communes), report)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", IMPORT_LOCK)
        checksum = communes_checksum()
        await _sync_communes(conn, communes, checksum)
        generation = (await conn.fetchval("SELECT generation FROM directory_state WHERE id = 1") or 0) + 1
        for table in SWAPPED:
            # Same columns, types, defaults and checks; no index yet (built after the load).
            await conn.execute(f"DROP TABLE IF EXISTS {table}_next")
            await conn.execute(f"CREATE TABLE {table}_next (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        clock = time.perf_counter()
        # The file is parsed in a thread, one batch ahead of the COPY of the previous batch
        # (which the server does on another core).
        copying: asyncio.Future | None = None
        while True:
            batch = await asyncio.to_thread(lambda: list(itertools.islice(rows, BATCH)))
            if copying is not None:
                await copying
            if not batch:
                break
            copying = asyncio.ensure_future(
                conn.copy_records_to_table("providers_next", columns=list(PROVIDER_COLUMNS), records=batch))
        await conn.execute("INSERT INTO provider_names_next (name_key, rows)"
                           " SELECT name_key, count(*) FROM providers_next GROUP BY name_key")
        await conn.execute("INSERT INTO provider_specialties_next (specialty_code, label, rows)"
                           " SELECT specialty_code, min(specialty_label), count(*) FROM providers_next GROUP BY 1")
        report.timings["parse_and_copy"] = time.perf_counter() - clock
        await conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for table in SWAPPED:
            await _build_indexes(conn, table, generation, report)
        clock = time.perf_counter()
        for table in SWAPPED:
            await conn.execute(f"ANALYZE {table}_next")
        counts = await conn.fetchrow(
            "SELECT count(n.id) AS rows, count(*) FILTER (WHERE o.id IS NULL) AS added,"
            " count(*) FILTER (WHERE n.id IS NULL) AS removed,"
            " count(*) FILTER (WHERE o.row_hash <> n.row_hash) AS changed"
            " FROM providers o FULL JOIN providers_next n ON n.id = o.id"
        )
        report.rows, report.added, report.removed, report.changed = (
            counts["rows"], counts["added"], counts["removed"], counts["changed"])
        report.unchanged = report.rows - report.added - report.changed
        report.timings["analyze_and_counts"] = time.perf_counter() - clock
        clock = time.perf_counter()
        # The swap: the searches running now finish first; those arriving wait (milliseconds).
        await conn.execute("SET LOCAL lock_timeout = '30s'")
        for table in SWAPPED:
            await conn.execute(f"ALTER TABLE {table} RENAME TO {table}_old")
            await conn.execute(f"ALTER TABLE {table}_next RENAME TO {table}")
            await conn.execute(f"DROP TABLE {table}_old")
        await conn.execute(
            "INSERT INTO directory_state (id, generation, source_file, imported_at, rows, communes)"
            " VALUES (1, $1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE"
            " SET generation = $1, source_file = $2, imported_at = $3, rows = $4, communes = $5",
            generation, path.name, datetime.now(UTC), report.rows, checksum,
        )
    report.timings["swap_and_commit"] = time.perf_counter() - clock
    clock = time.perf_counter()
    # Outside the transaction (VACUUM cannot run in one): the new tables' visibility map set and
    # their rows' hint bits written now, by the import, so that the first searches get index-only
    # scans and read clean pages, and autovacuum does not do it during them.
    await conn.execute(f"VACUUM {', '.join(SWAPPED)}")
    report.timings["vacuum"] = time.perf_counter() - clock
    return report


def print_report(report: ImportReport, elapsed: float) -> None:
    for problem in report.problems[:200]:
        print(problem, file=sys.stderr)
    if report.malformed > 200:
        print(f"… {report.malformed - 200} more malformed rows", file=sys.stderr)
    if report.timings:
        indexes = sum(v for k, v in report.timings.items() if k.startswith("index "))
        phases = {k: v for k, v in report.timings.items() if not k.startswith("index ")} | {"indexes": indexes}
        print("phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()), file=sys.stderr)
    rate = report.rows / elapsed if elapsed else 0
    print(f"{report.summary()} in {elapsed:.1f} s ({rate:,.0f} rows/s)")
