"""The directory file's rows, name folding and the words a member reads (no I/O but temp files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from claims.domain import directory
from claims.domain.directory import MalformedRow
from claims.entrypoints import demo_providers
from claims.service_layer import providers_import, providers_search
from shared.platform.problems import ProblemError

HEADER = ("ps_activite_nom;ps_activite_prenom;ps_activite_civilite;ps_activite_raison_sociale;specialite_code;"
          "specialite_libelle;type_ps_code;coordonnees_voie;coordonnees_code_postal;coordonnees_ville;"
          "coordonnees_num_tel;secteur_conventionnel_code;option_tarifaire_code;option_tarifaire_libelle;"
          "nature_exercice_code;nature_exercice_libelle")


def test_folding_drops_accents_case_and_punctuation():
    assert directory.fold("Lefèvre-N'Diaye  Zoé") == "lefevre n diaye zoe"
    assert directory.fold("ŒUVRE Ærø") == "oeuvre aero"
    assert directory.fold("  ;;  ") == ""
    assert directory.fold("Saint-Étienne") == directory.fold("SAINT ETIENNE")


def test_a_specialty_is_named_by_code_label_or_usual_word():
    assert directory.specialty_code("1") == "01"
    assert directory.specialty_code("03") == "03"
    assert directory.specialty_code("cardiologie") == "03"
    assert directory.specialty_code("Dentiste") == "19"
    assert directory.specialty_code("kiné") == "26"
    assert directory.specialty_code("99") is None
    assert directory.specialty_code("astrologue") is None


def test_sector_and_optam_are_said_in_words():
    assert directory.sector_words(1, True) == "Secteur 1 — conventionné, sans dépassement d'honoraires"
    assert directory.sector_words(2, True).startswith("Secteur 2 — conventionné, honoraires libres")
    assert directory.sector_words(None, False).startswith("Non conventionné")
    assert directory.optam_words(True, 2).startswith("Adhérent à l'OPTAM")
    assert directory.optam_words(False, 1) == "Sans objet"


def test_the_departement_of_a_postcode_handles_corsica_and_overseas():
    assert directory.department_of("75011") == "75"
    assert directory.department_of("20000") == "2A"
    assert directory.department_of("20200") == "2B"
    assert directory.department_of("97400") == "974"


def write(tmp_path: Path, lines: list[str], header: str = HEADER, bom: bool = True) -> Path:
    path = tmp_path / "liste-ps-20260101.csv"
    path.write_text(("\ufeff" if bom else "") + header + "\r\n" + "\r\n".join(lines) + "\r\n", encoding="utf-8")
    return path


def read(path: Path) -> tuple[list[directory.ProviderRow], providers_import.ImportReport]:
    report = providers_import.ImportReport()
    return list(providers_import.read_file(path, report)), report


def test_rows_are_read_by_column_name_with_quoted_separators(tmp_path):
    # Columns in another order, one more column, a BOM, a quoted field holding ';' and a quote.
    header = ("extra;coordonnees_ville;ps_activite_prenom;ps_activite_nom;ps_activite_civilite;specialite_code;"
              "specialite_libelle;coordonnees_code_postal;coordonnees_voie;secteur_conventionnel_code;"
              "option_tarifaire_code;option_tarifaire_libelle;type_ps_code;ps_activite_raison_sociale;"
              "coordonnees_num_tel;nature_exercice_code;nature_exercice_libelle")
    path = write(tmp_path, [
        'x;Lyon;Zoé;Lefèvre;Mme;03;Cardiologie;69003;"Bât. A; 3 rue ""Pasteur""";2;3;OPTAM;1;;04 78 00 00 00;01;Libéral intégral',
    ], header=header)
    [row], report = read(path)
    assert report.malformed == 0
    assert (row.last_name, row.first_name, row.city, row.postcode) == ("Lefèvre", "Zoé", "Lyon", "69003")
    assert row.street == 'Bât. A; 3 rue "Pasteur"'
    assert (row.sector, row.optam, row.specialty_code) == (2, True, "03")
    assert row.name_norm == "lefevre zoe" and row.name_key == "lefevre"


