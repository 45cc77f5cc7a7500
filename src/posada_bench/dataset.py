"""The benchmark's hotels in a database: the demo and generated ones, with current stays."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path

from pydantic import SecretStr

from posada.core.config import Settings
from posada.demo import load_demo
from posada.guests.service import import_reservations
from posada.knowledge.ingest import ingest_folder
from posada.runtime import Runtime
from posada.tenants.service import ensure_tenant
from posada_bench.hotels import Hotel, Stay, generate_hotel
from posada_bench.rewordings import load_real_hotels
from posada_bench.workload import demo_stays


def plan_hotels(*, count: int, seed: int, today: date) -> list[Hotel]:
    """The generated hotels of a workload."""
    return [generate_hotel(index=i, seed=seed, today=today) for i in range(count)]


async def load_hotels(
    runtime: Runtime, *, hotels: list[Hotel], folder: Path, today: date
) -> list[Stay]:
    """Load the demo and the generated hotels (idempotent); return every current stay."""
    await load_demo(runtime, today=today)
    for hotel in hotels:
        root = folder / hotel.slug
        for name, text in hotel.files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        async with runtime.pool.connection() as conn:
            tenant = await ensure_tenant(conn, slug=hotel.slug, name=hotel.name)
        await ingest_folder(
            pool=runtime.pool,
            embedder=runtime.embedder,
            faq_embedder=runtime.query_embedder,
            root=root,
            tenant=tenant,
            prune=True,
        )
        async with runtime.pool.connection() as conn:
            await import_reservations(conn, tenant=tenant, csv_text=hotel.reservations_csv)
    return demo_stays(today=today) + [stay for hotel in hotels for stay in hotel.stays]


async def forget_activity(runtime: Runtime) -> None:
    """Empty what earlier runs left (conversations, usage, cached answers): every run starts
    alike, with cold caches (a run's Redis keys have their own prefix)."""
    async with runtime.pool.connection() as conn:
        await conn.execute("TRUNCATE conversations, messages, embedding_usage, answer_cache")


@asynccontextmanager
async def bench_database(
    folder: Path,
    *,
    hotels: int,
    seed: int,
    say: Callable[[str], None],
    corpus: Path | None = None,
    database_url: str | None = None,
) -> AsyncIterator[tuple[Runtime, list[Stay], list[Hotel], list[Stay]]]:
    """A run's own embedded database under `folder` (or the server at `database_url`, a
    direct connection: migrations hold a session lock), with the demo and `hotels`
    generated hotels loaded (and the real hotels of `corpus`, whose stays come last) and
    earlier runs' activity forgotten; open while the block runs."""
    today = date.today()
    settings = Settings(
        _env_file=None,
        data_dir=folder / "data",
        database_url=SecretStr(database_url) if database_url else None,
        jwt_secret=SecretStr(secrets.token_urlsafe(48)),
        log_level="warning",
    )
    say(f"preparing the hotels in {folder} ...")
    runtime = await Runtime.open(settings)
    try:
        planned = plan_hotels(count=hotels, seed=seed, today=today)
        stays = await load_hotels(runtime, hotels=planned, folder=folder / "hotels", today=today)
        real: list[Stay] = []
        if corpus is not None:
            say(f"loading the real hotels of {corpus} ...")
            real = await load_real_hotels(runtime, corpus=corpus, today=today)
        await forget_activity(runtime)
        yield runtime, stays, planned, real
    finally:
        await runtime.close()
