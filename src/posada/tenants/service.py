"""Finding and creating tenants."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg.rows import class_row

from posada.core.errors import InvalidInput, NotFound
from posada.core.text import slugify
from posada.db.pool import AsyncConn


@dataclass(frozen=True)
class Tenant:
    """A hotel (or hotel group) and the version of its knowledge."""

    id: int
    slug: str
    name: str
    knowledge_version: int


_COLUMNS = "id, slug, name, knowledge_version"

# What a slug may be (as the tenants table's CHECK says; 63 characters at most): routes
# check a slug given to them against it before any query.
SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
SLUG_MAX = 63


async def get_tenant(conn: AsyncConn, *, slug: str) -> Tenant:
    """The tenant with this slug, or NotFound."""
    async with conn.cursor(row_factory=class_row(Tenant)) as cur:
        await cur.execute(f"SELECT {_COLUMNS} FROM tenants WHERE slug = %s", (slug,))  # noqa: S608
        tenant = await cur.fetchone()
    if tenant is None:
        raise NotFound(f"unknown hotel {slug!r}")
    return tenant


async def ensure_tenant(conn: AsyncConn, *, slug: str, name: str | None = None) -> Tenant:
    """The tenant with this slug, created if missing; `name`, when given, is updated."""
    if slugify(slug) != slug:
        raise InvalidInput(f"tenant slug {slug!r} must be lowercase letters, digits and hyphens")
    async with conn.cursor(row_factory=class_row(Tenant)) as cur:
        await cur.execute(
            f"""INSERT INTO tenants (slug, name) VALUES (%(slug)s, %(name)s)
                ON CONFLICT (slug) DO UPDATE
                SET name = coalesce(%(new_name)s, tenants.name)
                RETURNING {_COLUMNS}""",  # noqa: S608
            {"slug": slug, "name": name or slug.replace("-", " ").title(), "new_name": name},
        )
        tenant = await cur.fetchone()
    assert tenant is not None
    return tenant


async def get_unit_id(conn: AsyncConn, *, tenant: Tenant, slug: str) -> int:
    """The id of the tenant's unit with this slug, or NotFound."""
    cur = await conn.execute(
        "SELECT id FROM units WHERE tenant_id = %s AND slug = %s", (tenant.id, slug)
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"unknown unit {slug!r} in {tenant.slug!r}")
    return int(row[0])


async def list_public_units(conn: AsyncConn, *, tenant_id: int) -> list[dict[str, object]]:
    """The tenant's units as anyone may see them (name, type, capacity), by name."""
    cur = await conn.execute(
        """SELECT slug, name, unit_type, capacity FROM units
           WHERE tenant_id = %s ORDER BY name, slug""",
        (tenant_id,),
    )
    return [
        {"slug": slug, "name": name, "unit_type": unit_type, "capacity": capacity}
        for slug, name, unit_type, capacity in await cur.fetchall()
    ]
