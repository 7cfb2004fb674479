"""Plan files are validated at load: a bad file is refused with its line and the reason."""

from __future__ import annotations

import pytest

from claims.domain.plans import PlanCatalog, PlanFileError, parse_plan

GOOD = """code = "TEST"
year = 2026
label = "Test"

[[guarantee]]
category = "soins_courants"
post = "CONSULT_GP"
label = "Consultation"
acts = ["G"]
formula = "pct_br"
rate = 100
"""


def refused(text: str) -> PlanFileError:
    with pytest.raises(PlanFileError) as caught:
        parse_plan(text, "TEST-2026.toml")
    return caught.value


def test_the_shipped_plans_load():
    catalog = PlanCatalog.load()
    assert {("ESSENTIEL", 2026), ("CONFORT", 2026)} <= set(catalog.plans)
    assert parse_plan(GOOD).guarantee_for("G", True).post == "CONSULT_GP"


def test_a_toml_syntax_error_names_its_line():
    error = refused(GOOD.replace('rate = 100', 'rate = = 100'))
    assert error.line == 11


def test_a_float_amount_is_refused_with_the_line_of_its_guarantee():
    text = GOOD + '\n[[guarantee]]\ncategory = "optique"\npost = "X"\nlabel = "x"\nacts = ["OPT"]\nformula = "forfait"\namount = 100.0\nperiod = "calendar_year"\n'
    error = refused(text)
    assert error.line == 13 and "guillemets" in error.reason


def test_semantic_errors_are_explained():
    assert "rate ≥ 100" in refused(GOOD.replace("rate = 100", "rate = 80")).reason
    assert "formula inconnu" in refused(GOOD.replace('"pct_br"', '"pourcent"')).reason
    assert "catégorie inconnue" in refused(GOOD.replace('"soins_courants"', '"spa"')).reason
    assert "manquante : acts" in refused(GOOD.replace('acts = ["G"]\n', "")).reason
    twice = GOOD + GOOD[GOOD.index("[[guarantee]]"):].replace("CONSULT_GP", "OTHER")
    error = refused(twice)
    assert error.line == 12 and "déjà couvert" in error.reason
    frame = GOOD + '\n[[guarantee]]\ncategory = "optique"\npost = "OPT_B_MONTURE"\nlabel = "x"\nacts = ["M"]\nformula = "forfait"\namount = "150.00"\nperiod = "rolling_24_months"\n'
    assert "100 €" in refused(frame).reason
