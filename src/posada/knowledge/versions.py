"""The knowledge version's change notice: what an ingest tells every posada process.

An ingest bumps the versions of the tenants it changed and, in the same transaction,
sends `pg_notify(CHANNEL, notification(...))`; `cache.versions` listens for it.
"""

from __future__ import annotations

CHANNEL = "posada_knowledge"


def notification(changes: list[tuple[int, int]] | None) -> str:
    """The payload of a change: "id:version,..." or "*" (every tenant, e.g. tourism)."""
    if changes is None:
        return "*"
    return ",".join(f"{tenant}:{version}" for tenant, version in changes)
