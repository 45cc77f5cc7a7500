"""Answer quality on real hotels' documents, with guest questions written apart from the code.

Ingests `../shared/corpus` (Simmer Down and Tu Casa en el Mar as two hotels, the island's
tourism listings as shared content) into a fresh embedded PostgreSQL, then asks every
message of `bench/labels/real/*.yaml` as a guest of the labelled unit and measures, per
split (tune: what settings may be fitted on; test: what is reported):

- passages: the fact is in what the model would be sent (the top passages that pass the
  relevance gate, at most 5, as many as the prompt's token budget takes); also vector-only
  and full-text-only top 5 for comparison;
- answers: the extractive or FAQ answer (no LLM, no caches) holds the fact; a question
  the documents do not answer gets "I don't have that information";
- leaks: another unit's or hotel's private value in an answer or in any retrieved row;
- reuse: with the caches on, the first wording of each fact is answered, then every other
  wording is asked; how many are served from the answer caches or the FAQ, how many of
  those reuses are wrong, and any reuse across units or hotels.

A measurement, not a test: it exits 0 whatever the figures. Settings come from `POSADA_*`
variables as usual (`POSADA_EMBEDDING_MODEL=multilingual-e5-small`, thresholds).

    .venv/bin/python -m bench.real_quality [--split test] [--corpus DIR] [--json FILE]
        [--show-failures]
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import logging
import re
import shutil
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from posada.answers.extractive import NO_INFORMATION, Thresholds, is_relevant
from posada.answers.pipeline import answer_question
from posada.answers.prompt import build_prompt
from posada.answers.turn import fusion_weights
from posada.core.config import Settings
from posada.core.language import detect_language
from posada.db.pool import AsyncConn
from posada.knowledge.ingest import ingest_folder
from posada.knowledge.retrieval import Hit, Retrieved, Visibility, retrieve
from posada.providers.types import Vectors
from posada.runtime import Runtime
from posada.tenants.service import ensure_tenant

HERE = Path(__file__).resolve().parent
LABELS = HERE / "labels" / "real"
HOTELS = {"simmerdown": "Simmer Down Guest House", "tucasamar": "Tu Casa en el Mar"}
TOURISM = "muva-tourism"
PASSAGES = 5
ANSWERABLE = ("hotel", "unit", "tourism")
CROSS = ("cross_unit", "cross_tenant")
REUSE_LAYERS = ("exact", "semantic", "faq")
TARGETS = {"passages": 0.95, "answers": 0.85, "declined": 0.90, "reuse": 0.70}


@dataclass(frozen=True)
class Message:
    """One guest message of a labelled fact."""

    fact: str
    split: str
    kind: str
    hotel: str
    unit: str | None
    expect: tuple[str, ...]
    forbid: tuple[str, ...]
    text: str
    lang: str


def load_messages(folder: Path = LABELS) -> list[Message]:
    """Every message of every fact, in file order."""
    messages: list[Message] = []
    for path in sorted(folder.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text("utf-8")) or {}
        for fact in raw.get("facts") or []:
            for question in fact["questions"]:
                messages.append(
                    Message(
                        fact=str(fact["id"]),
                        split=str(fact["split"]),
                        kind=str(fact["kind"]),
                        hotel=str(fact["hotel"]),
                        unit=str(fact["unit"]) if fact.get("unit") else None,
                        expect=tuple(str(e) for e in fact.get("expect") or ()),
                        forbid=tuple(str(f) for f in fact.get("forbid") or ()),
                        text=str(question["text"]),
                        lang=str(question.get("lang", "es")),
                    )
                )
    return messages


def normalise(text: str) -> str:
    """Lower case, accents off, thousands separators off, one space between words."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    plain = re.sub(r"(?<=\d)[.,](?=\d{3}\b)", "", plain)
    return " ".join(plain.split())


def holds(text: str, needles: Iterable[str]) -> bool:
    """Whether any needle occurs in the text, both normalised."""
    hay = normalise(text)
    return any(normalise(n) in hay for n in needles if n.strip())


