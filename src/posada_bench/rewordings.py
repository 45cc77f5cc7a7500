"""Real hotels in the benchmark, and guests who word their questions as nobody did before.

Repeated wordings flatter a cache: the same five phrasings asked again and again hit the
exact cache. A hotel's guests type every question their own way. So, when a labelled set
over real hotel documents is at hand (`bench/labels/real`, reading the documents from
`../shared/corpus` at run time), the benchmark also loads those hotels, gives each unit a
current stay, and adds sessions whose turns are rewordings of the set's test half:
yesterday's traffic asks each fact once, in its first wording; the measured run asks the
other wordings, each once, so every one of them is new to the caches. Their turns carry
the group `fresh:<fact>`, and the report gives their hit rate apart from the rest.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import yaml

from posada.guests.service import import_reservations
from posada.knowledge.ingest import ingest_folder
from posada.runtime import Runtime
from posada.tenants.service import ensure_tenant
from posada_bench.hotels import Stay
from posada_bench.workload import Session, Turn

FRESH = "fresh:"
HOTELS = {"simmerdown": "Simmer Down Guest House", "tucasamar": "Tu Casa en el Mar"}
TOURISM = "muva-tourism"
_ANSWERABLE = ("hotel", "unit", "tourism")


@dataclass(frozen=True)
class Fact:
    """One labelled fact of the test half: whose guest asks it, in which wordings."""

    id: str
    hotel: str
    unit: str | None
    wordings: list[str]


def load_facts(labels: Path, *, split: str = "test") -> list[Fact]:
    """The answerable facts of one split, with at least two wordings."""
    facts: list[Fact] = []
    for path in sorted(labels.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text("utf-8")) or {}
        for fact in raw.get("facts") or []:
            if fact.get("split") != split or fact.get("kind") not in _ANSWERABLE:
                continue
            wordings = list(dict.fromkeys(str(q["text"]) for q in fact["questions"]))
            if len(wordings) >= 2:
                unit = str(fact["unit"]) if fact.get("unit") else None
                facts.append(Fact(str(fact["id"]), str(fact["hotel"]), unit, wordings))
    return facts


async def load_real_hotels(runtime: Runtime, *, corpus: Path, today: date) -> list[Stay]:
    """Both hotels and the tourism listings, and one current stay per unit."""
    stays: list[Stay] = []
    for slug, name in HOTELS.items():
        async with runtime.pool.connection() as conn:
            tenant = await ensure_tenant(conn, slug=slug, name=name)
        await ingest_folder(
            pool=runtime.pool, embedder=runtime.embedder, root=corpus / slug, tenant=tenant
        )
        async with runtime.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT slug FROM units WHERE tenant_id = %s ORDER BY slug", (tenant.id,)
            )
            units = [str(row[0]) for row in await cur.fetchall()]
            lines = ["external_ref,unit,guest_name,phone_last4,check_in,check_out,status"]
            for number, unit in enumerate(units):
                check_in = today - timedelta(days=number % 3)
                phone = f"{7100 + number:04d}"
                lines.append(
                    f"RW-{slug}-{number},{unit},Guest {number},{phone},{check_in.isoformat()},"
                    f"{(today + timedelta(days=3)).isoformat()},checked_in"
                )
                stays.append(Stay(slug, unit, check_in, phone))
            await import_reservations(conn, tenant=tenant, csv_text="\n".join(lines) + "\n")
    await ingest_folder(
        pool=runtime.pool, embedder=runtime.embedder, root=corpus / TOURISM, tenant=None
    )
    return stays


def _stay_for(fact: Fact, stays: list[Stay], rng: random.Random) -> Stay | None:
    mine = [s for s in stays if s.tenant == fact.hotel and (fact.unit in (None, s.unit))]
    return rng.choice(mine) if mine else None


def rewording_sessions(
    facts: list[Fact], stays: list[Stay], *, seed: int, first: bool, per_session: int = 4
) -> list[Session]:
    """Sessions asking each fact's first wording (`first`), or each other wording once."""
    rng = random.Random(seed)
    asks: list[tuple[Stay, str, str]] = []
    for fact in facts:
        stay = _stay_for(fact, stays, rng)
        if stay is None:
            continue
        wordings = fact.wordings[:1] if first else fact.wordings[1:]
        asks += [(stay, text, fact.id) for text in wordings]
    if not first:
        rng.shuffle(asks)
    sessions: list[Session] = []
    by_stay: dict[Stay, list[Turn]] = {}
    for stay, text, fact_id in asks:
        group = fact_id if first else f"{FRESH}{fact_id}"
        turns = by_stay.setdefault(stay, [])
        turns.append(Turn(text, group, "rewording", False, 0.0 if not turns else 0.5))
        if len(turns) == per_session:
            sessions.append(Session(stay, "es", by_stay.pop(stay)))
    sessions += [Session(stay, "es", turns) for stay, turns in by_stay.items()]
    return sessions


def interleave(base: list[Session], extra: list[Session], *, every: int = 3) -> list[Session]:
    """`extra` sessions spread through `base`, one after every `every` of them."""
    out: list[Session] = []
    pending = iter(extra)
    for number, session in enumerate(base, start=1):
        out.append(session)
        if number % every == 0 and (added := next(pending, None)) is not None:
            out.append(added)
    out.extend(pending)
    return out
