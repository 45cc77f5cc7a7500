"""Answer-quality benchmark: retrieval recall, answer accuracy and leaks on a labelled set.

Loads the demo hotel (Hotel Casa Azul) and a second hotel (Villa Arena, from
bench/labels/other-hotel) into a fresh embedded PostgreSQL, asks every question of
bench/labels/questions.yaml as a guest of the given unit, and measures:

- top-3 retrieval recall with fused, vector-only and full-text-only ranking;
- accuracy of the answer the pipeline gives (`answer_question`, exactly as served);
- leaks: another unit's or another hotel's private facts in an answer or a retrieved row;
- the FAQ layer (answers it gave, and how many of those were wrong);
- hard negatives (questions that come in pairs with similar wording, different answers).

A measurement, not a test: it exits 0 whatever the figures, and prints whether the targets
are met. Settings come from `POSADA_*` variables as usual, so thresholds can be tried with
e.g. `POSADA_MIN_SIMILARITY=0.45 .venv/bin/python bench/quality.py`; `--data-dir` reuses an
already loaded database (ingest is idempotent).

    .venv/bin/python bench/quality.py [--data-dir DIR] [--json FILE] [--show-failures]
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import dataclasses
import json
import logging
import re
import shutil
import statistics
import sys
import tempfile
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rich.console import Console
from rich.table import Table

from posada.answers.extractive import NO_INFORMATION, Thresholds, is_relevant
from posada.answers.pipeline import answer_question
from posada.answers.turn import fusion_weights
from posada.core.config import Settings
from posada.core.language import detect_language
from posada.db.pool import AsyncConn
from posada.demo import DEMO_SLUG, load_demo, render_reservations
from posada.guests.service import import_reservations
from posada.knowledge.ingest import IngestReport, ingest_folder
from posada.knowledge.retrieval import Hit, Retrieved, Visibility, retrieve
from posada.providers.types import Embedder, UsageHook, Vectors
from posada.runtime import Runtime
from posada.tenants.service import ensure_tenant

HERE = Path(__file__).resolve().parent
QUESTIONS = HERE / "labels" / "questions.yaml"
OTHER_HOTEL = HERE / "labels" / "other-hotel"
OTHER_HOTEL_NAME = "Villa Arena"

TOP = 3
MODES: dict[str, tuple[float, float]] = {
    "fused": (1.0, 1.0),  # replaced per question by the language weights the pipeline uses
    "vector": (1.0, 0.0),
    "fts": (0.0, 1.0),
}
KINDS = ("faq", "hotel", "unit", "tourism", "unanswerable", "cross_unit", "cross_tenant")
CROSS_KINDS = ("cross_unit", "cross_tenant")
TARGET_RECALL = 0.90
TARGET_ACCURACY = 0.80


# --------------------------------------------------------------------------- the labelled set


@dataclass(frozen=True)
class Question:
    """One labelled question."""

    id: str
    question: str
    lang: str
    unit: str
    kind: str
    expect: tuple[str, ...]
    pair: str | None
    target_unit: str | None


@dataclass(frozen=True)
class LabelSet:
    """The whole labelled set."""

    tenant: str
    private_facts: dict[str, tuple[str, ...]]
    other_tenant_slug: str
    other_tenant_facts: tuple[str, ...]
    questions: list[Question]


def _strings(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError(f"{where}: expected a list of strings")
    return tuple(str(v) for v in value)


def load_labels(path: Path) -> LabelSet:
    """Parse and check questions.yaml."""
    raw = yaml.safe_load(path.read_text("utf-8"))
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: not a mapping")
    facts_raw = raw.get("private_facts") or {}
    if not isinstance(facts_raw, dict):
        raise ValueError(f"{path}: private_facts must be a mapping")
    private = {str(k): _strings(v, f"private_facts.{k}") for k, v in facts_raw.items()}
    other = raw.get("other_tenant") or {}
    if not isinstance(other, dict):
        raise ValueError(f"{path}: other_tenant must be a mapping")
    questions: list[Question] = []
    seen: set[str] = set()
    for item in raw.get("questions") or []:
        if not isinstance(item, dict):
            raise ValueError(f"{path}: every question must be a mapping")
        q = Question(
            id=str(item["id"]),
            question=str(item["question"]),
            lang=str(item["lang"]),
            unit=str(item["unit"]),
            kind=str(item["kind"]),
            expect=_strings(item.get("expect") or [], f"{item['id']}.expect"),
            pair=str(item["pair"]) if item.get("pair") is not None else None,
            target_unit=str(item["target_unit"]) if item.get("target_unit") else None,
        )
        if q.id in seen:
            raise ValueError(f"{path}: duplicate id {q.id}")
        if q.kind not in KINDS:
            raise ValueError(f"{path}: {q.id} has unknown kind {q.kind!r}")
        if q.kind == "cross_unit" and q.target_unit not in private:
            raise ValueError(f"{path}: {q.id} needs a target_unit listed in private_facts")
        seen.add(q.id)
        questions.append(q)
    return LabelSet(
        tenant=str(raw.get("tenant", DEMO_SLUG)),
        private_facts=private,
        other_tenant_slug=str(other.get("slug", "villa-arena")),
        other_tenant_facts=_strings(other.get("private_facts") or [], "other_tenant"),
        questions=questions,
    )


# --------------------------------------------------------------------------- matching


def normalise(text: str) -> str:
    """Casefolded, accents stripped (NFKD, combining marks dropped)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def found(text: str, needles: Iterable[str]) -> list[str]:
    """The needles that occur in `text`, both normalised."""
    hay = normalise(text)
    return [n for n in needles if normalise(n) in hay]


