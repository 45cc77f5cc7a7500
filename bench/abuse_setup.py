"""What bench/abuse.py and bench/bruteforce.py share: a fresh database, stays, servers.

The database is an embedded PostgreSQL in a temporary folder, opened by this process
(the demo hotel loaded in it), and the `posada serve` processes point at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from posada.core.config import Settings
from posada.demo import DEMO_SLUG, load_demo
from posada.guests.service import import_reservations
from posada.runtime import Runtime
from posada.tenants.service import Tenant, ensure_tenant
from posada_bench.servers import UNLIMITED, free_port, run_server

HEADER = "external_ref,unit,guest_name,phone_last4,check_in,check_out,status\n"


@dataclass(frozen=True)
class Stay:
    """How a guest logs in."""

    tenant: str
    check_in: date
    phone_last4: str

    def login(self, phone: str | None = None) -> dict[str, str]:
        """The login body (with other digits: a guess)."""
        return {
            "tenant": self.tenant,
            "check_in": self.check_in.isoformat(),
            "phone_last4": phone or self.phone_last4,
        }


@contextlib.asynccontextmanager
async def fresh_database(folder: Path) -> AsyncIterator[Runtime]:
    """An embedded PostgreSQL in `folder` with the demo hotel; closed (bounded) at the end."""
    runtime = await Runtime.open(Settings(_env_file=None, data_dir=folder))
    await load_demo(runtime, today=date.today())
    try:
        yield runtime
    finally:
        # Bounded: the knowledge-version listener may not stop on cancel (issue 12, part 6).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(runtime.close(), timeout=10)


async def demo_guests(runtime: Runtime, count: int) -> list[Stay]:
    """`count` current stays in the demo hotel (imported: phones 9000 + n, in today)."""
    today = date.today()
    async with runtime.pool.connection() as conn:
        tenant = await ensure_tenant(conn, slug=DEMO_SLUG)
        cur = await conn.execute(
            "SELECT slug FROM units WHERE tenant_id = %s ORDER BY id", (tenant.id,)
        )
        units = [r[0] for r in await cur.fetchall()]
        rows = [
            f"BENCH-{n},{units[n % len(units)]},Guest {n},{9000 + n:04d},{today},"
            f"{today + timedelta(days=3)},checked_in"
            for n in range(count)
        ]
        await import_reservations(conn, tenant=tenant, csv_text=HEADER + "\n".join(rows))
    return [Stay(DEMO_SLUG, today, f"{9000 + n:04d}") for n in range(count)]


async def target_hotel(runtime: Runtime, phone: str) -> Stay:
    """A new hotel with one guest, in today, whose digits are `phone` (fresh buckets)."""
    today = date.today()
    async with runtime.pool.connection() as conn:
        tenant: Tenant = await ensure_tenant(conn, slug=f"bf-{uuid.uuid4().hex[:8]}", name="Target")
        await conn.execute(
            "INSERT INTO units (tenant_id, slug, name) VALUES (%s, 'room', 'Room')", (tenant.id,)
        )
        row = f"T-1,room,Target Guest,{phone},{today},{today + timedelta(days=3)},checked_in"
        await import_reservations(conn, tenant=tenant, csv_text=HEADER + row)
    return Stay(tenant.slug, today, phone)


@contextlib.contextmanager
def posada(runtime: Runtime, log: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """`posada serve` on `runtime`'s database with these settings; yields its base URL."""
    port = free_port()
    environment = {
        **os.environ,
        "POSADA_DATABASE_URL": runtime.database_url,
        "POSADA_DATA_DIR": str(runtime.settings.data_dir),
        "POSADA_JWT_SECRET": "bench-secret-0123456789-0123456789-0123456789",
        **(env or {}),
    }
    url = f"http://127.0.0.1:{port}"
    with run_server(
        ["serve", "--port", str(port)], env=environment, ready=f"{url}/readyz", log=log
    ):
        yield url


__all__ = ["UNLIMITED", "Stay", "demo_guests", "fresh_database", "posada", "target_hotel"]
