"""The directory of health professionals through the gateway: a file in the real Assurance
Maladie format imported with the CLI (as `make import-providers` does) into the running system's
claims database, then searched without a token; a re-import while searches run."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.system import ROOT, System

PROVIDERS = "/api/v1/claims/providers"

# The real file's columns, in another order, with a column the import ignores.
HEADER = (
    "ps_activite_civilite;ps_activite_nom;ps_activite_prenom;ps_activite_raison_sociale;type_ps_code;"
    "specialite_code;specialite_libelle;nature_exercice_code;nature_exercice_libelle;secteur_conventionnel_code;"
    "option_tarifaire_code;option_tarifaire_libelle;coordonnees_voie;coordonnees_code_postal;coordonnees_ville;"
    "coordonnees_num_tel;activite_particuliere_libelle"
)
ROWS = [
    "Mme;Lefèvre;Zoé;;1;01;Médecine générale;01;Libéral intégral;1;;;12 rue de la Roquette;75011;PARIS;01 43 00 00 01;",
    "M.;DUPONT;Jean;;1;03;Cardiologie;01;Libéral intégral;2;3;OPTAM;3 cours Gambetta;69003;Lyon;04 78 00 00 02;",
    "M.;DUPONT;Jean;;1;03;Cardiologie;01;Libéral intégral;2;3;OPTAM;8 avenue Henri-Barbusse;69100;Villeurbanne;04 78 00 00 03;",
    "Mme;Dupont;Marie-Claire;;1;15;Ophtalmologie;01;Libéral intégral;2;;;5 rue Garibaldi;69003;LYON;;",
    ';;;"Laboratoire Bio; Centre";3;30;Laboratoire d\'analyses médicales;01;Libéral intégral;1;;;2 place Bellecour;69002;Lyon;04 78 00 00 04;',
    'Mme;N\'Diaye-Martin;Aminata;;2;24;Infirmier;01;Libéral intégral;1;;;"Bâtiment B; 4 rue Sainte-Catherine";33000;Bordeaux;05 56 00 00 05;',
    "M.;Garnier;Hugo;;2;26;Masseur-kinésithérapeute;01;Libéral intégral;1;;;1 avenue Jean-Jaurès;33600;Pessac;05 56 00 00 06;",
    "Mme;Roche;Léa;;1;01;Médecine générale;01;Libéral intégral;1;;;9 rue du Château;33700;Mérignac;05 56 00 00 07;",
    "M.;Bénard;Loïc;;1;01;Médecine générale;01;Libéral intégral;1;;;3 rue Nationale;59000;Lille;03 20 00 00 08;",
    "M.;Faure;Rémi;;1;01;Médecine générale;01;Libéral intégral;1;;;3 rue Nationale;ABCDE;Lille;03 20 00 00 09;",  # line 11
    "M.;Moreau;Paul;;1;01;Médecine générale",  # line 12: too few fields
]


def write_file(path: Path, rows: list[str]) -> Path:
    path.write_bytes(("\ufeff" + HEADER + "\r\n" + "\r\n".join(rows) + "\r\n").encode("utf-8"))
    return path


def import_providers(system: System, path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CLAIMS_DATABASE_URL": system.db_url("claims")}
    result = subprocess.run([sys.executable, "-m", "claims.entrypoints.cli", "import-providers", str(path)],
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def demo_rows(tmp: Path, rows: int, seed: int) -> list[str]:
    out = tmp / f"demo-{seed}.csv"
    subprocess.run([sys.executable, "-m", "claims.entrypoints.cli", "demo-providers", str(out), "--rows", str(rows),
                    "--seed", str(seed)], cwd=ROOT, check=True, capture_output=True, timeout=120)
    return out.read_text(encoding="utf-8-sig").splitlines()[1:]


@pytest.fixture(scope="module")
def directory(system: System, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("providers")
    result = import_providers(system, write_file(tmp / "liste-ps-20260105.csv", ROWS))
    return tmp, result


def names(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [item["name"] for item in answer.json()["items"]]


def test_the_import_reads_the_real_format_and_reports_malformed_rows_with_their_lines(directory):
    _, result = directory
    assert "9 rows: added 9, changed 0, removed 0" in result.stdout
    assert "malformed 2" in result.stdout
    assert "ligne 11 : coordonnees_code_postal" in result.stderr
    assert "ligne 12 :" in result.stderr


def test_a_name_is_found_without_accents_case_or_exact_spelling(gateway: httpx.Client, directory):
    assert names(gateway.get(PROVIDERS, params={"q": "lefevre"})) == ["Zoé Lefèvre"]
    assert names(gateway.get(PROVIDERS, params={"q": "LEFÈVRE"})) == ["Zoé Lefèvre"]
    assert names(gateway.get(PROVIDERS, params={"q": "lefebvre"})) == ["Zoé Lefèvre"]
    # The typo finds the Duponts; the exact surname ranks before the double one.
    found = names(gateway.get(PROVIDERS, params={"q": "dupond"}))
    assert set(found) == {"Jean DUPONT", "Marie-Claire Dupont"}
    assert names(gateway.get(PROVIDERS, params={"q": "marie-claire dupont"})) == ["Marie-Claire Dupont"]
    assert names(gateway.get(PROVIDERS, params={"q": "n'diaye"})) == ["Aminata N'Diaye-Martin"]
    assert names(gateway.get(PROVIDERS, params={"q": "laboratoire bio"})) == ["Laboratoire Bio; Centre"]


def test_each_result_says_specialty_address_phone_sector_and_optam_in_words(gateway: httpx.Client, directory):
    [zoe] = gateway.get(PROVIDERS, params={"q": "lefevre"}).json()["items"]
    assert zoe["specialty"] == {"code": "01", "label": "Médecine générale"}
    assert zoe["address"] == {"street": "12 rue de la Roquette", "postcode": "75011", "city": "PARIS", "department": "75"}
    assert zoe["phone"] == "01 43 00 00 01"
    assert zoe["sector"] == {"code": 1, "label": "Secteur 1 — conventionné, sans dépassement d'honoraires"}
    assert zoe["optam"]["member"] is False
    [jean, *_] = gateway.get(PROVIDERS, params={"q": "dupont", "specialty": "cardiologie"}).json()["items"]
    assert jean["sector"]["code"] == 2 and jean["sector"]["label"].startswith("Secteur 2 — conventionné")
    assert jean["optam"] == {"member": True, "label": jean["optam"]["label"]} and "OPTAM" in jean["optam"]["label"]
    [lab] = gateway.get(PROVIDERS, params={"q": "laboratoire"}).json()["items"]
    assert lab["address"]["street"] == "2 place Bellecour" and lab["organisation"] == "Laboratoire Bio; Centre"


def test_filters_narrow_by_specialty_place_sector_and_optam(gateway: httpx.Client, directory):
    assert names(gateway.get(PROVIDERS, params={"specialty": "03", "city": "lyon"})) == ["Jean DUPONT"]
    assert names(gateway.get(PROVIDERS, params={"specialty": "cardiologue", "city": "Villeurbanne"})) == ["Jean DUPONT"]
    assert sorted(names(gateway.get(PROVIDERS, params={"postcode": "69003", "sector": 2}))) == ["Jean DUPONT", "Marie-Claire Dupont"]
    assert names(gateway.get(PROVIDERS, params={"postcode": "69003", "sector": 2, "optam": True})) == ["Jean DUPONT"]
    assert sorted(names(gateway.get(PROVIDERS, params={"department": "33"}))) == [
        "Aminata N'Diaye-Martin", "Hugo Garnier", "Léa Roche"]
    assert names(gateway.get(PROVIDERS, params={"specialty": "médecine générale", "department": "59"})) == ["Loïc Bénard"]


def test_near_a_postcode_orders_by_distance(gateway: httpx.Client, directory):
    answer = gateway.get(PROVIDERS, params={"near": "33000", "limit": 4})
    found = names(answer)
    assert found[0] == "Aminata N'Diaye-Martin"  # Bordeaux itself
    assert set(found[1:3]) == {"Hugo Garnier", "Léa Roche"}  # Pessac, Mérignac
    distances = [item["distance_km"] for item in answer.json()["items"]]
    assert distances == sorted(distances) and distances[0] == 0 and distances[1] < 15
    assert answer.json()["order"] == "distance"
    assert names(gateway.get(PROVIDERS, params={"near": "33000", "specialty": "01", "limit": 1})) == ["Léa Roche"]
    # A name near a postcode: the Duponts, Lyon 3e before Villeurbanne.
    near_lyon = gateway.get(PROVIDERS, params={"near": "69003", "q": "dupond"}).json()["items"]
    assert [(i["name"], i["address"]["postcode"]) for i in near_lyon][-1] == ("Jean DUPONT", "69100")
    assert {i["address"]["postcode"] for i in near_lyon[:-1]} == {"69003"}
    # Every filter at once, nothing matching: an empty page, not an error.
    answer = gateway.get(PROVIDERS, params={"near": "09700", "department": "62", "postcode": "00000", "q": "00", "limit": 18})
    assert answer.status_code == 200 and answer.json()["items"] == []


def test_pages_follow_a_stable_order_to_the_end(gateway: httpx.Client, directory):
    def ids(answer: httpx.Response) -> list[str]:
        assert answer.status_code == 200, answer.text
        return [item["id"] for item in answer.json()["items"]]

    for params in ({}, {"q": "dupont"}, {"near": "69003"}, {"department": "69"}, {"specialty": "01"}):
        whole = ids(gateway.get(PROVIDERS, params={**params, "limit": 50}))
        paged, cursor = [], None
        while True:
            answer = gateway.get(PROVIDERS, params={**params, "limit": 2, **({"cursor": cursor} if cursor else {})})
            paged += ids(answer)
            cursor = answer.json()["next_cursor"]
            if cursor is None:
                break
        assert paged == whole and len(set(paged)) == len(paged) and paged, params


def test_bad_input_is_a_422_problem_in_french(gateway: httpx.Client, directory):
    def refused(params: dict, field: str, code: str) -> None:
        answer = gateway.get(PROVIDERS, params=params)
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        errors = answer.json()["errors"]
        assert [(e["field"], e["code"]) for e in errors] == [(field, code)], errors
        assert errors[0]["message"]

    refused({"specialty": "99"}, "specialty", "unknown_specialty")
    refused({"specialty": "astrologue"}, "specialty", "unknown_specialty")
    refused({"q": "x" * 300}, "q", "too_long")
    refused({"q": "!!"}, "q", "q_unusable")
    refused({"postcode": "7501"}, "postcode", "invalid_format")
    refused({"near": "00000"}, "near", "unknown_postcode")
    refused({"sector": 4}, "sector", "invalid")
    refused({"cursor": "bm90LWEtY3Vyc29y"}, "cursor", "invalid_cursor")
    first = gateway.get(PROVIDERS, params={"q": "dupont", "limit": 1}).json()
    refused({"q": "lefevre", "cursor": first["next_cursor"]}, "cursor", "cursor_mismatch")
    refused({"department": "33", "cursor": first["next_cursor"]}, "cursor", "cursor_mismatch")


def test_the_specialties_are_listed_with_their_codes(gateway: httpx.Client, directory):
    answer = gateway.get("/api/v1/claims/specialties")
    assert answer.status_code == 200
    items = {s["code"]: s for s in answer.json()["items"]}
    assert items["01"] == {"code": "01", "label": "Médecine générale", "providers": 3}
    assert items["19"]["label"] == "Chirurgien-dentiste" and items["19"]["providers"] == 0


def test_a_name_search_sees_the_names_a_new_file_brings(system: System, gateway: httpx.Client, directory):
    # claims remembers the names like "lefevre" (for the directory it read them from)...
    tmp, _ = directory
    assert names(gateway.get(PROVIDERS, params={"q": "lefevre"})) == ["Zoé Lefèvre"]
    newcomer = ("Mme;Lefèvre-Roux;Anne;;1;01;Médecine générale;01;Libéral intégral;1;;;4 rue Oberkampf;75011;PARIS;"
                "01 43 00 00 10;")
    import_providers(system, write_file(tmp / "liste-ps-20260106.csv", [*ROWS, newcomer]))
    try:
        # ...and the next search after an import reads them from the new one.
        assert names(gateway.get(PROVIDERS, params={"q": "lefevre"})) == ["Zoé Lefèvre", "Anne Lefèvre-Roux"]
        assert names(gateway.get(PROVIDERS, params={"q": "lefevre roux"})) == ["Anne Lefèvre-Roux"]
    finally:
        import_providers(system, write_file(tmp / "liste-ps-20260105.csv", ROWS))  # the module's directory again


def test_a_new_file_replaces_the_directory_atomically_while_searches_run(system: System, gateway: httpx.Client, directory):
    tmp, _ = directory
    filler = demo_rows(tmp, 20_000, seed=11)
    first = import_providers(system, write_file(tmp / "liste-ps-20260112.csv", ROWS[:9] + filler))
    assert "changed 0, removed 0, unchanged 9" in first.stdout
    # The next file: Zoé Lefèvre's phone changed, the Lille GP gone, other demo rows.
    changed = [ROWS[0].replace("01 43 00 00 01", "01 43 99 99 99"), *ROWS[1:8]]
    newer = write_file(tmp / "liste-ps-20260119.csv", changed + demo_rows(tmp, 20_000, seed=12))

    failures: list[str] = []
    seen = {"searches": 0}
    stop = threading.Event()

    def search_constantly() -> None:
        with httpx.Client(base_url=system.gateway_url, timeout=30) as client:
            while not stop.is_set():
                for params in ({"q": "lefevre", "postcode": "75011"}, {"department": "33"}, {"near": "69003", "specialty": "03"}):
                    answer = client.get(PROVIDERS, params=params)
                    seen["searches"] += 1
                    if answer.status_code != 200 or not answer.json()["items"]:
                        failures.append(f"{params}: {answer.status_code} {answer.text[:200]}")

    threads = [threading.Thread(target=search_constantly) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        result = import_providers(system, newer)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not failures, failures[:5]
    assert seen["searches"] > 20
    assert "changed 1," in result.stdout and "removed" in result.stdout
    [zoe] = gateway.get(PROVIDERS, params={"q": "lefevre zoe", "postcode": "75011"}).json()["items"]
    assert zoe["phone"] == "01 43 99 99 99"
    assert names(gateway.get(PROVIDERS, params={"q": "benard loic", "postcode": "59000"})) == []
