from datetime import date
from pathlib import Path

import pytest

from identity.domain.registry import Known, RegistryError, RegistryRow, resolve
from identity.service_layer.registry import read_csv

TODAY = date(2026, 12, 2)
DEMO = Path(__file__).resolve().parents[4] / "deploy" / "local" / "demo-members.csv"


def row(number, contract, born=date(1980, 1, 1), line=2, **fields) -> RegistryRow:
    return RegistryRow(number, contract, "Martin", "Camille", born, line=line, **fields)


def by_number(resolved):
    return {r.membership_number: r for r in resolved}


def test_an_old_file_gets_the_default_plan_coverage_from_january_and_the_first_row_as_holder():
    rows = [row("1", "C1", date(1985, 4, 12)), row("2", "C1", date(2012, 9, 3)), row("3", "C1", date(1984, 6, 1)),
            row("4", "C2")]
    got = by_number(resolve(rows, {}, today=TODAY, default_plan="ESSENTIEL"))
    assert [got[n].role for n in "1234"] == ["holder", "child", "spouse", "holder"]
    assert {r.plan_code for r in got.values()} == {"ESSENTIEL"}
    assert {r.coverage_start for r in got.values()} == {date(2026, 1, 1)}
    assert {r.coverage_end for r in got.values()} == {None}


def test_roles_plans_and_coverage_from_the_file_win():
    rows = [
        row("1", "C1", role="child", born=date(2010, 1, 1), plan_code="CONFORT"),
        row("2", "C1", role="holder", coverage_start=date(2025, 3, 1)),
        row("3", "C1", role="spouse", coverage_start=date(2025, 3, 1), coverage_end=date(2026, 6, 30),
            coverage_end_given=True),
    ]
    got = by_number(resolve(rows, {}, today=TODAY, default_plan="ESSENTIEL"))
    assert [got[n].role for n in "123"] == ["child", "holder", "spouse"]
    assert {r.plan_code for r in got.values()} == {"CONFORT"}  # the contract's, given once
    assert got["2"].coverage_start == date(2025, 3, 1)
    assert got["3"].coverage_end == date(2026, 6, 30)


def test_a_file_that_adds_a_child_keeps_the_known_holder_plan_and_dates():
    known = {"1": Known("C1", "CONFORT", "holder", date(2024, 1, 1), None)}
    rows = [row("9", "C1", born=date(2026, 5, 1))]
    [child] = resolve(rows, known, today=TODAY, default_plan="ESSENTIEL", known_plans={"C1": "CONFORT"},
                      known_holders={"C1": "1"})
    assert (child.role, child.plan_code, child.coverage_start) == ("child", "CONFORT", date(2026, 1, 1))
    # The holder again, without the optional columns: nothing of what is known is lost.
    [holder] = resolve([row("1", "C1")], known, today=date(2027, 2, 1), default_plan="ESSENTIEL",
                       known_plans={"C1": "CONFORT"}, known_holders={"C1": "1"})
    assert (holder.role, holder.plan_code, holder.coverage_start) == ("holder", "CONFORT", date(2024, 1, 1))


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([row("1", "C1", role="holder"), row("2", "C1", role="holder", line=3)], "line 3: contract C1 has two holders"),
        ([row("1", "C1", role="child"), row("2", "C1", role="spouse", line=3)], "contract C1 has no holder"),
        ([row("1", "C1", plan_code="CONFORT"), row("2", "C1", plan_code="ESSENTIEL", line=3)], "two plans"),
        ([row("1", "C1", coverage_start=date(2026, 5, 1), coverage_end=date(2026, 4, 1), coverage_end_given=True)],
         "before coverage_start"),
    ],
)
def test_inconsistent_contracts_are_refused_with_the_line(rows, message):
    with pytest.raises(RegistryError, match=message):
        resolve(rows, {}, today=TODAY, default_plan="ESSENTIEL")


def test_the_csv_reader_takes_old_and_new_files_and_names_bad_lines(tmp_path):
    old = tmp_path / "old.csv"
    old.write_text("membership_number,contract_number,last_name,first_name,birth_date\n1,C1,Martin,Camille,1985-04-12\n")
    [only] = read_csv(old)
    assert (only.plan_code, only.role, only.coverage_start, only.coverage_end_given) == (None, None, None, False)
    bad = tmp_path / "bad.csv"
    bad.write_text("membership_number,contract_number,last_name,first_name,birth_date,role\n"
                   "1,C1,Martin,Camille,1985-04-12,holder\n2,C1,Martin,Louis,2012-09-03,cousin\n")
    with pytest.raises(ValueError, match=r"bad.csv:3: role must be one of holder, spouse, child"):
        read_csv(bad)
    twice = tmp_path / "twice.csv"
    twice.write_text("membership_number,contract_number,last_name,first_name,birth_date\n"
                     "1,C1,Martin,Camille,1985-04-12\n1,C1,Martin,Camille,1985-04-12\n")
    with pytest.raises(ValueError, match="twice.csv:3: membership number already on line 2"):
        read_csv(twice)


def test_the_demo_registry_has_both_plans_and_a_family_contract():
    resolved = resolve(read_csv(DEMO), {}, today=TODAY, default_plan="ESSENTIEL")
    assert {r.plan_code for r in resolved} == {"ESSENTIEL", "CONFORT"}
    families = {}
    for r in resolved:
        families.setdefault(r.contract_number, set()).add(r.role)
    assert {"holder", "spouse", "child"} in families.values()