NO_INFO = {normalise(v) for v in NO_INFORMATION.values()}


def declined(answer: str) -> bool:
    """Whether the answer is the honest "I don't have that information"."""
    return normalise(answer) in NO_INFO


def hit_text(hit: Hit) -> str:
    return f"{hit.heading}\n{hit.question or ''}\n{hit.text}"


@dataclass
class Loaded:
    """The tenants and units the corpus gave."""

    tenants: dict[str, int]
    units: dict[str, dict[str, int]]  # hotel -> unit slug -> id

    def visibility(self, message: Message) -> Visibility:
        units = self.units[message.hotel]
        unit = units.get(message.unit) if message.unit else next(iter(units.values()), None)
        if message.unit and unit is None:
            raise RuntimeError(f"{message.fact}: unit {message.unit!r} not in {message.hotel}")
        return Visibility(tenant_id=self.tenants[message.hotel], unit_id=unit)


async def load_corpus(runtime: Runtime, corpus: Path) -> Loaded:
    """Both hotels and the tourism listings, ingested as a hotel would."""
    tenants: dict[str, int] = {}
    units: dict[str, dict[str, int]] = {}
    for slug, name in HOTELS.items():
        async with runtime.pool.connection() as conn:
            tenant = await ensure_tenant(conn, slug=slug, name=name)
        report = await ingest_folder(
            pool=runtime.pool, embedder=runtime.embedder, root=corpus / slug, tenant=tenant
        )
        for failure in report.failed:
            print(f"ingest {slug}: {failure}", file=sys.stderr)
        tenants[slug] = tenant.id
        async with runtime.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT slug, id FROM units WHERE tenant_id = %s ORDER BY id", (tenant.id,)
            )
            units[slug] = {str(s): int(i) for s, i in await cur.fetchall()}
    report = await ingest_folder(
        pool=runtime.pool, embedder=runtime.embedder, root=corpus / TOURISM, tenant=None
    )
    for failure in report.failed:
        print(f"ingest tourism: {failure}", file=sys.stderr)
    return Loaded(tenants, units)


async def loaded_corpus(runtime: Runtime) -> Loaded:
    """The tenants and units an earlier run loaded into this database (`--data-dir`)."""
    async with runtime.pool.connection() as conn:
        cur = await conn.execute("SELECT slug, id FROM tenants")
        tenants = {str(s): int(i) for s, i in await cur.fetchall()}
        cur = await conn.execute(
            "SELECT t.slug, u.slug, u.id FROM units u JOIN tenants t ON t.id = u.tenant_id"
        )
        units: dict[str, dict[str, int]] = {}
        for tenant, unit, uid in await cur.fetchall():
            units.setdefault(str(tenant), {})[str(unit)] = int(uid)
    return Loaded(tenants, units)


@dataclass
class Outcome:
    """What one message got."""

    message: Message
    passages: bool | None  # the fact among the passages the model would be sent
    vector: bool | None
    fts: bool | None
    answer: str
    layer: str
    right: bool
    leak: bool
    top: list[str]
    signals: list[tuple[float, float, bool]]  # per fused chunk: similarity, coverage, holds it


async def search(
    conn: AsyncConn,
    settings: Settings,
    visibility: Visibility,
    text: str,
    embedding: Vectors,
    *,
    k: int,
    weights: tuple[float, float] | None = None,
) -> Retrieved:
    """The pipeline's lookup for `text` (its fusion weights unless others are given)."""
    return await retrieve(
        conn,
        visibility=visibility,
        text=text,
        embedding=embedding,
        k=k,
        candidates=settings.retrieval_candidates,
        weights=weights or fusion_weights(text, settings),
        glossary=settings.fulltext_glossary,
        rrf_k=settings.rrf_k,
    )