def hit_text(hit: Hit) -> str:
    """What a retrieved row says: its heading (or FAQ question) and its text."""
    return f"{hit.heading}\n{hit.text}"


NO_INFO_NORMALISED = {normalise(v).strip() for v in NO_INFORMATION.values()}


def is_no_information(answer: str) -> bool:
    """Whether the answer is the "I don't have that information" reply."""
    return normalise(answer).strip() in NO_INFO_NORMALISED


# --------------------------------------------------------------------------- running


class MemoEmbedder:
    """Embeds each distinct text once, so the pipeline reuses the benchmark's embedding."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.provider = inner.provider
        self.model = inner.model
        self.dimensions = inner.dimensions
        self.on_usage: UsageHook | None = None  # the benchmark counts nothing
        self._memo: dict[str, Vectors] = {}

    async def embed_batch(self, texts: Sequence[str]) -> Vectors:
        """One row per text, computed only for texts not seen before."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._memo]
        if todo:
            vectors = await self.inner.embed_batch(todo)
            for text, vector in zip(todo, vectors, strict=True):
                self._memo[text] = vector
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        return np.stack([self._memo[t] for t in texts]).astype(np.float32)


@dataclass(frozen=True)
class HitView:
    """What the report keeps of one retrieved row."""

    heading: str
    score: float
    similarity: float
    coverage: float
    question_coverage: float
    scope: str

    @classmethod
    def of(cls, hit: Hit) -> HitView:
        return cls(
            hit.heading,
            round(hit.score, 5),
            round(hit.similarity, 4),
            round(hit.coverage, 3),
            round(hit.question_coverage, 3),
            hit.scope,
        )


@dataclass
class Outcome:
    """Everything measured for one question."""

    q: Question
    answer: str
    layer: str
    correct: bool
    recall: dict[str, bool | None]  # per mode; None when the question has no expect
    top: dict[str, list[HitView]]  # top-3 chunks per mode
    answer_leaks: list[str]  # private facts of others in the answer
    retrieval_leaks: list[str]  # private facts of others in any retrieved row
    # 1-based rank of the first chunk holding an expect string, in the k=retrieval_k lookup
    expect_rank_k: int | None
    chunks_k: list[HitView]  # the fused k=retrieval_k chunks the answer was drawn from
    faqs: list[HitView]  # FAQ candidates of that lookup
    faq_with_expect: list[HitView]  # of those, the ones whose answer holds an expect string
    lookup_ms: float
    sources: list[str]  # headings the answer came from
    hint: str = ""


