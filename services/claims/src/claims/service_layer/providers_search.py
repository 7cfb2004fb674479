"""Searching the directory of health professionals (public: no member, no token).

Three shapes, each an index walk that stops at the page's end, never a sort of every match:
- by name (q): the names like q are found in `provider_names` (the directory's distinct
  surnames and raisons sociales, a few tens of thousands, trigram index), at most 50 per word
  of q, then each one's rows through `providers_key` in (name_norm, id) order. Rows rank by how
  well their name matches (a word of q and the whole of it), then alphabetically. The other
  words of q must begin a word of the row's name ("dupont marie" → Dupont Marie, Dupont
  Marie-Claire).
- near a postcode: the nearest communes first (GiST KNN on commune_places, at most
  NEAR_COMMUNES of them), each one's rows in id order (providers_commune[_specialty]).
- otherwise: the filters' index in (name_norm, id) order.
Filters (specialty, postcode, city, department, sector, optam) apply to all three.

Pages are cursors: the last row's sort key and a fingerprint of the query, so a cursor given
with another query is refused (422), as is one that was tampered with.

The names like a word are the costly part of a name search (the trigram index hands over a
thousand candidate names for "bernard" or "saint", and each one's strict word similarity is
computed: 5-30 ms), and they depend on nothing but the word and the directory loaded. They are
remembered per word (`NameMatches`) for the generation of the directory they were read from;
each search reads the generation served now in a statement it makes anyway, so an import is seen
by the next search, as before.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import sys
from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg

from claims.domain import directory
from claims.service_layer import errors
from shared.platform.inputs import storable

MAX_WORDS = 5
NAMES_PER_WORD = 50
NEAR_COMMUNES = 3000
NAME_MATCHES_WORDS = 4096  # ~15 MB: 50 (name, score) pairs per word, names and scores shared


@dataclass(frozen=True)
class Search:
    q: str | None = None
    specialty: str | None = None
    postcode: str | None = None
    city: str | None = None
    department: str | None = None
    sector: int | None = None
    optam: bool | None = None
    near: str | None = None


def _invalid(field: str, code: str, message: str):
    return errors.invalid(field, code, message)


def fingerprint(s: Search, specialty_code: str | None, words: list[str]) -> str:
    key = json.dumps([words, specialty_code, s.postcode, s.city and directory.fold(s.city), s.department,
                      s.sector, s.optam, s.near])
    return hashlib.blake2b(key.encode(), digest_size=6).hexdigest()


def encode_cursor(mode: str, print_: str, key: list[Any]) -> str:
    raw = json.dumps({"m": mode, "f": print_, "k": key}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, mode: str, print_: str, types: tuple[type, ...]) -> list[Any]:
    bad = _invalid("cursor", "invalid_cursor", "Ce curseur de pagination n'est pas valide.")
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        raise bad from None
    if not isinstance(data, dict) or not isinstance(data.get("k"), list):
        raise bad
    if data.get("m") != mode or data.get("f") != print_:
        raise _invalid("cursor", "cursor_mismatch",
                       "Ce curseur appartient à une autre recherche : relancez la recherche depuis la première page.")
    key = data["k"]
    if len(key) != len(types):
        raise bad
    out = []
    for value, kind in zip(key, types):
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise bad
        if kind is int and not 0 <= value < 2**63:
            raise bad
        if kind is float and not math.isfinite(value):
            raise bad
        if kind is str and (len(value) > 300 or not storable(value)):
            raise bad
        out.append(value)
    return out


class _Where:
    """SQL conditions on providers `p` with their numbered parameters."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.args: list[Any] = []

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def add(self, sql: str) -> None:
        self.parts.append(sql)

    def sql(self) -> str:
        return " AND ".join(self.parts) if self.parts else "TRUE"


def _filters(w: _Where, s: Search, specialty_code: str | None) -> None:
    if specialty_code:
        w.add(f"p.specialty_code = {w.arg(specialty_code)}")
    if s.postcode:
        w.add(f"p.postcode = {w.arg(s.postcode)}")
    if s.city:
        w.add(f"p.city_norm = {w.arg(directory.fold(s.city))}")
    if s.department:
        w.add(f"p.department = {w.arg(s.department.upper())}")
    if s.sector is not None:
        w.add(f"p.sector = {w.arg(s.sector)}")
    if s.optam is not None:
        w.add(f"p.optam = {w.arg(s.optam)}")


