"""Foundation benchmark: embedding, ingest, retrieval at two sizes, and the server's memory.

Runs on a fresh embedded PostgreSQL in a temporary data dir, which it deletes afterwards:

    .venv/bin/python bench/foundation.py [--json FILE] [--chunks 20000] [--repeat N]

1. Embedding latency of one short guest question, and of a batch of 40.
2. Ingest throughput of the demo hotel on an empty database, then the idempotent re-run.
3. Retrieval round trip (SQL only, pre-computed embeddings) at the demo's size and at
   `--chunks` total chunks of synthetic tenants, with EXPLAIN (ANALYZE, BUFFERS) at scale.
4. The real server (`posada serve`) on the same database: peak RSS over ~50 guest chats.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, cast

import httpx
import numpy as np
import psycopg
from psycopg import AsyncClientCursor
from rich.console import Console
from rich.table import Table

from posada.core.config import Settings
from posada.db.pool import AsyncConn
from posada.demo import DEMO_SLUG, load_demo
from posada.knowledge.ingest import ingest_folder
from posada.knowledge.retrieval import Visibility, retrieve
from posada.providers.types import Vectors
from posada.runtime import Runtime
from posada.tenants.service import get_tenant

# Rich wraps at 80 columns when not on a terminal; the table needs more.
console = Console(
    highlight=False,
    width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200,
)

# Short questions guests actually ask, in both languages; cycled to make up the samples.
QUESTIONS: tuple[str, ...] = (
    "¿Cuál es la clave del wifi?",
    "¿A qué hora es el desayuno?",
    "¿Cómo prendo el aire acondicionado?",
    "¿A qué hora es el check-out?",
    "¿Puedo dejar las maletas después de salir?",
    "¿Dónde puedo hacer snorkel cerca del hotel?",
    "¿Cuál es el código de la puerta?",
    "¿Hay agua caliente en la ducha?",
    "¿Cómo llego al ferry de Cayo Pelícano?",
    "¿Se aceptan mascotas?",
    "¿Me recomiendan un restaurante de mariscos?",
    "¿Cómo abro la caja fuerte?",
    "What is the wifi password?",
    "What time is breakfast served?",
    "How do I turn on the hot water?",
    "Is there parking at the hotel?",
    "Where is the nearest beach?",
    "Can I get a late check-out?",
    "How do I use the safe?",
    "Do you have towels for the beach?",
)

EMBED_SINGLE_SAMPLES = 100
EMBED_BATCH_SIZE = 40
EMBED_BATCH_RUNS = 5
RETRIEVAL_SAMPLES = 200
RETRIEVAL_WARMUP = 10
CHAT_SAMPLES = 50
CHUNKS_PER_TENANT = 400
UNITS_PER_TENANT = 8
CHUNKS_PER_DOCUMENT = 10
UNIT_CHUNK_SHARE = 0.2  # of a synthetic tenant's chunks, private to one of its units
SERVER_START_TIMEOUT = 180.0
SECTIONS = ("setup", "embedding", "ingest", "retrieval", "server")
INDEXES = (
    "chunks_embedding_idx",
    "chunks_tsv_idx",
    "chunks_visibility_idx",
    "faq_embedding_idx",
    "faq_visibility_idx",
)


# --------------------------------------------------------------------------- figures


@dataclass
class Row:
    """One line of the result table (and one entry of the JSON figures)."""

    key: str
    section: str
    measurement: str
    n: int | None = None
    median_ms: float | None = None
    p95_ms: float | None = None
    value: float | None = None
    unit: str = ""
    note: str = ""
    load: float | None = None  # 1-minute load average when recorded: other work skews timings


@dataclass
class Results:
    """Everything measured, in table order."""

    rows: list[Row] = field(default_factory=list)
    explain: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def add(self, row: Row) -> Row:
        if row.load is None and hasattr(os, "getloadavg"):
            row.load = round(os.getloadavg()[0], 2)
        self.rows.append(row)
        return row

    def timed(
        self, key: str, section: str, measurement: str, samples: Sequence[float], note: str = ""
    ) -> Row:
        """A row for a series of millisecond samples."""
        return self.add(
            Row(
                key,
                section,
                measurement,
                n=len(samples),
                median_ms=median(samples),
                p95_ms=p95(samples),
                note=note,
            )
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "meta": self.meta,
            "figures": {
                row.key: {k: v for k, v in asdict(row).items() if k not in ("key", "section")}
                for row in self.rows
            },
            "explain": self.explain,
        }


def median(samples: Sequence[float]) -> float:
    return float(np.median(np.asarray(samples, dtype=np.float64)))


def p95(samples: Sequence[float]) -> float:
    return float(np.percentile(np.asarray(samples, dtype=np.float64), 95))


def ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def cycle(items: Sequence[str], n: int) -> list[str]:
    return [items[i % len(items)] for i in range(n)]


def step(text: str) -> None:
    console.print(f"[bold cyan]▸[/bold cyan] {text}")


# --------------------------------------------------------------------------- 1. embedding


async def bench_embedding(runtime: Runtime, results: Results, repeat: int) -> None:
    embedder = runtime.embedder
    step(f"embedding: {embedder.provider}/{embedder.model}")
    for question in QUESTIONS[:5]:  # warm-up: first calls allocate and fill caches
        await embedder.embed_batch([question])

    singles: list[float] = []
    for question in cycle(QUESTIONS, EMBED_SINGLE_SAMPLES * repeat):
        start = time.perf_counter()
        await embedder.embed_batch([question])
        singles.append(ms_since(start))
    single = results.timed("embed_single", "embedding", "1 short question", singles)

    batch = cycle(QUESTIONS, EMBED_BATCH_SIZE)
    await embedder.embed_batch(batch)  # warm-up at this batch size
    runs: list[float] = []
    for _ in range(EMBED_BATCH_RUNS * repeat):
        start = time.perf_counter()
        await embedder.embed_batch(batch)
        runs.append(ms_since(start))
    batched = results.timed(
        "embed_batch40", "embedding", f"batch of {EMBED_BATCH_SIZE} questions", runs
    )
    assert single.median_ms is not None
    assert batched.median_ms is not None
    ratio = batched.median_ms / single.median_ms
    per_question = batched.median_ms / EMBED_BATCH_SIZE
    batched.note = f"{per_question:.2f} ms/question"
    results.add(
        Row(
            "embed_batch40_over_single",
            "embedding",
            f"batch {EMBED_BATCH_SIZE} / single (median)",
            value=ratio,
            unit="×",
            note=f"{EMBED_BATCH_SIZE / ratio:.1f}× the throughput of one-by-one",
        )
    )


# --------------------------------------------------------------------------- 2. ingest


async def bench_ingest(runtime: Runtime, results: Results) -> None:
    step("ingest: load_demo on the empty database, then again (nothing changed)")
    start = time.perf_counter()
    first = await load_demo(runtime)
    wall = time.perf_counter() - start
    rows = first.hotel.chunks + first.hotel.faqs + first.tourism.chunks + first.tourism.faqs
    ingest_seconds = first.hotel.seconds + first.tourism.seconds
    results.add(
        Row(
            "ingest_demo_fresh",
            "ingest",
            "demo, fresh database",
            n=rows,
            median_ms=ingest_seconds * 1000,
            value=rows / ingest_seconds,
            unit="chunks+faq/s",
            note=(
                f"{first.hotel.chunks + first.tourism.chunks} chunks + "
                f"{first.hotel.faqs + first.tourism.faqs} faq; load_demo wall {wall:.2f} s"
            ),
        )
    )
    start = time.perf_counter()
    second = await load_demo(runtime)
    wall_again = ms_since(start)
    changed = second.hotel.changed or second.tourism.changed
    results.add(
        Row(
            "ingest_demo_noop",
            "ingest",
            "demo again (idempotent no-op)",
            n=len(second.hotel.unchanged) + len(second.tourism.unchanged),
            median_ms=(second.hotel.seconds + second.tourism.seconds) * 1000,
            note=f"load_demo wall {wall_again:.1f} ms; "
            + ("CHANGED something!" if changed else "documents unchanged"),
        )
    )


BENCH_DOCUMENT = """---
title: "Novedades de la semana"
language: es
---