def forbidden_facts(labels: LabelSet, q: Question) -> dict[str, str]:
    """Private fact -> whose it is, for every fact this guest must never see."""
    out: dict[str, str] = {}
    for unit, facts in labels.private_facts.items():
        if unit != q.unit:
            for fact in facts:
                out[fact] = unit
    for fact in labels.other_tenant_facts:
        out[fact] = labels.other_tenant_slug
    return out


def judge(labels: LabelSet, q: Question, answer: str) -> bool:
    """Whether `answer` is right for `q`."""
    if q.expect:
        return bool(found(answer, q.expect))
    if q.kind == "unanswerable":
        return is_no_information(answer)
    if q.kind == "cross_unit":
        assert q.target_unit is not None
        return not found(answer, labels.private_facts[q.target_unit])
    if q.kind == "cross_tenant":
        return not found(answer, labels.other_tenant_facts)
    raise ValueError(f"{q.id}: kind {q.kind} needs expect strings")


async def load_everything(runtime: Runtime, console: Console, other_slug: str) -> None:
    """The demo hotel, tourism listings and reservations, plus the second hotel."""
    started = time.perf_counter()
    demo = await load_demo(runtime)
    async with runtime.pool.connection() as conn:
        tenant = await ensure_tenant(conn, slug=other_slug, name=OTHER_HOTEL_NAME)
    other = await ingest_folder(
        pool=runtime.pool,
        embedder=runtime.embedder,
        faq_embedder=runtime.query_embedder,
        root=OTHER_HOTEL,
        tenant=tenant,
        prune=True,
    )
    csv_text = render_reservations(
        (OTHER_HOTEL / "reservations.csv").read_text("utf-8"), today=date.today()
    )
    async with runtime.pool.connection() as conn:
        await import_reservations(conn, tenant=tenant, csv_text=csv_text)
    reports: list[tuple[str, IngestReport]] = [
        ("demo hotel", demo.hotel),
        ("tourism", demo.tourism),
        (other_slug, other),
    ]
    for name, report in reports:
        for failure in report.failed:
            console.print(f"[yellow]ingest {name}: {failure}[/]")
    chunks = sum(r.chunks for _, r in reports)
    faqs = sum(r.faqs for _, r in reports)
    console.print(
        f"loaded: {chunks} chunks, {faqs} FAQ entries changed "
        f"in {time.perf_counter() - started:.1f} s"
    )


async def unit_ids(conn: AsyncConn, tenant_slug: str) -> tuple[int, dict[str, int]]:
    """The tenant's id and its units' ids by slug."""
    cur = await conn.execute(
        "SELECT t.id, u.slug, u.id FROM tenants t LEFT JOIN units u ON u.tenant_id = t.id "
        "WHERE t.slug = %s",
        (tenant_slug,),
    )
    rows = await cur.fetchall()
    if not rows:
        raise RuntimeError(f"tenant {tenant_slug!r} was not loaded")
    return int(rows[0][0]), {str(slug): int(uid) for _, slug, uid in rows if slug is not None}


def first_rank(hits: Sequence[Hit], expect: Sequence[str]) -> int | None:
    """1-based rank of the first row holding an expect string."""
    for rank, hit in enumerate(hits, start=1):
        if found(hit_text(hit), expect):
            return rank
    return None


