"""Guests asking a real server while something breaks: what each request got, and when.

Used by the fault tests and `bench/db_outage.py`: every question is unique (a tag and a
counter), so that what was stored can be checked question by question.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from posada.demo import DEMO_SLUG, current_demo_stays

QUESTIONS = ("¿Cuál es la clave del wifi?", "What time is check-out?", "¿Hay toallas de playa?")


@dataclass(frozen=True)
class Outcome:
    """One question: its unique text, the status (0: no response) and when it ran."""

    question: str
    status: int
    started: float
    seconds: float
    retry_after: str | None


async def demo_guests(http: httpx.AsyncClient) -> list[dict[str, str]]:
    """Log in as every demo guest staying today; their Authorization headers."""
    headers = []
    for stay in current_demo_stays():
        response = await http.post(
            "/api/guest/login",
            json={
                "tenant": DEMO_SLUG,
                "check_in": stay.check_in.isoformat(),
                "phone_last4": stay.phone_last4,
            },
        )
        assert response.status_code == 200, response.text
        headers.append({"Authorization": f"Bearer {response.json()['token']}"})
    return headers


async def ask_for(
    base: str,
    guests: Sequence[dict[str, str]],
    *,
    seconds: float,
    tag: str,
    path: str = "/api/guest/chat",
    timeout_s: float = 20.0,
) -> list[Outcome]:
    """Each guest asks one question after another for `seconds`; every question is unique."""
    outcomes: list[Outcome] = []
    stop_at = time.monotonic() + seconds

    async def guest(number: int, auth: dict[str, str]) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=timeout_s) as http:
            asked = 0
            while time.monotonic() < stop_at:
                question = f"{QUESTIONS[asked % len(QUESTIONS)]} [{tag} {number}-{asked}]"
                asked += 1
                started = time.monotonic()
                try:
                    response = await http.post(path, json={"message": question}, headers=auth)
                    status, retry = response.status_code, response.headers.get("retry-after")
                except httpx.HTTPError:
                    status, retry = 0, None
                outcomes.append(
                    Outcome(question, status, started, time.monotonic() - started, retry)
                )
                if status != 200:
                    await asyncio.sleep(0.2)

    await asyncio.gather(*(guest(n, auth) for n, auth in enumerate(guests)))
    return sorted(outcomes, key=lambda o: o.started)
