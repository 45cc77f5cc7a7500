"""The benchmark's fresh rewordings: each fact's first wording yesterday, the others once."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from posada_bench.hotels import Stay
from posada_bench.rewordings import FRESH, interleave, load_facts, rewording_sessions

LABELS = """facts:
  - id: a-checkout
    split: test
    kind: hotel
    hotel: h1
    expect: ["11:00"]
    questions:
      - {text: "checkout time?", lang: en}
      - {text: "a que hora hay que salir", lang: es}
      - {text: "hora de salida", lang: es}
  - id: a-code
    split: test
    kind: unit
    hotel: h1
    unit: u2
    expect: ["4471"]
    questions:
      - {text: "door code", lang: en}
      - {text: "codigo de la puerta", lang: es}
  - id: a-tuned
    split: tune
    kind: hotel
    hotel: h1
    questions:
      - {text: "never asked", lang: en}
      - {text: "never asked either", lang: en}
  - id: a-none
    split: test
    kind: unanswerable
    hotel: h1
    questions:
      - {text: "gym?", lang: en}
      - {text: "hay gimnasio", lang: es}
"""


def test_fresh_rewordings_are_each_asked_once_and_never_yesterday(tmp_path: Path) -> None:
    (tmp_path / "h1.yaml").write_text(LABELS, encoding="utf-8")
    facts = load_facts(tmp_path)
    assert [f.id for f in facts] == ["a-checkout", "a-code"], "test half, answerable only"
    stays = [Stay("h1", unit, date(2026, 12, 1), f"100{n}") for n, unit in enumerate(("u1", "u2"))]
    first = rewording_sessions(facts, stays, seed=1, first=True)
    fresh = rewording_sessions(facts, stays, seed=1, first=False)
    asked_first = [t.text for s in first for t in s.turns]
    asked_fresh = [t.text for s in fresh for t in s.turns]
    assert sorted(asked_first) == ["checkout time?", "door code"]
    assert sorted(asked_fresh) == [
        "a que hora hay que salir",
        "codigo de la puerta",
        "hora de salida",
    ]
    assert all(t.group.startswith(FRESH) for s in fresh for t in s.turns)
    assert not any(t.group.startswith(FRESH) for s in first for t in s.turns)
    # A unit's fact is asked by a guest of that unit.
    code = [s for s in fresh if any(t.text == "codigo de la puerta" for t in s.turns)]
    assert [s.stay.unit for s in code] == ["u2"]
    mixed = interleave(first * 3, fresh, every=2)
    assert len(mixed) == len(first) * 3 + len(fresh)