async def measure(runtime: Runtime, labels: LabelSet, memo: MemoEmbedder) -> list[Outcome]:
    """Ask every question; collect what each retrieval mode and the answer did."""
    settings = runtime.settings
    async with runtime.pool.connection() as conn:
        tenant_id, units = await unit_ids(conn, labels.tenant)
    missing = sorted({q.unit for q in labels.questions} - set(units))
    if missing:
        raise RuntimeError(f"units not loaded for {labels.tenant}: {', '.join(missing)}")
    serving = dataclasses.replace(runtime, embedder=memo)  # same pool, embedding reused
    outcomes: list[Outcome] = []
    for q in labels.questions:
        visibility = Visibility(tenant_id=tenant_id, unit_id=units[q.unit])
        embedding = (await memo.embed_batch([q.question]))[0]
        by_mode: dict[str, Retrieved] = {}
        async with runtime.pool.connection() as conn:
            for mode, fixed in MODES.items():
                weights = fusion_weights(q.question, settings) if mode == "fused" else fixed
                by_mode[mode] = await retrieve(
                    conn,
                    visibility=visibility,
                    text=q.question,
                    embedding=embedding,
                    k=TOP,
                    candidates=settings.retrieval_candidates,
                    weights=weights,
                )
            # The lookup the answer is made from, for diagnosis.
            served = await retrieve(
                conn,
                visibility=visibility,
                text=q.question,
                embedding=embedding,
                k=settings.retrieval_k,
                candidates=settings.retrieval_candidates,
                weights=fusion_weights(q.question, settings),
            )
        answer = await answer_question(runtime=serving, visibility=visibility, question=q.question)

        forbidden = forbidden_facts(labels, q)
        answer_leaks = found(answer.text, forbidden)
        retrieval_leaks: set[str] = set()
        for got in [*by_mode.values(), served]:
            for hit in [*got.chunks, *got.faqs]:
                retrieval_leaks.update(found(hit_text(hit), forbidden))

        correct = judge(labels, q, answer.text)

        recall: dict[str, bool | None] = {
            mode: (bool(first_rank(got.chunks[:TOP], q.expect)) if q.expect else None)
            for mode, got in by_mode.items()
        }
        outcome = Outcome(
            q=q,
            answer=answer.text,
            layer=answer.layer,
            correct=correct,
            recall=recall,
            top={mode: [HitView.of(h) for h in got.chunks[:TOP]] for mode, got in by_mode.items()},
            answer_leaks=answer_leaks,
            retrieval_leaks=sorted(retrieval_leaks),
            expect_rank_k=first_rank(served.chunks, q.expect) if q.expect else None,
            chunks_k=[HitView.of(h) for h in served.chunks],
            faqs=[HitView.of(h) for h in served.faqs],
            faq_with_expect=[
                HitView.of(h) for h in served.faqs if q.expect and found(hit_text(h), q.expect)
            ],
            lookup_ms=answer.timings.get("lookup", 0.0),
            sources=[s.heading for s in answer.sources],
        )
        outcome.hint = diagnose(outcome, served, settings)
        outcomes.append(outcome)
    return outcomes


def _plain_numbers(text: str) -> str:
    """Normalised, thousands separators dropped: "780.000 COP" -> "780000 cop"."""
    return re.sub(r"(?<=\d)[.,](?=\d{3}\b)", "", normalise(text))


def diagnose(o: Outcome, served: Retrieved, settings: Settings) -> str:
    """A first guess at why an answer is wrong (empty when it is right)."""
    if o.correct and not o.answer_leaks:
        return ""
    if o.answer_leaks:
        return f"LEAK {', '.join(o.answer_leaks)}"
    best = served.chunks[0] if served.chunks else None
    best_s = f"sim={best.similarity:.2f} cov={best.coverage:.2f}" if best else "no chunks"
    if not o.q.expect:  # unanswerable
        if o.layer == "faq":
            return f"false FAQ hit: {o.sources[0] if o.sources else '?'}"
        return f"answered instead of declining (top chunk {best_s})"
    if o.layer == "faq":
        return f"FAQ layer picked the wrong entry: {o.sources[0] if o.sources else '?'}"
    guard = ""
    if o.faq_with_expect:
        f = o.faq_with_expect[0]
        guard = (
            f"; FAQ guard rejected {f.heading!r} "
            f"(qcov={f.question_coverage:.2f} cov={f.coverage:.2f} sim={f.similarity:.2f})"
        )
    if found(_plain_numbers(o.answer), [_plain_numbers(e) for e in o.q.expect]):
        return "expect phrased differently: the answer has it with another number format"
    rank = first_rank(served.chunks, o.q.expect)
    right = served.chunks[rank - 1] if rank is not None else None
    right_s = f"#{rank} sim={right.similarity:.2f} cov={right.coverage:.2f}" if right else ""
    language = detect_language(o.q.question)
    relevant = [
        h for h in served.chunks if is_relevant(h, Thresholds.of(settings), language=language)
    ]
    relevant_rank = first_rank(relevant, o.q.expect)
    if is_no_information(o.answer):
        if right is not None:
            return f"relevance threshold too strict (right chunk {right_s}){guard}"
        return f"declined, right chunk not retrieved (top {best_s}){guard}"
    if right is None:
        return f"right chunk not in fused top-{settings.retrieval_k}{guard}"
    if relevant_rank is None:
        return f"right chunk {right_s} below relevance threshold, answered from another{guard}"
    if relevant_rank == 1 or (relevant_rank == 2 and len(o.sources) == 2):
        shown = relevant[relevant_rank - 1]
        if not found(shown.text, o.q.expect):
            return "right chunk shown, but the expect string is only in its title (dropped)"
        return f"right chunk shown but expect string cut by trim(){guard}"
    return f"wrong chunk ranked first (right one {right_s}){guard}"