_FIELDS = (
    "p.id, p.display_name, p.civility, p.last_name, p.first_name, p.company, p.specialty_code, p.specialty_label,"
    " p.ps_type, p.street, p.postcode, p.city, p.department, p.phone, p.sector, p.optam, p.optam_label,"
    " p.practice_label, p.name_norm"
)


def provider_out(r: asyncpg.Record, distance_km: float | None = None) -> dict[str, Any]:
    conventioned = r["ps_type"] != directory.NON_CONVENTIONED_TYPE
    out = {
        "id": str(r["id"]),
        "name": r["display_name"],
        "civility": r["civility"] or None,
        "last_name": r["last_name"] or None,
        "first_name": r["first_name"] or None,
        "organisation": r["company"] or None,
        "specialty": {"code": r["specialty_code"], "label": r["specialty_label"]},
        "address": {"street": r["street"], "postcode": r["postcode"], "city": r["city"], "department": r["department"]},
        "phone": r["phone"] or None,
        "conventioned": conventioned,
        "sector": {"code": r["sector"] if conventioned else None, "label": directory.sector_words(r["sector"], conventioned)},
        "optam": {"member": r["optam"], "label": directory.optam_words(r["optam"], r["sector"])},
        "practice": r["practice_label"] or None,
    }
    if distance_km is not None:
        out["distance_km"] = round(distance_km, 1)
    return out


def _words(q: str) -> list[str]:
    folded = directory.fold(q)
    words = folded.split()[:MAX_WORDS]
    if not words or len("".join(words)) < 2:
        raise _invalid("q", "q_unusable", "Saisissez au moins deux lettres ou chiffres du nom recherché.")
    return words


async def _specialty(conn: asyncpg.Connection, value: str) -> str:
    code = directory.specialty_code(value)
    if code is None and value.strip().isdigit():
        # A code the catalogue lacks but the loaded directory has (a newer nomenclature).
        code = await conn.fetchval("SELECT specialty_code FROM providers WHERE specialty_code = $1 LIMIT 1",
                                   value.strip().zfill(2))
    if code is None:
        raise _invalid("specialty", "unknown_specialty",
                       "Spécialité inconnue : donnez un code ou un libellé de /api/v1/claims/specialties.")
    return code


async def _origin(conn: asyncpg.Connection, postcode: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT cp.insee_code, cp.latitude, cp.longitude, cp.geo FROM communes c"
        " JOIN commune_places cp USING (insee_code) WHERE c.postcode = $1 ORDER BY c.population DESC LIMIT 1",
        postcode,
    )
    if row is None:
        raise _invalid("near", "unknown_postcode", "Ce code postal n'est pas connu de l'annuaire.")
    return row


def _candidates(words: list[str]) -> list[tuple[str, str, str]]:
    """(word looked up as a name, regular expression the row's name must also match, a LIKE
    pattern every name matching that expression matches) for q."""
    # Words of one or two letters narrow (as the beginning of a word of the name) but are not
    # looked up as names themselves, unless q has nothing longer.
    long_words = [word for word in words if len(word) >= 3] or words
    candidates = []
    for word in long_words:
        others = [x for x in words if x != word]
        # The longest other word somewhere in the name: a substring test that rules out nearly
        # every row of a common name (Laurent: 4,771) before the costlier expression (45 -> 6 ms).
        hint = f"%{max(others, key=len)}%" if others else "%"
        candidates.append((word, _begins_words(others), hint))
    if len(words) > 1:
        candidates.append((" ".join(words), "", "%"))
    return candidates