# Novedades de la semana

## Horario del gimnasio

El gimnasio del tercer piso abre de 6:00 a 22:00. Las toallas están junto a la entrada y
el entrenador personal atiende martes y jueves de 7:00 a 9:00 con reserva en recepción.

## Clase de yoga en la terraza

Todos los sábados a las 7:30 hay yoga gratuito en la terraza. Traiga agua; los tapetes los
presta el hotel. Si llueve, la clase pasa al salón de desayunos.

## Mercado de artesanos

El domingo de 9:00 a 14:00 hay mercado de artesanos en la plaza, a dos cuadras del hotel.
Aceptan efectivo y algunas tarjetas.
"""


async def bench_ingest_one(runtime: Runtime, results: Results, *, key: str, at: int) -> None:
    """Ingest one new three-section document for casa-azul, as a hotel's edit would."""
    folder = runtime.settings.data_dir / "bench-docs"
    folder.mkdir(exist_ok=True)
    path = folder / f"{key}.md"
    path.write_text(BENCH_DOCUMENT, encoding="utf-8")
    async with runtime.pool.connection() as conn:
        tenant = await get_tenant(conn, slug=DEMO_SLUG)
    start = time.perf_counter()
    report = await ingest_folder(
        pool=runtime.pool,
        embedder=runtime.embedder,
        faq_embedder=runtime.query_embedder,
        root=path,
        tenant=tenant,
    )
    wall = ms_since(start)
    results.add(
        Row(
            key,
            "ingest",
            f"one new document at {at:,} chunks",
            n=report.chunks + report.faqs,
            median_ms=report.seconds * 1000,
            note=f"{report.chunks} chunks + {report.faqs} faq; wall {wall:.0f} ms"
            + ("" if report.added else f"; NOT ADDED: {report.failed}"),
        )
    )


