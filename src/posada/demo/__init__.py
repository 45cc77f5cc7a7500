"""The demo hotel shipped with posada: Hotel Casa Azul, fictional, also the tests' data."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources
from pathlib import Path

from posada.guests.service import ImportReport, import_reservations
from posada.knowledge.ingest import IngestReport, Progress, ingest_folder
from posada.runtime import Runtime
from posada.tenants.service import ensure_tenant

DEMO_SLUG = "casa-azul"
DEMO_NAME = "Hotel Casa Azul"


def demo_path(name: str) -> Path:
    """A folder or file of the shipped demo."""
    return Path(str(resources.files("posada.demo") / name))


def render_reservations(template: str, *, today: date) -> str:
    """The demo's reservations CSV with its day offsets turned into dates around `today`."""
    reader = csv.DictReader(io.StringIO(template))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(reader.fieldnames or []))
    writer.writeheader()
    for row in reader:
        for column in ("check_in", "check_out"):
            row[column] = (today + timedelta(days=int(row[column]))).isoformat()
        writer.writerow(row)
    return out.getvalue()


@dataclass(frozen=True)
class DemoStay:
    """A demo reservation as its guest logs in."""

    unit: str
    check_in: date
    phone_last4: str


def current_demo_stays(*, today: date | None = None) -> list[DemoStay]:
    """The demo's stays under way on `today` (checked in, not yet out, not cancelled)."""
    today = today or date.today()
    rows = csv.DictReader(io.StringIO(demo_path("reservations.csv").read_text("utf-8")))
    return [
        DemoStay(row["unit"], today + timedelta(days=int(row["check_in"])), row["phone_last4"])
        for row in rows
        if row["status"] != "cancelled" and int(row["check_in"]) <= 0 < int(row["check_out"])
    ]


@dataclass(frozen=True)
class DemoReport:
    """What loading the demo did."""

    hotel: IngestReport
    tourism: IngestReport
    reservations: ImportReport


async def load_demo(
    runtime: Runtime,
    *,
    slug: str = DEMO_SLUG,
    today: date | None = None,
    progress: Progress | None = None,
) -> DemoReport:
    """Load (or refresh) the demo hotel, its tourism listings and its reservations."""
    async with runtime.pool.connection() as conn:
        tenant = await ensure_tenant(conn, slug=slug, name=DEMO_NAME)
    hotel = await ingest_folder(
        pool=runtime.pool,
        embedder=runtime.embedder,
        faq_embedder=runtime.query_embedder,
        root=demo_path("hotel"),
        tenant=tenant,
        prune=True,
        progress=progress,
    )
    tourism = await ingest_folder(
        pool=runtime.pool,
        embedder=runtime.embedder,
        faq_embedder=runtime.query_embedder,
        root=demo_path("tourism"),
        tenant=None,
        progress=progress,
    )
    csv_text = render_reservations(
        demo_path("reservations.csv").read_text("utf-8"), today=today or date.today()
    )
    async with runtime.pool.connection() as conn:
        reservations = await import_reservations(conn, tenant=tenant, csv_text=csv_text)
    return DemoReport(hotel, tourism, reservations)