# The NAMES_PER_WORD names most like each word (trigram index on provider_names: a bitmap scan),
# with the generation of the directory they come from (read in the same statement, hence the
# same snapshot).
_NAMES_LIKE = (
    "SELECT c.word, n.name_key, n.score, (SELECT generation FROM directory_state WHERE id = 1) AS generation"
    " FROM unnest($1::text[]) AS c(word)"
    " CROSS JOIN LATERAL (SELECT name_key,"
    "   round((strict_word_similarity(c.word, name_key) + similarity(c.word, name_key))::numeric, 4) AS score"
    "   FROM provider_names WHERE c.word <<% name_key"
    f"   ORDER BY 2 DESC, name_key LIMIT {NAMES_PER_WORD}) n"
)
# The generation served now; and, for the name rows read next in this transaction, bitmap scans
# off (see _by_name). One round trip for both.
_GENERATION_NO_BITMAPS = (
    "SELECT set_config('enable_bitmapscan', 'off', true), (SELECT generation FROM directory_state WHERE id = 1)"
)

Matches = tuple[tuple[str, Decimal], ...]


class NameMatches:
    """The names like a word, remembered for the directory generation they were read from: past
    `size` words the least recently used goes; a new generation forgets them all. One per
    process (the service's app state); a search without one (tools, the bench's EXPLAIN)
    always asks PostgreSQL."""

    def __init__(self, size: int = NAME_MATCHES_WORDS) -> None:
        self.size = size
        self.generation: int | None = None
        self.hits = self.misses = 0
        self._words: OrderedDict[str, Matches] = OrderedDict()
        self._scores: dict[Decimal, Decimal] = {}  # one object per distinct score (4 decimals, 0-2)

    def get(self, word: str) -> Matches | None:
        found = self._words.get(word)
        if found is not None:
            self._words.move_to_end(word)
        return found

    def put(self, generation: int, word: str, matches: list[tuple[str, Decimal]]) -> None:
        if generation != self.generation:
            self.forget()
            self.generation = generation
        self._words[word] = tuple((sys.intern(name), self._scores.setdefault(score, score)) for name, score in matches)
        self._words.move_to_end(word)
        while len(self._words) > self.size:
            self._words.popitem(last=False)

    def forget(self) -> None:
        self._words.clear()
        self._scores.clear()
        self.generation = None

    def __len__(self) -> int:
        return len(self._words)


async def _names_like(conn, words: list[str], cache: NameMatches | None) -> tuple[dict[str, Matches], int | None]:
    """Each word's matches: those the cache holds, the others from one statement (and then
    remembered). Also the generation the remembered ones belong to, None when none was used:
    the caller checks it against the generation served."""
    out: dict[str, Matches] = {}
    remembered = None
    wanted = list(dict.fromkeys(words))
    if cache is not None:
        for word in wanted:
            found = cache.get(word)
            if found is not None:
                out[word] = found
        remembered = cache.generation if out else None
        cache.hits += len(out)
        cache.misses += len(wanted) - len(out)
    missing = [word for word in wanted if word not in out]
    if missing:
        rows = await conn.fetch(_NAMES_LIKE, missing)
        read: dict[str, list[tuple[str, Decimal]]] = {word: [] for word in missing}
        generation = None  # no row: nothing says which directory answered, nothing is kept
        for r in rows:
            read[r["word"]].append((r["name_key"], r["score"]))
            generation = r["generation"]
        for word, matches in read.items():
            out[word] = tuple(matches)
            if cache is not None and generation is not None:
                cache.put(generation, word, matches)
    return out, remembered


def matches_any(matches: dict[str, Matches]) -> bool:
    return any(matches.values())


def _best_names(candidates: list[tuple[str, str, str]], matches: dict[str, Matches]) -> list[tuple[str, Decimal, str, str]]:
    """(name_key, score, rest, hint) of each name found, with the best score any candidate gave
    it (and that candidate's rest and hint), in name order."""
    best: dict[str, tuple[str, Decimal, str]] = {}
    for word, rest, hint in candidates:
        for name_key, score in matches[word]:
            held = best.get(name_key)
            if held is None or score > held[1]:
                best[name_key] = (name_key, score, rest, hint)
    return [best[k] for k in sorted(best)]