# --------------------------------------------------------------------------- 3. retrieval


class _CapturingConn:
    """Stands in for a connection: records the statement and values `retrieve()` sends."""

    def __init__(self) -> None:
        self.query: str | None = None
        self.params: dict[str, Any] | None = None

    async def execute(self, query: str, params: dict[str, Any] | None = None) -> _CapturingConn:
        self.query, self.params = query, params
        return self

    async def fetchall(self) -> list[tuple[Any, ...]]:
        return []


async def retrieval_statement(
    runtime: Runtime, visibility: Visibility, text: str, embedding: Vectors
) -> tuple[str, dict[str, Any]]:
    """The exact statement and parameters `retrieve()` runs, whatever retrieval.py does now."""
    capture = _CapturingConn()
    await retrieve(
        cast(AsyncConn, capture),
        visibility=visibility,
        text=text,
        embedding=embedding,
        k=runtime.settings.retrieval_k,
        candidates=runtime.settings.retrieval_candidates,
    )
    if capture.query is None or not isinstance(capture.params, dict):
        raise RuntimeError("retrieve() no longer runs one statement with named parameters")
    return capture.query, capture.params


async def time_retrieval(
    runtime: Runtime, visibility: Visibility, embeddings: Vectors, samples: int
) -> tuple[list[float], dict[str, Any]]:
    """Milliseconds per `retrieve()` on one held connection, and what the plan cache did."""
    settings = runtime.settings
    out: list[float] = []
    hits = 0
    async with runtime.pool.connection() as conn:
        before = await plan_counts(conn)
        for i in range(RETRIEVAL_WARMUP + samples):
            q = i % len(QUESTIONS)
            start = time.perf_counter()
            got = await retrieve(
                conn,
                visibility=visibility,
                text=QUESTIONS[q],
                embedding=embeddings[q],
                k=settings.retrieval_k,
                candidates=settings.retrieval_candidates,
            )
            elapsed = ms_since(start)
            if i >= RETRIEVAL_WARMUP:
                out.append(elapsed)
                hits += len(got.chunks)
        after = await plan_counts(conn)
    cache = {
        "generic_plans": after[0] - before[0],
        "custom_plans": after[1] - before[1],
        "chunks_per_query": hits / max(samples, 1),
    }
    return out, cache