# --------------------------------------------------------------------------- figures


def ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def slices(outcomes: list[Outcome]) -> list[tuple[str, list[Outcome]]]:
    """Every group reported: all, per language, per kind, hard negatives."""
    groups: list[tuple[str, list[Outcome]]] = [("all", outcomes)]
    for lang in sorted({o.q.lang for o in outcomes}):
        groups.append((f"lang:{lang}", [o for o in outcomes if o.q.lang == lang]))
    for kind in KINDS:
        members = [o for o in outcomes if o.q.kind == kind]
        if members:
            groups.append((f"kind:{kind}", members))
    groups.append(("hard_negatives", [o for o in outcomes if o.q.pair is not None]))
    return groups


def group_figures(members: list[Outcome]) -> dict[str, Any]:
    labelled = [o for o in members if o.q.expect]
    out: dict[str, Any] = {
        "n": len(members),
        "n_with_expect": len(labelled),
        "recall_at_3": {
            mode: ratio(sum(bool(o.recall[mode]) for o in labelled), len(labelled))
            for mode in MODES
        },
        "correct": sum(o.correct for o in members),
        "accuracy": ratio(sum(o.correct for o in members), len(members)),
    }
    return out


def figures(
    outcomes: list[Outcome], settings: Settings, seconds: dict[str, float]
) -> dict[str, Any]:
    """All figures, as written to --json."""
    faq_answers = [o for o in outcomes if o.layer == "faq"]
    answerable = [o for o in outcomes if o.q.expect]
    pairs: dict[str, list[Outcome]] = {}
    for o in outcomes:
        if o.q.pair is not None:
            pairs.setdefault(o.q.pair, []).append(o)
    lookups = sorted(o.lookup_ms for o in outcomes)
    overall = group_figures(outcomes)
    answer_leaks = sum(bool(o.answer_leaks) for o in outcomes)
    retrieval_leaks = sum(bool(o.retrieval_leaks) for o in outcomes)
    recall = overall["recall_at_3"]["fused"] or 0.0
    accuracy = overall["accuracy"] or 0.0
    passed = (
        recall >= TARGET_RECALL
        and accuracy >= TARGET_ACCURACY
        and answer_leaks == 0
        and retrieval_leaks == 0
    )
    return {
        "settings": {
            name: getattr(settings, name)
            for name in (
                "embedding_provider",
                "embedding_model",
                "retrieval_k",
                "retrieval_candidates",
                "vector_weight_es",
                "vector_weight_en",
                "min_similarity",
                "min_similarity_es",
                "min_coverage",
                "faq_min_coverage",
                "faq_min_similarity",
            )
        },
        "groups": {name: group_figures(members) for name, members in slices(outcomes)},
        "leaks": {
            "answers": answer_leaks,
            "retrieval_questions": retrieval_leaks,
            "retrieval_facts": sorted({f for o in outcomes for f in o.retrieval_leaks}),
        },
        "faq_layer": {
            "answers": len(faq_answers),
            "wrong": sum(not o.correct for o in faq_answers),
        },
        "declined": {
            "answerable_declined": sum(is_no_information(o.answer) for o in answerable),
            "cross_declined": sum(
                is_no_information(o.answer) for o in outcomes if o.q.kind in CROSS_KINDS
            ),
            "cross_total": sum(o.q.kind in CROSS_KINDS for o in outcomes),
        },
        "hard_negative_pairs": {
            "pairs": len(pairs),
            "both_correct": sum(all(o.correct for o in group) for group in pairs.values()),
        },
        "lookup_ms": {
            "median": round(statistics.median(lookups), 2) if lookups else None,
            "p95": round(lookups[int(0.95 * (len(lookups) - 1))], 2) if lookups else None,
        },
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "targets": {
            "recall": TARGET_RECALL,
            "accuracy": TARGET_ACCURACY,
            "leaks": 0,
            "pass": passed,
        },
        "questions": [question_record(o) for o in outcomes],
    }


