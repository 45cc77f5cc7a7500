"""Reservation imports: one batched upsert, units by slug or name, all-or-nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from posada.core.errors import InvalidInput
from posada.guests.service import import_reservations
from posada.knowledge.ingest import ingest_folder
from posada.runtime import Runtime
from posada.tenants.service import Tenant
from tests.support.helpers import write_docs

HEADER = "external_ref,unit,guest_name,phone_last4,check_in,check_out,status\n"


@pytest.fixture
async def hotel(runtime: Runtime, new_tenant: Tenant, tmp_path: Path) -> Tenant:
    room = "---\ncategory: accommodations\nunit_name: {name}\n---\n# {name}\nHabitación.\n"
    write_docs(
        tmp_path,
        {
            "units/sol.md": room.format(name="Sol"),
            "units/luna-llena.md": room.format(name="Luna Llena"),
        },
    )
    await ingest_folder(
        pool=runtime.pool, embedder=runtime.embedder, root=tmp_path, tenant=new_tenant
    )
    return new_tenant


async def _rows(runtime: Runtime, tenant: Tenant) -> list[tuple[object, ...]]:
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT r.external_ref, u.slug, r.guest_name, r.status FROM reservations r "
            "JOIN units u ON u.id = r.unit_id WHERE r.tenant_id = %s ORDER BY 1",
            (tenant.id,),
        )
        return list(await cur.fetchall())


async def test_import_upserts_and_matches_units_by_slug_or_name(
    runtime: Runtime, hotel: Tenant
) -> None:
    csv_text = HEADER + (
        "R1,sol,Ana Ruiz,1234,2026-12-01,2026-12-04,confirmed\n"
        "R2,Luna Llena,Ben Cole,5678,2026-12-02,2026-12-03,checked_in\n"
    )
    async with runtime.pool.connection() as conn:
        first = await import_reservations(conn, tenant=hotel, csv_text=csv_text)
        again = await import_reservations(
            conn, tenant=hotel, csv_text=csv_text.replace("confirmed", "cancelled")
        )
    assert (first.inserted, first.updated) == (2, 0)
    assert (again.inserted, again.updated) == (0, 2)
    assert await _rows(runtime, hotel) == [
        ("R1", "sol", "Ana Ruiz", "cancelled"),
        ("R2", "luna-llena", "Ben Cole", "checked_in"),
    ]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("R9,marte,Eve,1111,2026-12-01,2026-12-02,confirmed", "line 3: unknown unit 'marte'"),
        ("R9,sol,Eve,11a1,2026-12-01,2026-12-02,confirmed", "line 3: phone_last4"),
        ("R9,sol,Eve,1111,01/12/2026,2026-12-02,confirmed", "line 3: check_in '01/12/2026'"),
        ("R9,sol,Eve,1111,2026-12-05,2026-12-02,confirmed", "line 3: check_out must be after"),
        ("R9,sol,Eve,1111,2026-12-01,2026-12-02,maybe", "line 3: status must be"),
        ("R1,sol,Eve,1111,2026-12-01,2026-12-02,confirmed", "line 3: external_ref 'R1' repeats"),
    ],
)
async def test_a_bad_row_is_reported_by_line_and_nothing_is_written(
    runtime: Runtime, hotel: Tenant, row: str, message: str
) -> None:
    csv_text = HEADER + "R1,sol,Ana Ruiz,1234,2026-12-01,2026-12-04,confirmed\n" + row + "\n"
    async with runtime.pool.connection() as conn:
        with pytest.raises(InvalidInput, match=message):
            await import_reservations(conn, tenant=hotel, csv_text=csv_text)
    assert await _rows(runtime, hotel) == []


async def test_missing_columns_are_reported(runtime: Runtime, hotel: Tenant) -> None:
    async with runtime.pool.connection() as conn:
        with pytest.raises(InvalidInput, match=r"missing column.*phone_last4"):
            await import_reservations(conn, tenant=hotel, csv_text="external_ref,unit\nR1,sol\n")