async def plan_counts(conn: AsyncConn) -> tuple[int, int]:
    """(generic, custom) plans this session used for retrieval's prepared statement.

    psycopg prepares a statement on its 5th run; PostgreSQL then plans the next 5 runs with
    the values (custom plans) and may switch to one generic plan, which EXPLAIN with bound
    values never shows.
    """
    cur = await conn.execute(
        """SELECT coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0)
           FROM pg_prepared_statements WHERE statement LIKE %s""",
        ("%WITH q AS%",),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def guest_of(conn: AsyncConn, slug: str) -> Visibility:
    """A tenant and its first unit."""
    cur = await conn.execute(
        """SELECT t.id, min(u.id) FROM tenants t LEFT JOIN units u ON u.tenant_id = t.id
           WHERE t.slug = %s GROUP BY t.id""",
        (slug,),
    )
    row = await cur.fetchone()
    assert row is not None, slug
    return Visibility(tenant_id=int(row[0]), unit_id=None if row[1] is None else int(row[1]))


async def demo_guest(conn: AsyncConn) -> tuple[Visibility, str]:
    """casa-azul and the unit of a guest staying today (the first unit if nobody is)."""
    cur = await conn.execute(
        """SELECT r.tenant_id, r.unit_id, u.slug FROM reservations r
           JOIN tenants t ON t.id = r.tenant_id JOIN units u ON u.id = r.unit_id
           WHERE t.slug = %s AND r.check_in <= current_date AND current_date < r.check_out
             AND r.status <> 'cancelled' ORDER BY r.id LIMIT 1""",
        (DEMO_SLUG,),
    )
    row = await cur.fetchone()
    if row is None:
        return await guest_of(conn, DEMO_SLUG), "first unit"
    return Visibility(tenant_id=int(row[0]), unit_id=int(row[1])), str(row[2])


async def chunk_count(runtime: Runtime) -> int:
    async with runtime.pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM chunks")
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def bench_retrieval(
    runtime: Runtime,
    results: Results,
    *,
    key: str,
    label: str,
    visibility: Visibility,
    embeddings: Vectors,
    samples: int,
) -> dict[str, Any]:
    timings, cache = await time_retrieval(runtime, visibility, embeddings, samples)
    plan_note = f"{cache['generic_plans']} generic / {cache['custom_plans']} custom plans"
    results.timed(
        key,
        "retrieval",
        label,
        timings,
        note=f"{cache['chunks_per_query']:.1f} chunks/query; {plan_note}",
    )
    return cache


# ------------------------------------------------------------------ synthetic tenants


@dataclass(frozen=True)
class Corpus:
    """Words, headings and chunk lengths sampled from the demo, for realistic fake text."""

    words: list[str]
    headings: list[str]
    lengths: list[int]


_WORD = re.compile(r"[^\W\d_][\w'-]*", re.UNICODE)


async def demo_corpus(runtime: Runtime) -> Corpus:
    async with runtime.pool.connection() as conn:
        cur = await conn.execute("SELECT heading, content FROM chunks")
        rows = await cur.fetchall()
    words: list[str] = []
    lengths: list[int] = []
    headings: list[str] = []
    for heading, content in rows:
        found = _WORD.findall(str(content))
        words += found
        lengths.append(max(len(found), 5))
        headings.append(str(heading))
    return Corpus(words, headings, lengths)


def fake_text(rng: np.random.Generator, corpus: Corpus) -> tuple[str, str]:
    """A heading from the demo and a passage of demo words as long as a demo chunk."""
    n = int(rng.choice(corpus.lengths))
    picks = rng.integers(0, len(corpus.words), size=n)
    sentences: list[str] = []
    pos = 0
    while pos < n:
        size = int(rng.integers(6, 16))
        sentence = " ".join(corpus.words[i] for i in picks[pos : pos + size])
        sentences.append(sentence[:1].upper() + sentence[1:] + ".")
        pos += size
    heading = corpus.headings[int(rng.integers(0, len(corpus.headings)))]
    return heading, " ".join(sentences)


@dataclass(frozen=True)
class SyntheticDoc:
    tenant: int  # index into the tenant list
    unit: int | None  # index into that tenant's units, for unit-scoped documents
    source: str
    chunks: int


def plan_synthetic(total_new: int) -> tuple[int, list[SyntheticDoc]]:
    """How many tenants, and which documents of how many chunks each."""
    tenants = math.ceil(total_new / CHUNKS_PER_TENANT)
    docs: list[SyntheticDoc] = []
    for t in range(tenants):
        budget = min(CHUNKS_PER_TENANT, total_new - t * CHUNKS_PER_TENANT)
        unit_chunks = int(budget * UNIT_CHUNK_SHARE)
        per_unit = [unit_chunks // UNITS_PER_TENANT] * UNITS_PER_TENANT
        for u in range(unit_chunks % UNITS_PER_TENANT):
            per_unit[u] += 1
        for u, n in enumerate(per_unit):
            if n:
                docs.append(SyntheticDoc(t, u, f"manuals/unit-{u + 1}.md", n))
        hotel = budget - unit_chunks
        for d in range(math.ceil(hotel / CHUNKS_PER_DOCUMENT)):
            n = min(CHUNKS_PER_DOCUMENT, hotel - d * CHUNKS_PER_DOCUMENT)
            docs.append(SyntheticDoc(t, None, f"hotel/doc-{d + 1:03d}.md", n))
    return tenants, docs


async def load_synthetic(
    runtime: Runtime, total_chunks: int, corpus: Corpus, rng: np.random.Generator
) -> tuple[int, int, float, list[str]]:
    """Insert synthetic tenants until `chunks` holds `total_chunks` rows.

    Returns (tenants, chunks inserted, seconds, tenant slugs). Text comes from the demo's
    words; embeddings are random unit vectors (embedding 20,000 texts would take minutes).
    """
    existing = await chunk_count(runtime)
    total_new = total_chunks - existing
    if total_new <= 0:
        return 0, 0, 0.0, []
    n_tenants, docs = plan_synthetic(total_new)
    dim = runtime.settings.embedding_dim
    vectors = rng.standard_normal((total_new, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    slugs = [f"bench-hotel-{t + 1:03d}" for t in range(n_tenants)]

    start = time.perf_counter()
    async with runtime.pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            """INSERT INTO tenants (slug, name)
               SELECT * FROM unnest(%s::text[], %s::text[]) RETURNING id, slug""",
            (slugs, [f"Bench Hotel {t + 1}" for t in range(n_tenants)]),
        )
        tenant_ids = {str(slug): int(i) for i, slug in await cur.fetchall()}
        unit_rows = [
            (tenant_ids[slug], f"unit-{u + 1}", f"Unit {u + 1}")
            for slug in slugs
            for u in range(UNITS_PER_TENANT)
        ]
        cur = await conn.execute(
            """INSERT INTO units (tenant_id, slug, name)
               SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[])
               RETURNING id, tenant_id, slug""",
            [list(col) for col in zip(*unit_rows, strict=True)],
        )
        unit_ids = {(int(t), str(s)): int(i) for i, t, s in await cur.fetchall()}

        doc_rows = []
        for doc in docs:
            tenant_id = tenant_ids[slugs[doc.tenant]]
            unit_id = None if doc.unit is None else unit_ids[(tenant_id, f"unit-{doc.unit + 1}")]
            doc_rows.append(
                (
                    tenant_id,
                    "hotel" if unit_id is None else "unit",
                    unit_id,
                    doc.source,
                    doc.source.rsplit("/", 1)[-1].removesuffix(".md").replace("-", " ").title(),
                    "es" if rng.random() < 0.6 else "en",
                    rng.bytes(16).hex(),
                )
            )
        cur = await conn.execute(
            """INSERT INTO documents (tenant_id, scope, unit_id, source, title, language,
                                      content_hash)
               SELECT * FROM unnest(%s::bigint[], %s::text[], %s::bigint[], %s::text[],
                                    %s::text[], %s::text[], %s::text[])
               RETURNING id, tenant_id, source""",
            [list(col) for col in zip(*doc_rows, strict=True)],
        )
        doc_ids = {(int(t), str(s)): int(i) for i, t, s in await cur.fetchall()}

        row_no = 0
        async with (
            conn.cursor() as cur2,
            cur2.copy(
                """COPY chunks (document_id, tenant_id, scope, unit_id, ordinal, heading,
                                content, embedding) FROM STDIN (FORMAT BINARY)"""
            ) as copy,
        ):
            copy.set_types(["int8", "int8", "text", "int8", "int4", "text", "text", "vector"])
            for doc, (tenant_id, scope, unit_id, source, *_rest) in zip(
                docs, doc_rows, strict=True
            ):
                document_id = doc_ids[(tenant_id, source)]
                for ordinal in range(doc.chunks):
                    heading, content = fake_text(rng, corpus)
                    await copy.write_row(
                        (
                            document_id,
                            tenant_id,
                            scope,
                            unit_id,
                            ordinal,
                            heading,
                            content,
                            vectors[row_no],
                        )
                    )
                    row_no += 1
    seconds = time.perf_counter() - start
    return n_tenants, row_no, seconds, slugs


# --------------------------------------------------------------------------- EXPLAIN

_SCAN = re.compile(
    r"(Bitmap Index Scan on|Index Only Scan using|Index Scan using|Seq Scan on) (\w+)"
)


_SUMMARY = re.compile(r"(Index|Seq|Bitmap Heap) Scan|Index Cond|Planning Time|Execution Time")
_VECTOR_LITERAL = re.compile(r"'\[[-0-9.e,]+\]'::vector")
_COST = re.compile(r"\s*\(cost=[^)]*\)")
_ACTUAL = re.compile(r"\(actual time=[\d.]+\.\.([\d.]+) rows=([\d.]+) loops=(\d+)\)")


def plan_line(line: str) -> str:
    """A plan line without its cost estimate, indented by depth, actuals shortened."""
    depth = min((len(line) - len(line.lstrip())) // 6, 12)
    text = _COST.sub("", line.strip().removeprefix("->").strip())
    text = _ACTUAL.sub(lambda m: f"[{m[1]} ms, {float(m[2]):g} rows × {m[3]}]", text)
    text = _VECTOR_LITERAL.sub("'[…]'::vector", text)
    return "  " * depth + text


def plan_findings(plan: list[str]) -> dict[str, Any]:
    text = "\n".join(plan)
    scans = [f"{m[1]} {m[2]}" for m in _SCAN.finditer(text)]
    return {
        "uses": {name: name in text for name in INDEXES},
        "seq_scans": sorted({s.split()[-1] for s in scans if s.startswith("Seq Scan")}),
        "scans": scans,
        "summary": [plan_line(line) for line in plan if _SUMMARY.search(line)],
        "plan": plan,
    }


def sql_type(value: Any) -> str:
    """The SQL type to PREPARE a parameter with, from its Python value."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "float8"
    if isinstance(value, str):
        return "text"
    if isinstance(value, np.ndarray):
        return "vector"
    return "unknown"  # inferred from context, as for None


def positional(named_sql: str) -> tuple[str, list[str]]:
    """`%(name)s` placeholders as `$1..$n`, and the names in that order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    return re.sub(r"%\((\w+)\)s", number, named_sql).replace("%%", "%"), names


async def explain_retrieval(
    runtime: Runtime, visibility: Visibility, text: str, embedding: Vectors
) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of retrieval's statement: custom plan and generic plan.

    The custom plan is what PostgreSQL picks knowing the values (the first runs of a
    prepared statement); the generic one is what a prepared statement may settle on.
    """
    statement, params = await retrieval_statement(runtime, visibility, text, embedding)
    out: dict[str, Any] = {"question": text, "tenant_id": visibility.tenant_id}
    async with runtime.pool.connection() as conn:
        cur = await conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params, prepare=False)
        out["custom"] = plan_findings([str(row[0]) for row in await cur.fetchall()])

        sql, names = positional(statement)
        types = ", ".join(sql_type(params[name]) for name in names)
        try:
            await conn.execute(f"PREPARE posada_bench_retrieval ({types}) AS {sql}")
        except psycopg.Error as exc:
            out["generic_error"] = f"could not PREPARE the statement: {exc}"
            return out
        try:
            await conn.execute("SET plan_cache_mode = force_generic_plan")
            client = AsyncClientCursor(conn)
            await client.execute(
                "EXPLAIN (ANALYZE, BUFFERS) EXECUTE posada_bench_retrieval ("
                + ", ".join(["%s"] * len(names))
                + ")",
                [params[name] for name in names],
            )
            out["generic"] = plan_findings([str(row[0]) for row in await client.fetchall()])
        except psycopg.Error as exc:
            out["generic_error"] = f"EXPLAIN EXECUTE failed: {exc}"
        finally:
            await conn.execute("DEALLOCATE posada_bench_retrieval")
            await conn.execute("RESET plan_cache_mode")
    return out


async def try_explain(
    runtime: Runtime, visibility: Visibility, text: str, embedding: Vectors
) -> dict[str, Any]:
    """`explain_retrieval`, or the reason it failed: the timings still count."""
    try:
        return await explain_retrieval(runtime, visibility, text, embedding)
    except (psycopg.Error, RuntimeError, KeyError) as exc:
        return {"question": text, "tenant_id": visibility.tenant_id, "error": repr(exc)}


def print_findings(title: str, found: dict[str, Any]) -> None:
    console.print(f"\n[bold]{title}[/bold]  (tenant {found['tenant_id']}, {found['question']!r})")
    if "error" in found:
        console.print(f"  EXPLAIN failed: {found['error']}", markup=False)
        return
    for kind in ("custom", "generic"):
        if kind not in found:
            console.print(f"  {kind} plan: {found.get(f'{kind}_error', 'not run')}")
            continue
        plan = found[kind]
        if kind == "generic" and plan["scans"] == found["custom"]["scans"]:
            times = [line.strip() for line in plan["summary"] if "Time:" in line]
            console.print(f"  [bold]generic plan[/bold]: same scans as the custom plan; {times}")
            continue
        uses: dict[str, bool] = plan["uses"]
        marks = ", ".join(
            f"{name} {'[green]used[/green]' if used else '[red]not used[/red]'}"
            for name, used in uses.items()
        )
        console.print(f"  [bold]{kind} plan[/bold]: {marks}")
        if plan["seq_scans"]:
            console.print(f"    sequential scans on: {', '.join(plan['seq_scans'])}")
        for line in plan["summary"]:
            console.print(f"    │ {line}", soft_wrap=True, markup=False)


# --------------------------------------------------------------------------- 4. server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def posada_command() -> str:
    here = Path(sys.executable).parent / "posada"
    return str(here) if here.exists() else (shutil.which("posada") or "posada")


def rss_bytes(pid: int) -> int:
    """Current resident set size, or 0 when the process is gone."""
    try:
        import psutil  # type: ignore[import-untyped]

        return int(psutil.Process(pid).memory_info().rss)
    except Exception:
        return 0


def vm_hwm_bytes(pid: int) -> int | None:
    """The kernel's record of the process's peak RSS (Linux), in bytes."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(match[1]) * 1024 if match else None


class Sampler:
    """Samples a process's RSS in the background and keeps the peak."""

    def __init__(self, pid: int, every: float = 0.05) -> None:
        self.pid, self.every, self.peak, self.last = pid, every, 0, 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.last = rss_bytes(self.pid) or self.last
            self.peak = max(self.peak, self.last)
            await asyncio.sleep(self.every)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def stop_server(proc: asyncio.subprocess.Process) -> int | None:
    """SIGINT (uvicorn's graceful stop), then terminate, then kill; returns the exit code."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        if proc.returncode is not None:
            break
        proc.send_signal(sig)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), timeout=20)
    return proc.returncode


async def current_reservation(runtime: Runtime) -> tuple[date, str, str]:
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            """SELECT r.check_in, r.phone_last4, r.guest_name FROM reservations r
               JOIN tenants t ON t.id = r.tenant_id
               WHERE t.slug = %s AND r.check_in <= %s AND %s < r.check_out
                 AND r.status <> 'cancelled' ORDER BY r.id LIMIT 1""",
            (DEMO_SLUG, date.today(), date.today()),
        )
        row = await cur.fetchone()
    if row is None:
        raise RuntimeError("the demo has no reservation staying today")
    return row[0], str(row[1]), str(row[2])


async def wait_ready(client: httpx.AsyncClient, proc: asyncio.subprocess.Process) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < SERVER_START_TIMEOUT:
        if proc.returncode is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode} while starting")
        try:
            response = await client.get("/readyz", timeout=2)
            if response.status_code == 200:
                return time.perf_counter() - start
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the server was not ready after {SERVER_START_TIMEOUT:.0f} s")


async def bench_server(runtime: Runtime, results: Results, repeat: int, chunks: int) -> None:
    data_dir = runtime.settings.data_dir
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSADA_")}
    env |= {
        "POSADA_DATA_DIR": str(data_dir),
        "POSADA_LOG_LEVEL": "warning",
        "POSADA_EXPOSE_TIMINGS": "true",  # the layers and stages below come from the bodies
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }
    log_path = data_dir / "server.log"
    step(f"server: posada serve --port {port} on the same data dir (log: {log_path})")
    check_in, phone, guest_name = await current_reservation(runtime)
    with log_path.open("wb") as log:
        # cwd = the data dir, so that a developer's .env cannot point it elsewhere.
        proc = await asyncio.create_subprocess_exec(
            posada_command(),
            "serve",
            "--port",
            str(port),
            env=env,
            cwd=data_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    sampler = Sampler(proc.pid)
    sampler.start()
    exit_code: int | None = None
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            ready_s = await wait_ready(client, proc)
            rss_ready = rss_bytes(proc.pid)
            response = await client.post(
                "/api/guest/login",
                json={
                    "tenant": DEMO_SLUG,
                    "check_in": check_in.isoformat(),
                    "phone_last4": phone,
                },
            )
            response.raise_for_status()
            headers = {"Authorization": f"Bearer {response.json()['token']}"}
            latencies: list[float] = []
            stages: dict[str, list[float]] = {}
            layers: dict[str, int] = {}
            conversation: int | None = None
            for question in cycle(QUESTIONS, CHAT_SAMPLES * repeat):
                body: dict[str, Any] = {"message": question, "conversation_id": conversation}
                start = time.perf_counter()
                response = await client.post("/api/guest/chat", json=body, headers=headers)
                latencies.append(ms_since(start))
                response.raise_for_status()
                answer = response.json()
                conversation = int(answer["conversation_id"])
                for stage, ms in answer["timings"].items():
                    stages.setdefault(str(stage), []).append(float(ms))
                layers[answer["layer"]] = layers.get(answer["layer"], 0) + 1
            hwm = vm_hwm_bytes(proc.pid)
            rss_end = rss_bytes(proc.pid)
    finally:
        await sampler.stop()
        exit_code = await stop_server(proc)

    mib = 1024 * 1024
    where = f"DB at {chunks:,} chunks; guest {guest_name}"
    results.add(
        Row(
            "server_ready",
            "server",
            "start → /readyz 200",
            median_ms=ready_s * 1000,
            note="process start, model load, pool open",
        )
    )
    results.timed(
        "chat_client",
        "server",
        "POST /api/guest/chat (client side)",
        latencies,
        note=where,
    )
    results.timed(
        "chat_server_total",
        "server",
        "chat pipeline total (server timings)",
        stages.get("total", [math.nan]),
        note="layers " + ", ".join(f"{layer}: {n}" for layer, n in sorted(layers.items())),
    )
    for stage, values in stages.items():
        if stage != "total":
            results.timed(f"chat_stage_{stage}", "server", f"  stage {stage}", values)
    peak = max(hwm or 0, sampler.peak)
    results.add(
        Row(
            "server_peak_rss",
            "server",
            "peak RSS",
            value=peak / mib,
            unit="MB",
            note=("VmHWM" if hwm else "sampled")
            + f"; sampled peak {sampler.peak / mib:.0f} MB; exit code {exit_code}",
        )
    )
    results.add(
        Row(
            "server_rss_ready",
            "server",
            "RSS when ready / after chats",
            value=rss_ready / mib,
            unit="MB",
            note=f"after {len(latencies)} chats: {rss_end / mib:.0f} MB",
        )
    )


# --------------------------------------------------------------------------- output


def fmt(value: float | None, digits: int = 2) -> str:
    if value is None or math.isnan(value):
        return ""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def print_table(results: Results) -> None:
    table = Table(title="posada foundation benchmark", show_lines=False)
    table.add_column("section", style="bold")
    table.add_column("measurement")
    table.add_column("n", justify="right")
    table.add_column("median ms", justify="right", style="cyan")
    table.add_column("p95 ms", justify="right", style="cyan")
    table.add_column("value", justify="right", style="green")
    table.add_column("unit")
    table.add_column("load", justify="right", style="dim")
    table.add_column("note", style="dim")
    previous = ""
    order = {name: i for i, name in enumerate(SECTIONS)}
    for row in sorted(results.rows, key=lambda r: order.get(r.section, len(order))):
        if previous and row.section != previous:
            table.add_section()
        table.add_row(
            row.section if row.section != previous else "",
            row.measurement,
            "" if row.n is None else str(row.n),
            fmt(row.median_ms),
            fmt(row.p95_ms),
            fmt(row.value, 1),
            row.unit,
            fmt(row.load, 1),
            row.note,
        )
        previous = row.section
    console.print()
    console.print(table)


# --------------------------------------------------------------------------- main


async def run(args: argparse.Namespace, data_dir: Path) -> Results:
    results = Results()
    wall = time.perf_counter()
    load_start = os.getloadavg()
    cpus = os.cpu_count() or 1
    if load_start[0] > cpus / 2:
        console.print(
            f"[yellow]warning:[/yellow] load average {load_start[0]:.1f} on {cpus} CPUs before"
            " starting: other work competes for the CPU and will inflate the timings"
        )
    settings = Settings(data_dir=data_dir, database_url=None, _env_file=None)
    step(f"opening the runtime on a fresh embedded PostgreSQL in {data_dir}")
    start = time.perf_counter()
    runtime = await Runtime.open(settings)
    open_s = time.perf_counter() - start
    results.add(
        Row(
            "runtime_open",
            "setup",
            "Runtime.open (initdb, migrate, model)",
            median_ms=open_s * 1000,
        )
    )
    rng = np.random.default_rng(args.seed)
    async with runtime.pool.connection() as conn:
        cur = await conn.execute("SHOW server_version")
        row = await cur.fetchone()
    postgres_version = str(row[0]) if row else "?"
    try:
        await bench_embedding(runtime, results, args.repeat)
        await bench_ingest(runtime, results)
        embeddings = await runtime.query_embedder.embed_batch(list(QUESTIONS))
        samples = RETRIEVAL_SAMPLES * args.repeat

        async with runtime.pool.connection() as conn:
            guest, unit_slug = await demo_guest(conn)
        demo_chunks = await chunk_count(runtime)
        step(f"retrieval at demo size ({demo_chunks} chunks), casa-azul guest in {unit_slug}")
        await bench_retrieval(
            runtime,
            results,
            key="retrieve_demo",
            label=f"demo size ({demo_chunks} chunks), casa-azul/{unit_slug}",
            visibility=guest,
            embeddings=embeddings,
            samples=samples,
        )
        explain_demo = await try_explain(runtime, guest, QUESTIONS[0], embeddings[0])
        await bench_ingest_one(runtime, results, key="ingest_one_demo", at=demo_chunks)

        step(f"loading synthetic tenants up to {args.chunks:,} chunks")
        corpus = await demo_corpus(runtime)
        tenants, inserted, load_s, slugs = await load_synthetic(runtime, args.chunks, corpus, rng)
        start = time.perf_counter()
        async with runtime.pool.connection() as conn:
            await conn.execute("ANALYZE tenants, units, documents, chunks, faq")
        analyze_s = time.perf_counter() - start
        total = await chunk_count(runtime)
        if inserted:
            results.add(
                Row(
                    "synthetic_load",
                    "retrieval",
                    f"load {tenants} synthetic tenants (COPY)",
                    n=inserted,
                    median_ms=load_s * 1000,
                    value=inserted / load_s,
                    unit="chunks/s",
                    note=f"GIN + HNSW maintained on insert; ANALYZE {analyze_s:.2f} s",
                )
            )
        explain: dict[str, Any] = {"demo": explain_demo}
        if slugs:
            async with runtime.pool.connection() as conn:
                synthetic = await guest_of(conn, slugs[len(slugs) // 2])
            step(f"retrieval at {total:,} chunks: a synthetic tenant's guest, then casa-azul's")
            await bench_retrieval(
                runtime,
                results,
                key="retrieve_scale_synthetic",
                label=f"{total:,} chunks, {slugs[len(slugs) // 2]}/unit-1",
                visibility=synthetic,
                embeddings=embeddings,
                samples=samples,
            )
            await bench_retrieval(
                runtime,
                results,
                key="retrieve_scale_demo",
                label=f"{total:,} chunks, casa-azul/{unit_slug}",
                visibility=guest,
                embeddings=embeddings,
                samples=samples,
            )
            explain["scale_synthetic"] = await try_explain(
                runtime, synthetic, QUESTIONS[0], embeddings[0]
            )
            explain["scale_demo"] = await try_explain(runtime, guest, QUESTIONS[0], embeddings[0])
            await bench_ingest_one(runtime, results, key="ingest_one_scale", at=total)
        results.explain = explain

        await bench_server(runtime, results, args.repeat, total)
    finally:
        await runtime.close()

    results.meta = {
        "date": date.today().isoformat(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "chunks": args.chunks,
        "repeat": args.repeat,
        "seed": args.seed,
        "embedding_model": settings.embedding_model,
        "retrieval_k": settings.retrieval_k,
        "retrieval_candidates": settings.retrieval_candidates,
        "postgres": postgres_version,
        "torch_threads": torch_threads(),
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "wall_seconds": round(time.perf_counter() - wall, 1),
    }
    return results


def torch_threads() -> int | None:
    try:
        import torch

        return int(torch.get_num_threads())
    except ImportError:
        return None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    parser.add_argument(
        "--chunks",
        type=int,
        default=20_000,
        help="total chunks for the at-scale retrieval (default 20000)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="multiply every timed series' sample count by N (default 1)",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic data")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    data_dir = Path(tempfile.mkdtemp(prefix="posada-bench-"))
    if not args.keep:
        # Registered before the embedded server registers its stop, so it runs after it.
        atexit.register(shutil.rmtree, data_dir, ignore_errors=True)
    started = time.perf_counter()
    results = asyncio.run(run(args, data_dir))
    print_table(results)
    for name, title in (
        ("demo", "EXPLAIN at demo size"),
        ("scale_synthetic", f"EXPLAIN at {args.chunks:,} chunks, synthetic tenant"),
        ("scale_demo", f"EXPLAIN at {args.chunks:,} chunks, casa-azul"),
    ):
        if name in results.explain:
            print_findings(title, results.explain[name])
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results.as_json(), indent=2, ensure_ascii=False) + "\n")
        console.print(f"\nwrote {args.json}")
    console.print(f"\ntotal {time.perf_counter() - started:.1f} s; data dir {data_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