async def measure_answers(
    runtime: Runtime, loaded: Loaded, messages: list[Message]
) -> list[Outcome]:
    """Retrieval and the offline answer for every message, caches off."""
    settings = runtime.settings
    outcomes: list[Outcome] = []
    for message in messages:
        visibility = loaded.visibility(message)
        embedding = (await runtime.query_embedder.embed_batch([message.text]))[0]
        language = detect_language(message.text)
        found: dict[str, list[Hit]] = {}
        async with runtime.pool.connection() as conn:
            for mode, weights in (
                ("fused", fusion_weights(message.text, settings)),
                ("vector", (1.0, 0.0)),
                ("fts", (0.0, 1.0)),
            ):
                got = await search(
                    conn, settings, visibility, message.text, embedding, k=PASSAGES, weights=weights
                )
                found[mode] = got.chunks + got.faqs
                if mode == "fused":
                    relevant = [
                        h
                        for h in got.chunks
                        if is_relevant(h, Thresholds.of(settings), language=language)
                    ][:PASSAGES]
                    # What the prompt's token budget lets through, as the pipeline builds it.
                    found["sent"] = build_prompt(
                        hotel=HOTELS[message.hotel],
                        question=message.text,
                        passages=relevant,
                        history=[],
                        budget=settings.prompt_budget_tokens,
                    ).passages
                    found["chunks"] = got.chunks
        answer = await answer_question(
            runtime=runtime, visibility=visibility, question=message.text
        )
        answerable = message.kind in ANSWERABLE

        def fact_in(
            hits: list[Hit], message: Message = message, answerable: bool = answerable
        ) -> bool | None:
            if not answerable:
                return None
            return any(holds(hit_text(h), message.expect) for h in hits)

        if answerable:
            right = holds(answer.text, message.expect)
        elif message.kind == "unanswerable":
            right = declined(answer.text)
        else:
            right = not holds(answer.text, message.forbid)
        rows = [h for hits in found.values() for h in hits]
        leak = bool(message.forbid) and (
            holds(answer.text, message.forbid)
            or any(holds(hit_text(h), message.forbid) for h in rows)
        )
        outcomes.append(
            Outcome(
                message=message,
                passages=fact_in(found["sent"]),
                vector=fact_in([h for h in found["vector"] if h.kind == "chunk"]),
                fts=fact_in([h for h in found["fts"] if h.kind == "chunk"]),
                answer=answer.text,
                layer=answer.layer,
                right=right,
                leak=leak and message.kind in CROSS,
                top=[
                    f"{h.heading} (sim {h.similarity:.2f} cov {h.coverage:.2f})"
                    for h in found["chunks"]
                ],
                signals=[
                    (round(h.similarity, 4), round(h.coverage, 4), fact_in([h]) is True)
                    for h in found["chunks"]
                ],
            )
        )
    return outcomes


@dataclass
class Reuse:
    """One rewording asked after its fact was answered."""

    message: Message
    layer: str
    right: bool
    first_right: bool  # whether the answer to the fact's first wording held the fact


async def measure_reuse(runtime: Runtime, loaded: Loaded, messages: list[Message]) -> list[Reuse]:
    """First wording of each fact answered (kept by the caches), then its other wordings."""
    by_fact: dict[str, list[Message]] = {}
    for message in messages:
        if message.kind in ANSWERABLE:
            by_fact.setdefault(message.fact, []).append(message)
    reuses: list[Reuse] = []
    for group in by_fact.values():
        seen: set[str] = set()
        first, *rest = group
        given = await answer_question(
            runtime=runtime, visibility=loaded.visibility(first), question=first.text
        )
        first_right = holds(given.text, first.expect)
        seen.add(normalise(first.text))
        for message in rest:
            if normalise(message.text) in seen:
                continue  # a distinct message only
            seen.add(normalise(message.text))
            answer = await answer_question(
                runtime=runtime, visibility=loaded.visibility(message), question=message.text
            )
            right = holds(answer.text, message.expect)
            reuses.append(Reuse(message, answer.layer, right, first_right))
    return reuses


