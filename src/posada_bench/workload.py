"""The benchmark's guest traffic: seeded, reproducible, drawn from labelled paraphrase groups.

A workload is a list of guest sessions. Each guest logs in with one current stay (in the
demo hotel or a generated one), speaks Spanish or English, and asks 3 to 8 questions with
think time between them. Questions come from `questions.yaml`: a group is drawn with
Zipf-like popularity (the first groups are asked most), then one of its wordings, the
first ones more often. Some questions are follow-ups of the one before ("¿y cuánto
cuesta?"), some ask about the guest's own unit, some cannot be answered from any
document, and a share is asked on the streaming endpoint. The same seed gives the same
sessions, question for question.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import asdict, dataclass, field
from datetime import date
from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml

from posada.core.text import slugify
from posada.demo import DEMO_SLUG, demo_path, render_reservations
from posada_bench.hotels import Stay

Language = Literal["es", "en"]


@dataclass(frozen=True)
class Group:
    """Questions that all ask the same thing."""

    id: str
    kind: str
    questions: dict[str, list[str]]
    negatives: list[str] = field(default_factory=list)
    follow_ups: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Turn:
    """One question of a session."""

    text: str
    group: str
    kind: str  # the group's kind, or "follow_up"
    stream: bool
    think_s: float  # pause before asking it


@dataclass(frozen=True)
class Session:
    """One guest's visit to the chat."""

    stay: Stay
    language: Language
    turns: list[Turn]


@dataclass(frozen=True)
class Mix:
    """The shape of the traffic."""

    spanish_share: float = 0.6
    stream_share: float = 0.3
    follow_up_share: float = 0.25  # after a question that has follow-ups
    zipf_s: float = 1.1  # popularity of the groups
    wording_s: float = 1.0  # popularity of a group's wordings
    think_mean_s: float = 1.0
    min_turns: int = 3
    max_turns: int = 8


@cache
def load_groups() -> tuple[Group, ...]:
    """The labelled paraphrase groups, most asked first."""
    text = (resources.files("posada_bench") / "questions.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    return tuple(
        Group(
            id=g["id"],
            kind=g["kind"],
            questions={"es": list(g["es"]), "en": list(g["en"])},
            negatives=list(g.get("negatives", [])),
            follow_ups={k: list(v) for k, v in (g.get("follow_ups") or {}).items()},
        )
        for g in data["groups"]
    )


def demo_stays(*, today: date) -> list[Stay]:
    """The demo hotel's current stays."""
    rendered = render_reservations(demo_path("reservations.csv").read_text("utf-8"), today=today)
    stays = []
    for row in csv.DictReader(io.StringIO(rendered)):
        check_in, check_out = (
            date.fromisoformat(row["check_in"]),
            date.fromisoformat(row["check_out"]),
        )
        if row["status"] != "cancelled" and check_in <= today < check_out:
            unit = slugify(row["unit"])
            stays.append(Stay(DEMO_SLUG, unit, check_in, row["phone_last4"]))
    return stays


def _zipf(count: int, s: float) -> list[float]:
    return [1 / (rank**s) for rank in range(1, count + 1)]


def build_sessions(
    *, seed: int, count: int, stays: list[Stay], mix: Mix | None = None
) -> list[Session]:
    """`count` guest sessions, the same for the same seed and stays."""
    mix = mix or Mix()
    rng = random.Random(seed)
    groups = load_groups()
    weights = _zipf(len(groups), mix.zipf_s)
    ordered = sorted(stays, key=lambda s: (s.tenant, s.unit, s.check_in, s.phone_last4))
    sessions = []
    for _ in range(count):
        stay = rng.choice(ordered)
        language: Language = "es" if rng.random() < mix.spanish_share else "en"
        turns: list[Turn] = []
        previous: Group | None = None
        for _ in range(rng.randint(mix.min_turns, mix.max_turns)):
            think = (
                min(rng.expovariate(1 / mix.think_mean_s), 4 * mix.think_mean_s) if turns else 0.0
            )
            stream = rng.random() < mix.stream_share
            options = previous.follow_ups.get(language, []) if previous else []
            if options and rng.random() < mix.follow_up_share:
                text = rng.choice(options)
                turns.append(
                    Turn(
                        text, previous.id if previous else "", "follow_up", stream, round(think, 3)
                    )
                )
                previous = None  # a follow-up is not followed up again
                continue
            group = rng.choices(groups, weights=weights)[0]
            wordings = group.questions[language]
            text = rng.choices(wordings, weights=_zipf(len(wordings), mix.wording_s))[0]
            turns.append(Turn(text, group.id, group.kind, stream, round(think, 3)))
            previous = group
        sessions.append(Session(stay, language, turns))
    return sessions


def describe(sessions: list[Session]) -> dict[str, Any]:
    """What a workload holds, for the results file."""
    turns = [t for s in sessions for t in s.turns]
    kinds: dict[str, int] = {}
    for turn in turns:
        kinds[turn.kind] = kinds.get(turn.kind, 0) + 1
    return {
        "sessions": len(sessions),
        "questions": len(turns),
        "distinct_questions": len({t.text for t in turns}),
        "tenants": sorted({s.stay.tenant for s in sessions}),
        "spanish_sessions": sum(s.language == "es" for s in sessions),
        "streamed_questions": sum(t.stream for t in turns),
        "by_kind": dict(sorted(kinds.items())),
    }


def session_dict(session: Session) -> dict[str, Any]:
    """A session as plain data (for the load test's guest file)."""
    out = asdict(session)
    out["stay"]["check_in"] = session.stay.check_in.isoformat()
    return out