def question_record(o: Outcome) -> dict[str, Any]:
    return {
        "id": o.q.id,
        "question": o.q.question,
        "lang": o.q.lang,
        "unit": o.q.unit,
        "kind": o.q.kind,
        "expect": list(o.q.expect),
        "pair": o.q.pair,
        "target_unit": o.q.target_unit,
        "correct": o.correct,
        "layer": o.layer,
        "answer": o.answer,
        "sources": o.sources,
        "hint": o.hint,
        "recall_at_3": o.recall,
        "expect_rank": o.expect_rank_k,
        "answer_leaks": o.answer_leaks,
        "retrieval_leaks": o.retrieval_leaks,
        "top3": {mode: [dataclasses.asdict(h) for h in hits] for mode, hits in o.top.items()},
        "chunks": [dataclasses.asdict(h) for h in o.chunks_k],
        "faqs": [dataclasses.asdict(h) for h in o.faqs],
        "lookup_ms": o.lookup_ms,
    }


# --------------------------------------------------------------------------- printing


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def print_report(console: Console, report: dict[str, Any]) -> None:
    s = report["settings"]
    table = Table(
        title=(
            f"k={s['retrieval_k']} candidates={s['retrieval_candidates']} "
            f"min_similarity={s['min_similarity']} min_coverage={s['min_coverage']} "
            f"faq_min_coverage={s['faq_min_coverage']} faq_min_similarity="
            f"{s['faq_min_similarity']}"
        ),
        title_justify="left",
        caption="R@3: top-3 chunks hold an expected string (questions with expect only)",
        caption_justify="left",
    )
    table.add_column("slice")
    table.add_column("n", justify="right")
    table.add_column("exp", justify="right")
    for mode in MODES:
        table.add_column(f"R@3 {mode}", justify="right")
    table.add_column("ok", justify="right")
    table.add_column("accuracy", justify="right")
    names = list(report["groups"])
    for i, (name, g) in enumerate(report["groups"].items()):
        following = names[i + 1] if i + 1 < len(names) else ""
        table.add_row(
            name.split(":")[-1].replace("_", " ") if name != "hard_negatives" else "hard neg.",
            str(g["n"]),
            str(g["n_with_expect"]),
            *(pct(g["recall_at_3"][mode]) for mode in MODES),
            str(g["correct"]),
            pct(g["accuracy"]),
            end_section=name.split(":")[0] != following.split(":")[0],
        )
    console.print(table)
    leaks, faq, dec = report["leaks"], report["faq_layer"], report["declined"]
    pairs, secs, g = report["hard_negative_pairs"], report["seconds"], report["groups"]["all"]
    lines = [
        f"leaks: answers={leaks['answers']} retrieval={leaks['retrieval_questions']} question(s)"
        + (f" facts={leaks['retrieval_facts']}" if leaks["retrieval_facts"] else ""),
        f"FAQ layer: {faq['answers']} answers, {faq['wrong']} wrong (false FAQ hits)",
        f"declined: {dec['answerable_declined']} answerable question(s); "
        f"{dec['cross_declined']}/{dec['cross_total']} cross-unit/tenant",
        f"hard-negative pairs with both right: {pairs['both_correct']}/{pairs['pairs']}",
        f"lookup ms: median {report['lookup_ms']['median']} p95 {report['lookup_ms']['p95']}; "
        + " ".join(f"{k}={v}s" for k, v in secs.items()),
        f"TARGETS: recall>={TARGET_RECALL:.2f} accuracy>={TARGET_ACCURACY:.2f} leaks==0 -> "
        f"{'PASS' if report['targets']['pass'] else 'FAIL'} "
        f"(recall {pct(g['recall_at_3']['fused'])}, accuracy {pct(g['accuracy'])}, "
        f"leaks {leaks['answers'] + leaks['retrieval_questions']})",
    ]
    console.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)


