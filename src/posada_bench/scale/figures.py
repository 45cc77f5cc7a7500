"""The scale test's figures per replica: from nginx's log, the replicas' /metrics and the
connection samples. Pure functions over what was read (posada_bench.scale.sampling reads).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from posada_bench.report import percentile

CHAT_URIS = ("/api/guest/chat", "/api/guest/chat/stream")
CACHE_LAYERS = ("exact", "semantic")
REUSE_LAYERS = ("exact", "semantic", "faq")

Labels = tuple[tuple[str, str], ...]
Parsed = dict[str, dict[Labels, float]]


def parse_metrics(text: str) -> Parsed:
    """Prometheus text: sample name -> labels -> value."""
    parsed: Parsed = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            parsed[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return dict(parsed)


def metric_by(parsed: Parsed, name: str, label: str) -> dict[str, float]:
    """The samples of `name`, summed by one label's value."""
    out: dict[str, float] = defaultdict(float)
    for labels, value in parsed.get(name, {}).items():
        out[dict(labels).get(label, "")] += value
    return dict(out)


def counts_delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """after - before for every key, zeros left out."""
    keys = set(after) | set(before)
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in sorted(keys)}
    return {k: v for k, v in delta.items() if v}


def answer_layers(parsed: Parsed) -> dict[str, float]:
    """Answers given by each layer (all hotels)."""
    return metric_by(parsed, "posada_answers_total", "layer")


def cache_outcomes(parsed: Parsed) -> dict[str, float]:
    """Cache lookups as `layer:outcome` -> count."""
    out: dict[str, float] = {}
    for labels, value in parsed.get("posada_cache_outcomes_total", {}).items():
        named = dict(labels)
        out[f"{named.get('layer')}:{named.get('outcome')}"] = value
    return out


def reuse_rates(layers: dict[str, float], outcomes: dict[str, float]) -> dict[str, Any]:
    """Hit rates from a replica's counters over a phase: its answers by layer, its lookups."""
    answered = sum(layers.values())

    def share(names: tuple[str, ...]) -> float | None:
        return round(sum(layers.get(n, 0) for n in names) / answered, 4) if answered else None

    lookups: dict[str, float | None] = {}
    for layer in sorted({key.split(":")[0] for key in outcomes}):
        hits, misses = outcomes.get(f"{layer}:hit", 0), outcomes.get(f"{layer}:miss", 0)
        lookups[layer] = round(hits / (hits + misses), 4) if hits + misses else None
    return {
        "answers_by_layer": {k: int(v) for k, v in layers.items()},
        "answer_cache_hit_rate": share(CACHE_LAYERS),
        "faq_hit_rate": share(("faq",)),
        "reuse_rate": share(REUSE_LAYERS),
        "lookup_hit_rates": lookups,
    }


def answered_by(upstream: str, names: dict[str, str]) -> str:
    """The replica that gave the response: the last address nginx tried."""
    last = upstream.split(",")[-1].strip() if upstream else ""
    return names.get(last, last or "none")


def replica_figures(
    entries: list[dict[str, Any]], *, names: dict[str, str], wall_s: float
) -> dict[str, dict[str, Any]]:
    """Per replica, from nginx's log: answers/s, nginx's P50/P95/P99 of answered questions
    (first byte in to last byte out, a whole stream for a streamed one), errors, retries."""
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        by[answered_by(str(entry.get("upstream", "")), names)].append(entry)
    out: dict[str, dict[str, Any]] = {}
    for replica in sorted(by):
        rows = by[replica]
        asked = [r for r in rows if r.get("uri") in CHAT_URIS]
        answered = [r for r in asked if r.get("status") == "200"]
        times = [float(r["request_time"]) * 1000 for r in answered]
        out[replica] = {
            "requests": len(rows),
            "questions": len(asked),
            "answered": len(answered),
            "throughput_qps": round(len(answered) / wall_s, 3) if wall_s else None,
            "p50_ms": percentile(times, 50),
            "p95_ms": percentile(times, 95),
            "p99_ms": percentile(times, 99),
            "errors": sum(not str(r.get("status", "")).startswith(("2", "3")) for r in rows),
            # Tried on another replica first (refused, or a 502/503 before anything was sent).
            "moved_here": sum("," in str(r.get("upstream", "")) for r in rows),
        }
    return out


def summarize(values: list[float]) -> dict[str, float | None]:
    """Mean and max of sampled values."""
    if not values:
        return {"mean": None, "max": None}
    return {"mean": round(sum(values) / len(values), 2), "max": max(values)}