def test_malformed_rows_are_counted_with_their_line_numbers(tmp_path):
    path = write(tmp_path, [
        "Dupont;Jean;M.;;01;Médecine générale;1;1 rue A;75011;Paris;;1;;;01;Libéral intégral",
        "Martin;Paul;M.;;01;Médecine générale;1;1 rue A;7501;Paris;;1;;;01;Libéral intégral",  # postcode
        "Petit;Anne;Mme;;01;Médecine générale;1;1 rue A;75011",  # too few fields
        '"Multi\r\nligne";Léa;Mme;;24;Infirmier;2;2 rue B;33000;Bordeaux;;1;;;01;Libéral intégral',
        "Roux;Luc;M.;;01;Médecine générale;1;1 rue A;75011;Paris;;9;;;01;Libéral intégral",  # sector
        ";;;;01;Médecine générale;1;1 rue A;75011;Paris;;1;;;01;Libéral intégral",  # no name
    ])
    rows, report = read(path)
    assert [r.last_name for r in rows] == ["Dupont", "Multi ligne"]
    assert report.malformed == 4
    lines = [p.split(" :")[0] for p in report.problems]
    assert lines == ["ligne 3", "ligne 4", "ligne 7", "ligne 8"]  # the quoted line break spans lines 5-6
    assert "code postal" in report.problems[0]


def test_a_file_without_the_columns_is_refused(tmp_path):
    path = write(tmp_path, ["a,b"], header="nom,prenom,ville")
    with pytest.raises(ValueError):
        read(path)


def test_a_row_identity_is_stable_and_ignores_case_and_accents():
    index = directory.header_index(HEADER.split(";"))
    a = directory.parse_row("Lefèvre;Zoé;Mme;;01;MG;1;1 rue A;75011;Paris;01;1;;;01;L".split(";"), index, 2)
    b = directory.parse_row("LEFEVRE;ZOE;Mme;;1;MG;1;1 RUE A;75011;PARIS;02;2;3;OPTAM;01;L".split(";"), index, 9)
    assert directory.row_id(a.identity) == directory.row_id(b.identity)
    assert directory.row_hash(a) != directory.row_hash(b)  # same practitioner, changed


def test_parse_row_rejects_overlong_fields():
    index = directory.header_index(HEADER.split(";"))
    with pytest.raises(MalformedRow):
        directory.parse_row(("X" * 101 + ";Zoé;Mme;;01;MG;1;1 rue A;75011;Paris;;1;;;01;L").split(";"), index, 2)


def test_the_demo_file_is_in_the_real_format_and_reads_back(tmp_path):
    out = tmp_path / "demo.csv"
    assert demo_providers.write(out, 500, seed=7) == 500
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b";" in raw.splitlines()[0]
    rows, report = read(out)
    assert report.malformed == 0 and len(rows) == 500
    assert any(not r.name_norm.isascii() or r.last_name != directory.fold(r.last_name) for r in rows)
    assert {r.specialty_code for r in rows} >= {"01", "24", "26"}


def test_cursors_belong_to_their_query():
    print_ = providers_search.fingerprint(providers_search.Search(q="dupont"), None, ["dupont"])
    cursor = providers_search.encode_cursor("q", print_, [1.5, "dupont jean", 42])
    assert providers_search.decode_cursor(cursor, "q", print_, (float, str, int)) == [1.5, "dupont jean", 42]
    other = providers_search.fingerprint(providers_search.Search(q="martin"), None, ["martin"])
    with pytest.raises(ProblemError) as refused:
        providers_search.decode_cursor(cursor, "q", other, (float, str, int))
    assert refused.value.errors[0].code == "cursor_mismatch"
    for bad in ("!!", "e30", providers_search.encode_cursor("q", print_, [1.5, "x", -1])):
        with pytest.raises(ProblemError) as refused:
            providers_search.decode_cursor(bad, "q", print_, (float, str, int))
        assert refused.value.errors[0].code == "invalid_cursor"


def test_names_are_remembered_per_directory_generation_and_the_least_used_go_first():
    from decimal import Decimal

    cache = providers_search.NameMatches(size=2)
    cache.put(1, "dupont", [("dupont", Decimal("2.0000")), ("dupond", Decimal("1.1000"))])
    cache.put(1, "martin", [("martin", Decimal("2.0000"))])
    assert cache.get("dupont") == (("dupont", Decimal("2.0000")), ("dupond", Decimal("1.1000")))
    cache.put(1, "lefevre", [])  # "martin" was used least recently: it goes
    assert cache.get("martin") is None and cache.get("lefevre") == () and len(cache) == 2
    cache.put(2, "roche", [("roche", Decimal("2.0000"))])  # another directory: the rest is forgotten
    assert cache.generation == 2 and cache.get("dupont") is None and len(cache) == 1
