"""The valuation rules, with the domain note's worked examples and property-based checks."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claims.domain.money import euros_fr, parse_euros, percent_of
from claims.domain.plans import PlanCatalog, Period
from claims.domain.valuation import CareLine, Coverage, Ledger, add_months, in_window, value_line

CATALOG = PlanCatalog.load()
ESSENTIEL = CATALOG.plans[("ESSENTIEL", 2026)]
CONFORT = CATALOG.plans[("CONFORT", 2026)]
COVERED = Coverage(date(2026, 1, 1))


def line(act="G", charged=3000, base=3000, rate=70, paid=None, part=200, optam=True, day=date(2026, 3, 2), qty=1):
    if paid is None:
        paid = max(0, percent_of(base, rate) - part)
    return CareLine(day, act, qty, charged, base, rate, paid, part, optam)


def test_amounts_parse_exactly_to_cents():
    assert parse_euros("12.34") == 1234
    assert parse_euros("0.10") == 10
    assert parse_euros("19") == 1900
    assert parse_euros("0.07") == 7
    for bad in ("12,34", "-1.00", "1.234", "", "1e3", "abc"):
        with pytest.raises(ValueError):
            parse_euros(bad)
    assert euros_fr(1234) == "12,34 €" and euros_fr(10000) == "100 €"


def test_a_gp_visit_at_30_euros_under_essentiel_leaves_only_the_participation():
    v = value_line(ESSENTIEL, COVERED, line(), Ledger())
    assert (v.status, v.mutuelle_cents, v.out_of_pocket_cents) == ("paid", 900, 200)


def test_a_gp_charging_50_euros_under_confort_200_percent():
    v = value_line(CONFORT, COVERED, line(charged=5000), Ledger())
    # min(50 − 21, 60 − 21) = 29 €; the member keeps the 2 € participation.
    assert (v.mutuelle_cents, v.out_of_pocket_cents) == (2900, 200)
    assert v.guarantee.words() == "200 % de la base de remboursement (médecin OPTAM ou secteur 1)"
    assert value_line(ESSENTIEL, COVERED, line(charged=5000), Ledger()).mutuelle_cents == 900


def test_a_non_optam_specialist_gets_the_lower_rate():
    specialist = line(act="CS", charged=8000, base=2300, optam=False)
    v = value_line(CONFORT, COVERED, specialist, Ledger())
    assert v.guarantee.post == "CONSULT_SPECIALIST_NON_OPTAM"
    assert v.mutuelle_cents == 4600 - 1610
    assert value_line(CONFORT, COVERED, line(act="CS", charged=8000, base=2300), Ledger()).mutuelle_cents == 6900 - 1610


def test_a_medicine_at_30_percent_is_topped_up_but_not_the_franchise():
    v = value_line(ESSENTIEL, COVERED, line(act="PH4", charged=1000, base=1000, rate=30, part=100), Ledger())
    assert (v.mutuelle_cents, v.out_of_pocket_cents) == (700, 100)
    assert value_line(ESSENTIEL, COVERED, line(act="PH2", charged=1000, base=1000, rate=15, part=0), Ledger()).reason_code == "not_covered"


def test_class_b_glasses_hit_the_ceiling_and_a_second_pair_within_two_years_is_refused():
    ledger = Ledger()
    frame = value_line(ESSENTIEL, COVERED, line("OPT_B_MONTURE", 15000, 5, 60, part=0), ledger)
    lens = value_line(ESSENTIEL, COVERED, line("OPT_B_VERRE", 12000, 5, 60, part=0), ledger)
    assert frame.mutuelle_cents == 10000 - 0 and frame.capped
    assert lens.status == "rejected" and lens.reason_code == "ceiling_reached"
    later = value_line(ESSENTIEL, COVERED, line("OPT_B_MONTURE", 9000, 5, 60, part=0, day=date(2026, 11, 2)), ledger)
    assert later.reason_code == "renewal_period"


def test_confort_glasses_350_with_the_frame_capped_at_100():
    ledger = Ledger()
    frame = value_line(CONFORT, COVERED, line("OPT_B_MONTURE", 18000, 5, 60, part=0), ledger)
    lenses = value_line(CONFORT, COVERED, line("OPT_B_VERRE", 40000, 10, 60, part=0, qty=2), ledger)
    assert frame.mutuelle_cents == 10000
    assert lenses.mutuelle_cents == 25000 and lenses.capped


def test_osteopathy_four_sessions_a_year_then_refused():
    ledger = Ledger()
    paid = [value_line(CONFORT, COVERED, line("OSTEO", 6000, 0, 0, 0, 0, day=date(2026, m, 3)), ledger) for m in range(1, 6)]
    assert [v.mutuelle_cents for v in paid[:4]] == [4000] * 4
    assert paid[4].reason_code == "ceiling_reached"
    assert value_line(CONFORT, COVERED, line("OSTEO", 6000, 0, 0, 0, 0, day=date(2027, 1, 3)), ledger).mutuelle_cents == 4000  # a new calendar year, a new count
    assert value_line(ESSENTIEL, COVERED, line("OSTEO", 6000, 0, 0, 0, 0), Ledger()).reason_code == "not_covered"


def test_a_care_date_outside_the_coverage_is_rejected():
    v = value_line(ESSENTIEL, Coverage(date(2026, 6, 1)), line(day=date(2026, 5, 31)), Ledger())
    assert v.reason_code == "not_covered_on_date" and v.mutuelle_cents == 0
    assert value_line(ESSENTIEL, Coverage(date(2025, 1, 1), date(2026, 2, 28)), line(), Ledger()).status == "rejected"


def test_forfait_journalier_is_paid_in_real_costs():
    v = value_line(ESSENTIEL, COVERED, line("FJ", 2000, 0, 0, 0, 0), Ledger())
    assert (v.mutuelle_cents, v.out_of_pocket_cents) == (2000, 0)


def test_rolling_windows():
    assert add_months(date(2024, 2, 29), 24) == date(2026, 2, 28)
    assert in_window(Period.ROLLING_24_MONTHS, date(2026, 3, 1), date(2024, 3, 2))
    assert not in_window(Period.ROLLING_24_MONTHS, date(2026, 3, 1), date(2024, 3, 1))


# -- properties --------------------------------------------------------------------------------

ACTS = ["G", "CS", "PH7", "PH4", "PH2", "B", "AMK", "FJ", "CHP", "OPT_B_MONTURE", "OPT_B_VERRE", "OPT_A_VERRE",
        "HBLD038", "DENT_100PS", "AUD_2", "OSTEO", "XYZ"]
RATES = [0, 15, 30, 60, 65, 70, 80, 100]


@st.composite
def care_lines(draw):
    base = draw(st.integers(0, 50_000))
    rate = draw(st.sampled_from(RATES))
    part = draw(st.integers(0, 400))
    gross = percent_of(base, rate)
    paid = max(0, gross - part)
    part = gross - paid if gross else 0
    charged = draw(st.integers(paid + part, paid + part + 200_000))
    day = date(2025, 1, 1) + timedelta(days=draw(st.integers(0, 729)))
    return CareLine(day, draw(st.sampled_from(ACTS)), draw(st.integers(1, 3)), charged, base, rate, paid, part,
                    draw(st.booleans()))


@settings(max_examples=300, deadline=None)
@given(st.lists(care_lines(), max_size=40), st.sampled_from(["ESSENTIEL", "CONFORT"]))
def test_shares_are_never_negative_never_exceed_what_was_charged_and_never_pay_the_participation(lines, code):
    ledger = Ledger()
    for care in lines:
        v = value_line(CATALOG.plan_for(code, care.care_date), COVERED, care, ledger)
        assert v.mutuelle_cents >= 0
        assert v.mutuelle_cents + care.secu_paid_cents <= care.charged_cents
        assert v.out_of_pocket_cents >= care.participation_cents
        assert v.mutuelle_cents + care.secu_paid_cents + v.out_of_pocket_cents == care.charged_cents


@settings(max_examples=300, deadline=None)
@given(st.lists(care_lines(), max_size=60), st.sampled_from(["ESSENTIEL", "CONFORT"]))
def test_no_ceiling_is_ever_exceeded_whatever_the_order_of_the_lines(lines, code):
    ledger = Ledger()
    for care in lines:
        value_line(CATALOG.plan_for(code, care.care_date), COVERED, care, ledger)
    plan = CATALOG.plans[(code, 2026)]
    limits = {f"group:{g.name}": (g.ceiling_cents, g.period, g.renewal) for g in plan.groups.values()}
    limits |= {f"post:{g.post}": (g.own_ceiling(), g.period, None) for g in plan.guarantees if g.period}
    sessions = {f"post:{g.post}": g.sessions for g in plan.guarantees if g.sessions}
    for key, uses in ledger.uses.items():
        if key not in limits:
            continue  # a line limited only through its group (ESSENTIEL's class-B lenses)
        ceiling, period, renewal = limits[key]
        for start in {u.care_date for u in uses}:  # every window that starts at a use
            if period is Period.CALENDAR_YEAR:
                inside = [u for u in uses if u.care_date.year == start.year]
            else:
                end = add_months(start, 24 if period is Period.ROLLING_24_MONTHS else 48)
                inside = [u for u in uses if start <= u.care_date < end]
            if ceiling is not None:
                assert sum(u.amount_cents for u in inside) <= ceiling
            if renewal is not None:
                assert len({u.care_date for u in inside if u.amount_cents > 0}) <= renewal
            if key in sessions:
                assert sum(u.sessions for u in inside) <= sessions[key]