def _begins_words(words: list[str]) -> str:
    """A regular expression true when each of `words` begins a word of the name, in any order
    (words are [a-z0-9]+ once folded: nothing to escape). Empty: nothing to match."""
    return "^" + "".join(f"(?=(.* )?{w})" for w in words) if words else ""


_REST_MATCH = "(m.rest = '' OR (p.name_norm LIKE m.hint AND p.name_norm ~ m.rest))"


async def search(conn: asyncpg.Connection, s: Search, cursor: str | None, limit: int,
                 names: NameMatches | None = None) -> dict[str, Any]:
    specialty_code = await _specialty(conn, s.specialty) if s.specialty else None
    if s.city is not None and not directory.fold(s.city):
        raise _invalid("city", "city_unusable", "Saisissez le nom d'une commune.")
    words = _words(s.q) if s.q is not None else []
    print_ = fingerprint(s, specialty_code, words)
    if s.near:
        return await _near(conn, s, specialty_code, words, print_, cursor, limit)
    if words:
        return await _by_name(conn, s, specialty_code, words, print_, cursor, limit, names)
    return await _browse(conn, s, specialty_code, print_, cursor, limit)


async def _browse(conn, s: Search, specialty_code, print_: str, cursor: str | None, limit: int) -> dict[str, Any]:
    w = _Where()
    _filters(w, s, specialty_code)
    if cursor:
        name, last_id = decode_cursor(cursor, "name", print_, (str, int))
        w.add(f"(p.name_norm, p.id) > ({w.arg(name)}, {w.arg(last_id)})")
    rows = await conn.fetch(
        f"SELECT {_FIELDS} FROM providers p WHERE {w.sql()} ORDER BY p.name_norm, p.id LIMIT {w.arg(limit + 1)}", *w.args
    )
    page = rows[:limit]
    more = len(rows) > limit
    return {
        "items": [provider_out(r) for r in page],
        "next_cursor": encode_cursor("name", print_, [page[-1]["name_norm"], page[-1]["id"]]) if more else None,
        "order": "name",
    }


async def _by_name(conn, s: Search, specialty_code, words, print_: str, cursor: str | None, limit: int,
                   cache: NameMatches | None) -> dict[str, Any]:
    after = decode_cursor(cursor, "q", print_, (float, str, int)) if cursor else None
    candidates = _candidates(words)
    lookups = [c[0] for c in candidates]
    # 1. The names like q: remembered, or read (trigram index on provider_names: a bitmap scan).
    matches, remembered = await _names_like(conn, lookups, cache)
    if remembered is None and not matches_any(matches):
        return {"items": [], "next_cursor": None, "order": "relevance"}  # read just now: no such name
    # 2. Each name's rows in page order. The lateral reads only (name_key, name_norm, id): with
    # bitmap scans off, an index-only walk of providers_key that stops at the page's end (the
    # planner would otherwise read every row of a name from the heap, then sort). The page's
    # rows are fetched by id at the end.
    async with conn.transaction(readonly=True):
        _, served = await conn.fetchrow(_GENERATION_NO_BITMAPS)
        if remembered is not None and served != remembered:
            # An import since those names were read: read them again (bitmap scans back on for
            # the trigram index, which has no other kind of scan).
            cache.forget()  # type: ignore[union-attr]
            await conn.execute("SET LOCAL enable_bitmapscan = on")
            matches, _ = await _names_like(conn, lookups, cache)
            await conn.execute("SET LOCAL enable_bitmapscan = off")
        found = _best_names(candidates, matches)
        if after is not None:
            found = [m for m in found if m[1] <= Decimal(repr(after[0]))]
        if not found:
            return {"items": [], "next_cursor": None, "order": "relevance"}
        w = _Where()
        keys, scores, rests, hints = (w.arg([m[i] for m in found]) for i in range(4))
        _filters(w, s, specialty_code)
        if after is not None:
            sc = w.arg(Decimal(repr(after[0])))
            w.add(f"(m.score < {sc} OR (p.name_norm, p.id) > ({w.arg(after[1])}, {w.arg(after[2])}))")
        rest = _REST_MATCH if len(words) > 1 else "TRUE"  # one word: nothing else to match
        lim = w.arg(limit + 1)
        rows = await conn.fetch(
            f"WITH m AS (SELECT * FROM unnest({keys}::text[], {scores}::numeric[], {rests}::text[], {hints}::text[])"
            " AS m(name_key, score, rest, hint)),"
            " hits AS ("
            " SELECT p.id, p.name_norm, m.score FROM m CROSS JOIN LATERAL ("
            f"   SELECT p.id, p.name_norm FROM providers p WHERE p.name_key = m.name_key AND {rest} AND {w.sql()}"
            f"   ORDER BY p.name_key, p.name_norm, p.id LIMIT {lim}) p"
            f" ORDER BY m.score DESC, p.name_norm, p.id LIMIT {lim})"
            f" SELECT {_FIELDS}, hits.score FROM hits JOIN providers p ON p.id = hits.id"
            " ORDER BY hits.score DESC, hits.name_norm, hits.id",
            *w.args,
        )
    page = rows[:limit]
    more = len(rows) > limit
    return {
        "items": [provider_out(r) for r in page],
        "next_cursor": encode_cursor("q", print_, [float(page[-1]["score"]), page[-1]["name_norm"], page[-1]["id"]]) if more else None,
        "order": "relevance",
    }


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))