async def cross_reuse(runtime: Runtime, loaded: Loaded, messages: list[Message]) -> int:
    """Answers reused by a guest of another unit or hotel that hold the other's private value."""
    leaks = 0
    for message in messages:
        if message.kind not in CROSS or not message.forbid:
            continue
        answer = await answer_question(
            runtime=runtime, visibility=loaded.visibility(message), question=message.text
        )
        if answer.layer in REUSE_LAYERS and holds(answer.text, message.forbid):
            leaks += 1
    return leaks


def rate(hits: Sequence[bool | None]) -> tuple[int, int]:
    counted = [h for h in hits if h is not None]
    return sum(bool(h) for h in counted), len(counted)


def pct(pair: tuple[int, int]) -> str:
    got, of = pair
    return f"{got}/{of} {100 * got / of:.1f}%" if of else "-"


def summarise(outcomes: list[Outcome], reuses: list[Reuse], cross_leaks: int) -> dict[str, Any]:
    """The figures of one split."""
    answerable = [o for o in outcomes if o.message.kind in ANSWERABLE]
    unanswerable = [o for o in outcomes if o.message.kind == "unanswerable"]
    reused = [r for r in reuses if r.layer in REUSE_LAYERS]
    figures: dict[str, Any] = {
        "messages": len(outcomes),
        "passages": rate([o.passages for o in answerable]),
        "vector_top5": rate([o.vector for o in answerable]),
        "fts_top5": rate([o.fts for o in answerable]),
        "answers": rate([o.right for o in answerable]),
        "declined": rate([o.right for o in unanswerable]),
        "leaks": sum(o.leak for o in outcomes),
        "reuse": (len(reused), len(reuses)),
        "reuse_wrong": (sum(not r.right for r in reused), len(reused)),
        # Of those, wrong although the fact's first answer was right: the reuse's own fault.
        "reuse_wrong_first_right": sum(not r.right and r.first_right for r in reused),
        "reuse_layers": dict(Counter(r.layer for r in reuses)),
        "cross_reuse_leaks": cross_leaks,
        "by_language": {},
        "by_kind": {},
    }
    for lang in sorted({o.message.lang for o in outcomes}):
        mine = [o for o in answerable if o.message.lang == lang]
        figures["by_language"][lang] = {
            "passages": rate([o.passages for o in mine]),
            "answers": rate([o.right for o in mine]),
        }
    for kind in sorted({o.message.kind for o in outcomes}):
        mine = [o for o in outcomes if o.message.kind == kind]
        figures["by_kind"][kind] = {
            "passages": rate([o.passages for o in mine]),
            "right": rate([o.right for o in mine]),
        }
    return figures


def report(name: str, f: dict[str, Any]) -> str:
    reuse_wrong = f["reuse_wrong"]
    lines = [
        f"== {name}: {f['messages']} messages",
        f"fact in the passages sent (top {PASSAGES}): {pct(f['passages'])}"
        f"   [vector-only top 5: {pct(f['vector_top5'])}, full-text-only: {pct(f['fts_top5'])}]",
        f"extractive/FAQ answer holds the fact: {pct(f['answers'])}",
        f"unanswerable declined: {pct(f['declined'])}",
        f"rewordings reused (cache or FAQ): {pct(f['reuse'])}  layers {f['reuse_layers']}",
        f"wrong reuses: {pct(reuse_wrong)} ({f['reuse_wrong_first_right']} where the first "
        f"answer was right); across units/hotels: {f['cross_reuse_leaks']}",
        f"leaks: {f['leaks']}",
    ]
    for lang, g in f["by_language"].items():
        lines.append(f"  {lang}: passages {pct(g['passages'])}  answers {pct(g['answers'])}")
    for kind, g in f["by_kind"].items():
        lines.append(f"  {kind}: passages {pct(g['passages'])}  right {pct(g['right'])}")
    return "\n".join(lines)


