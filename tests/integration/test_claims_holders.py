"""The holder claims finds for a beneficiary (settlement.HOLDER_OF_B, one contract's rows through
its index) is the one the contract_holders view defines (role "holder", else the first enrolled),
for contracts whose holder is not the first enrolled too."""

from __future__ import annotations

import asyncio
from datetime import date

import asyncpg

from claims.service_layer import settlement
from tests.integration.claims_helpers import enrol_family


def test_the_holder_looked_up_per_contract_is_the_views(system, tmp_path):
    child_first = enrol_family(system, tmp_path, "CONFORT", [
        ("Léo", "child", date(2014, 2, 3), "Garnier-Holders"),
        ("Inès", "holder", date(1983, 6, 7), "Garnier-Holders"),
        ("Marc", "spouse", date(1981, 1, 9), "Garnier-Holders"),
    ])
    holder_first = enrol_family(system, tmp_path, "ESSENTIEL", [("Aïcha", "holder", date(1990, 3, 4), "Benali-Holders")])

    async def run():
        conn = await asyncpg.connect(system.db_url("claims").replace("+asyncpg", ""))
        try:
            view = dict(await conn.fetch(
                "SELECT b.member_id, h.holder_member_id FROM beneficiaries b JOIN contract_holders h USING (contract_number)"))
            lateral = dict(await conn.fetch("SELECT b.member_id, h.holder_member_id FROM beneficiaries b" + settlement.HOLDER_OF_B))
            found = {p.member_id: (await settlement.beneficiary(conn, p.member_id)).holder_member_id
                     for p in [*child_first, *holder_first]}
            by_number = await settlement.beneficiaries_by_number(conn, [p.member.membership_number for p in child_first])
            return view, lateral, found, by_number
        finally:
            await conn.close()

    view, lateral, found, by_number = asyncio.run(run())
    assert lateral == view and len(view) >= 4
    ines = child_first[1].member_id
    assert [found[p.member_id] for p in child_first] == [ines, ines, ines]
    assert found[holder_first[0].member_id] == holder_first[0].member_id
    assert {b.holder_member_id for b in by_number.values()} == {ines} and len(by_number) == 3