async def _near(conn, s: Search, specialty_code, words, print_: str, cursor: str | None, limit: int) -> dict[str, Any]:
    origin = await _origin(conn, s.near)
    w = _Where()
    here = w.arg(origin["geo"])
    if words:
        # Not from the cache: nothing here would check the generation it belongs to.
        candidates = _candidates(words)
        matches, _ = await _names_like(conn, [c[0] for c in candidates], None)
        keys = [found[0] for found in _best_names(candidates, matches)]
        w.add(f"p.name_key = ANY({w.arg(keys)}::text[])")
    _filters(w, s, specialty_code)
    near_filter = ""
    if cursor:
        distance, code, last_id = decode_cursor(cursor, "near", print_, (float, str, int))
        d, c = w.arg(distance), w.arg(code)
        near_filter = f"WHERE geo <-> {here} >= {d}"
        w.add(f"(c.d > {d} OR c.insee_code > {c} OR p.id > {w.arg(last_id)})")
        w.add(f"(c.d > {d} OR c.insee_code >= {c})")
    lim = w.arg(limit + 1)
    rows = await conn.fetch(
        f"WITH hits AS (SELECT p.id, c.d, c.insee_code, c.latitude, c.longitude FROM ("
        f"   SELECT insee_code, latitude, longitude, geo <-> {here} AS d FROM commune_places {near_filter}"
        f"   ORDER BY geo <-> {here} LIMIT {NEAR_COMMUNES}) c"
        f" CROSS JOIN LATERAL (SELECT p.id FROM providers p WHERE p.commune_code = c.insee_code AND {w.sql()}"
        f"   ORDER BY p.commune_code, p.id LIMIT {lim}) p"
        f" ORDER BY c.d, c.insee_code, p.id LIMIT {lim})"
        f" SELECT {_FIELDS}, hits.d, hits.insee_code, hits.latitude, hits.longitude FROM hits JOIN providers p ON p.id = hits.id"
        " ORDER BY hits.d, hits.insee_code, hits.id",
        *w.args,
    )
    page = rows[:limit]
    more = len(rows) > limit
    items = [provider_out(r, _km(origin["latitude"], origin["longitude"], r["latitude"], r["longitude"])) for r in page]
    return {
        "items": items,
        "next_cursor": encode_cursor("near", print_, [page[-1]["d"], page[-1]["insee_code"], page[-1]["id"]]) if more else None,
        "order": "distance",
    }


async def specialties(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    counts = {r["specialty_code"]: r for r in await conn.fetch("SELECT specialty_code, label, rows FROM provider_specialties")}
    out = []
    for code in sorted(set(directory.SPECIALTIES) | set(counts)):
        row = counts.get(code)
        out.append({"code": code, "label": directory.SPECIALTIES.get(code) or row["label"],
                    "providers": row["rows"] if row else 0})
    return out