def failures(outcomes: list[Outcome], reuses: list[Reuse]) -> str:
    lines = []
    for o in outcomes:
        if o.right and o.passages is not False and not o.leak:
            continue
        m = o.message
        lines += [
            f"- {m.fact} [{m.split}/{m.kind}/{m.lang}/{m.hotel}/{m.unit}] {m.text}",
            f"  expect {list(m.expect) or '-'} passages={o.passages} layer={o.layer} leak={o.leak}",
            "  answer: " + o.answer[:240].replace("\n", " ⏎ "),
            "  top: " + " | ".join(o.top[:5]),
        ]
    for r in reuses:
        if r.layer in REUSE_LAYERS and not r.right:
            lines.append(f"- WRONG REUSE {r.message.fact} ({r.layer}): {r.message.text}")
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    messages = [m for m in load_messages(args.labels) if args.split in ("both", m.split)]
    base = Settings(data_dir=args.data_dir, database_url=None)
    off = base.model_copy(update={"answer_cache": False, "semantic_cache": False})
    started = time.perf_counter()
    runtime = await Runtime.open(off)
    try:
        loaded = await load_corpus(runtime, args.corpus)
        loaded_s = time.perf_counter() - started
        outcomes = await measure_answers(runtime, loaded, messages)
    finally:
        await runtime.close()
    reuses: dict[str, list[Reuse]] = {split: [] for split in ("tune", "test")}
    cross: dict[str, int] = {"tune": 0, "test": 0}
    runtime = await Runtime.open(base)
    try:
        async with runtime.pool.connection() as conn:
            # This run's database may be an earlier run's (--data-dir): its answers go.
            await conn.execute("TRUNCATE answer_cache")
        for split in sorted({m.split for m in messages} if args.reuse else ()):
            asked = [m for m in messages if m.split == split]
            reuses[split] = await measure_reuse(runtime, loaded, asked)
            cross[split] = await cross_reuse(runtime, loaded, asked)
    finally:
        await runtime.close()
    result: dict[str, Any] = {
        "embedding_model": base.embedding_model,
        "load_s": round(loaded_s, 1),
        "seconds": round(time.perf_counter() - started, 1),
    }
    for split in sorted({m.split for m in messages}):
        mine = [o for o in outcomes if o.message.split == split]
        result[split] = summarise(mine, reuses[split], cross[split])
        if args.details:
            result[f"{split}_details"] = [
                {"fact": o.message.fact, "kind": o.message.kind, "lang": o.message.lang,
                 "text": o.message.text, "right": o.right, "layer": o.layer,
                 "signals": o.signals}
                for o in mine
            ]  # fmt: skip
        print(report(split, result[split]))
        if args.show_failures:
            print(failures(mine, reuses[split]))
    total = result["seconds"]
    print(f"model {base.embedding_model}; corpus loaded in {loaded_s:.0f} s; all {total} s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--split", choices=("tune", "test", "both"), default="both")
    parser.add_argument("--corpus", type=Path, default=HERE.parent.parent / "shared" / "corpus")
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--show-failures", action="store_true")
    parser.add_argument("--no-reuse", dest="reuse", action="store_false", help="skip reuse")
    parser.add_argument("--details", action="store_true", help="per-message signals in --json")
    args = parser.parse_args(argv)
    if not prepare(args, prefix="posada-real-"):
        return 2
    asyncio.run(run(args))
    return 0


def prepare(args: argparse.Namespace, *, prefix: str) -> bool:
    """Check `args.corpus` and give `args.data_dir` a throwaway folder when none was named
    (removed at exit); False, said on stderr, when there is no corpus."""
    logging.basicConfig(level=logging.WARNING)
    if not args.corpus.is_dir():
        print(f"{args.corpus}: no corpus there (pass --corpus)", file=sys.stderr)
        return False
    if args.data_dir is None:
        temp = Path(tempfile.mkdtemp(prefix=prefix))
        args.data_dir = temp
        atexit.register(shutil.rmtree, temp, ignore_errors=True)
    return True


if __name__ == "__main__":
    sys.exit(main())
