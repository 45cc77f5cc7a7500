"""The figures a hotel cares about, from a run's samples; ratios between two profiles."""

from __future__ import annotations

from typing import Any

from posada.observe import window
from posada_bench.driver import Drive, Sample
from posada_bench.rewordings import FRESH

CACHE_LAYERS = ("exact", "semantic")
REUSE_LAYERS = ("exact", "semantic", "faq")

# Figures whose optimized/baseline ratio is reported (lower is better for each).
RATIO_FIGURES = (
    "p50_ms",
    "p95_ms",
    "ttfb_p50_ms",
    "db_queries_per_request",
    "embeddings_per_question",
    "cost_per_1000_questions_usd",
)


def percentile(values: list[float], pct: float) -> float | None:
    """The nearest-rank percentile of raw values (no buckets); None for no values."""
    return round(window.percentile(sorted(values), pct), 3) if values else None


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _reused(samples: list[Sample]) -> float | None:
    hits = sum(s.layer in REUSE_LAYERS for s in samples)
    return round(hits / len(samples), 4) if samples else None


def figures(run: Drive, *, peak_memory_mb: float | None) -> dict[str, Any]:
    """Per-profile figures: times measured by the client, counts reported by the server."""
    questions = [s for s in run.samples if s.kind in ("chat", "stream")]
    answered = [s for s in questions if s.ok]
    streamed = [s for s in answered if s.kind == "stream" and s.ttfb_ms is not None]
    times = [s.ms for s in answered]
    cost = sum(
        s.counters.get("cost_usd", 0) + s.counters.get("embed_cost_usd", 0) for s in answered
    )
    layers: dict[str, int] = {}
    for sample in answered:
        layers[sample.layer or "?"] = layers.get(sample.layer or "?", 0) + 1
    fresh = [s for s in answered if (s.group or "").startswith(FRESH)]
    repeated = [s for s in answered if not (s.group or "").startswith(FRESH)]
    return {
        "questions": len(questions),
        "requests": len(run.samples),
        "errors": sum(not s.ok for s in run.samples),
        "sessions": run.sessions,
        "p50_ms": percentile(times, 50),
        "p95_ms": percentile(times, 95),
        "p99_ms": percentile(times, 99),
        "ttfb_p50_ms": percentile([s.ttfb_ms for s in streamed if s.ttfb_ms is not None], 50),
        "ttfb_p95_ms": percentile([s.ttfb_ms for s in streamed if s.ttfb_ms is not None], 95),
        "db_queries_per_request": _mean([s.counters.get("db_queries", 0) for s in answered]),
        "embeddings_per_question": _mean([s.counters.get("embed_computed", 0) for s in answered]),
        "llm_calls_per_question": _mean([s.counters.get("llm_calls", 0) for s in answered]),
        # Over the workload's own (repeated) wordings; fresh rewordings have theirs below.
        "answer_cache_hit_rate": (
            round(sum(s.layer in CACHE_LAYERS for s in repeated) / len(repeated), 4)
            if repeated
            else None
        ),
        "faq_hit_rate": round(layers.get("faq", 0) / len(answered), 4) if answered else None,
        # Served without an LLM by a cache or the FAQ: the workload's own repeated wordings,
        # and rewordings of real hotels' questions that no cache had seen (rewordings).
        "reuse_rate_repeated": _reused(repeated),
        "reuse_rate_fresh": _reused(fresh),
        "fresh_questions": len(fresh),
        "cost_per_1000_questions_usd": round(cost / len(answered) * 1000, 6) if answered else None,
        "throughput_qps": round(len(answered) / run.wall_s, 3) if run.wall_s else None,
        "peak_memory_mb": peak_memory_mb,
        "layers": dict(sorted(layers.items())),
        "server_ms_by_layer": {
            layer: {
                "count": len(times),
                "p50_ms": percentile(times, 50),
                "p99_ms": percentile(times, 99),
            }
            for layer in sorted(layers)
            if (times := [s.server_ms for s in answered if s.layer == layer and s.server_ms])
        },
        "error_samples": [s.error for s in run.samples if not s.ok][:5],
    }


def ratios(optimized: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float | None]:
    """optimized / baseline for each figure both measured."""
    out: dict[str, float | None] = {}
    for name in RATIO_FIGURES:
        mine, theirs = optimized.get(name), baseline.get(name)
        out[name] = round(mine / theirs, 4) if mine is not None and theirs else None
    return out
