"""The scale test's per-replica figures, from nginx's log lines and /metrics text."""

from __future__ import annotations

from pathlib import Path

from posada_bench.scale.figures import (
    answer_layers,
    answered_by,
    cache_outcomes,
    counts_delta,
    parse_metrics,
    replica_figures,
    reuse_rates,
)
from posada_bench.scale.nginx import SITE, render_site

METRICS = """# TYPE posada_answers counter
posada_answers_total{tenant="a",layer="exact"} 6.0
posada_answers_total{tenant="b",layer="exact"} 2.0
posada_answers_total{tenant="a",layer="llm"} 2.0
# TYPE posada_cache_outcomes counter
posada_cache_outcomes_total{layer="exact",outcome="hit"} 8.0
posada_cache_outcomes_total{layer="exact",outcome="miss"} 2.0
"""


def test_answers_are_summed_over_hotels_and_rates_taken_over_answers() -> None:
    parsed = parse_metrics(METRICS)
    layers = answer_layers(parsed)
    assert layers == {"exact": 8.0, "llm": 2.0}
    rates = reuse_rates(layers, cache_outcomes(parsed))
    assert rates["answer_cache_hit_rate"] == 0.8
    assert rates["reuse_rate"] == 0.8
    assert rates["lookup_hit_rates"] == {"exact": 0.8}


def test_a_phase_counts_only_what_changed() -> None:
    assert counts_delta({"exact": 9.0, "llm": 2.0}, {"exact": 4.0, "llm": 2.0}) == {"exact": 5.0}


def test_a_request_moved_on_belongs_to_the_replica_that_answered() -> None:
    names = {"127.0.0.1:1": "r1", "127.0.0.1:2": "r2"}
    assert answered_by("127.0.0.1:1, 127.0.0.1:2", names) == "r2"
    entries = [
        {"uri": "/api/guest/chat", "status": "200", "request_time": "0.010",
         "upstream": "127.0.0.1:1"},
        {"uri": "/api/guest/chat/stream", "status": "200", "request_time": "0.030",
         "upstream": "127.0.0.1:1, 127.0.0.1:2"},
        {"uri": "/api/guest/login", "status": "503", "request_time": "0.001",
         "upstream": "127.0.0.1:2"},
    ]  # fmt: skip
    figures = replica_figures(entries, names=names, wall_s=2.0)
    assert figures["r1"]["answered"] == 1
    assert figures["r1"]["throughput_qps"] == 0.5
    assert figures["r2"] == {**figures["r2"], "answered": 1, "errors": 1, "moved_here": 1}
    assert figures["r2"]["p50_ms"] == 30.0


def test_the_rendered_site_points_at_the_test_replicas_only() -> None:
    site = render_site(
        SITE.read_text("utf-8"), port=4000, replicas={"r1": 5001, "r2": 5002}, folder=Path("/x")
    )
    assert "listen 127.0.0.1:4000;" in site
    assert "server 127.0.0.1:5001" in site
    assert "server 127.0.0.1:5002" in site
    assert "8001" not in site  # the deployable file's own replicas are gone
    assert "access_log /x/access.log posada_upstream;" in site
    assert "add_header X-Posada-Replica $posada_replica always;" in site
    # The kill proof joins the access log's requests to the error log's lines by these.
    log_format = site.split("log_format posada_upstream", 1)[1].split(";", 1)[0]
    assert '"request_id":"$request_id"' in log_format
    assert '"connection":"$connection"' in log_format
    assert "non_idempotent" not in site.split("proxy_next_upstream ", 1)[1].split(";")[0]