def print_failures(console: Console, outcomes: list[Outcome]) -> None:
    wrong = [o for o in outcomes if not o.correct or o.answer_leaks or o.retrieval_leaks]
    console.print(f"\n{len(wrong)} failing question(s):", markup=False)
    for o in wrong:
        q = o.q
        recall = " ".join(
            f"{mode}={'y' if hit else 'n'}" for mode, hit in o.recall.items() if hit is not None
        )
        lines = [
            f"- {q.id} [{q.kind}/{q.lang}/{q.unit}{'/' + q.pair if q.pair else ''}] {q.question}",
            f"  expect: {list(q.expect) or '(none)'}  layer: {o.layer}  R@3: {recall or '-'}",
            f"  why?: {o.hint}",
            "  answer: " + o.answer[:200].replace("\n", " ⏎ "),
            "  top3 fused: "
            + " | ".join(
                f"{h.heading} (sim {h.similarity:.2f} cov {h.coverage:.2f})" for h in o.top["fused"]
            ),
        ]
        if o.faqs:
            lines.append(
                "  faq cands: "
                + " | ".join(
                    f"{h.heading} (sim {h.similarity:.2f} cov {h.coverage:.2f} "
                    f"qcov {h.question_coverage:.2f})"
                    for h in o.faqs
                )
            )
        if o.retrieval_leaks:
            lines.append(f"  RETRIEVAL LEAK: {o.retrieval_leaks}")
        console.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)


# --------------------------------------------------------------------------- main


async def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    labels = load_labels(QUESTIONS)
    settings = Settings(data_dir=args.data_dir, database_url=None)
    runtime = await Runtime.open(settings)
    seconds["open"] = time.perf_counter() - started
    try:
        mark = time.perf_counter()
        await load_everything(runtime, console, labels.other_tenant_slug)
        seconds["load"] = time.perf_counter() - mark
        mark = time.perf_counter()
        memo = MemoEmbedder(runtime.query_embedder)
        outcomes = await measure(runtime, labels, memo)
        seconds["questions"] = time.perf_counter() - mark
        seconds["total"] = time.perf_counter() - started
        report = figures(outcomes, settings, seconds)
        print_report(console, report)
        if args.show_failures:
            print_failures(console, outcomes)
        if args.json is not None:
            args.json.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", "utf-8")
            console.print(f"figures written to {args.json}", markup=False)
        return report
    finally:
        await runtime.close()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="posada data dir (embedded PostgreSQL); default: a fresh temporary one",
    )
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    parser.add_argument(
        "--show-failures", action="store_true", help="list every wrong answer with its sources"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    console = Console()
    if args.data_dir is None:
        temp = Path(tempfile.mkdtemp(prefix="posada-quality-"))
        args.data_dir = temp
        # Registered before the server starts, so it runs after the server's own
        # at-exit stop (at-exit handlers run last in, first out).
        atexit.register(shutil.rmtree, temp, ignore_errors=True)
    asyncio.run(run(args, console))
    return 0


if __name__ == "__main__":
    sys.exit(main())
