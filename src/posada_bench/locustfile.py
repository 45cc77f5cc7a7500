"""Locust users for `posada loadtest`: guests who log in, ask (streamed and not) and read history.

Run by `posada loadtest` (`locust -f` this file's path) or by hand from the repo with
`locust -f bench/locustfile.py`. The guests come from the JSON file named by
`POSADA_LOADTEST_GUESTS` (sessions as `posada_bench.workload.session_dict` writes them);
every request's raw time goes to the JSON file named by `POSADA_LOADTEST_RAW` when Locust
quits, because Locust's own percentiles are computed from rounded buckets. Staff browsing
is not simulated yet: there are no staff pages.

This file imports nothing of posada: Locust loads it by path, under its own module name.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, cast

from locust import HttpUser, between, events, task
from locust.clients import ResponseContextManager
from locust.exception import StopUser

# The names `posada_bench.loadtest` sets.
GUESTS_ENV = "POSADA_LOADTEST_GUESTS"
RAW_ENV = "POSADA_LOADTEST_RAW"
TIMEOUT_S = 120.0

LOGIN = "/api/guest/login"
CHAT = "/api/guest/chat"
STREAM = "/api/guest/chat/stream"
CONVERSATIONS = "/api/guest/conversations"
CONVERSATION = "/api/guest/conversations/{id}"

_records: list[dict[str, Any]] = []


@cache
def _guests() -> list[dict[str, Any]]:
    path = os.environ.get(GUESTS_ENV)
    if not path:
        raise RuntimeError(f"{GUESTS_ENV} must name the load test's guest file")
    guests: list[dict[str, Any]] = json.loads(Path(path).read_text("utf-8"))
    if not guests:
        raise RuntimeError(f"the guest file {path} holds no sessions")
    return guests


def _record(
    request_type: str,
    name: str,
    response_time: float,
    exception: BaseException | str | None = None,
    **_: Any,
) -> None:
    _records.append(
        {
            "name": f"{request_type} {name}",
            "ms": response_time,
            "ok": exception is None,
            "error": None if exception is None else str(exception)[:300],
        }
    )


def _write_raw(**_: Any) -> None:
    path = os.environ.get(RAW_ENV)
    if path:
        Path(path).write_text(json.dumps({"requests": _records}), "utf-8")


# Locust's EventHook.add_listener carries no annotations.
events.request.add_listener(_record)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_write_raw)  # type: ignore[no-untyped-call]


class GuestUser(HttpUser):
    """A hotel guest: logs in once, then asks their session's questions and reads history."""

    wait_time = between(1, 3)
    _taken: ClassVar[Iterator[int]] = itertools.count()

    def on_start(self) -> None:
        """Take the next guest session and log in with its stay."""
        guests = _guests()
        session = guests[next(self._taken) % len(guests)]
        self.questions: list[dict[str, Any]] = session["turns"]
        self.turn = 0
        self.conversation_id: int | None = None
        stay = session["stay"]
        payload = {
            "tenant": stay["tenant"],
            "check_in": stay["check_in"],
            "phone_last4": stay["phone_last4"],
        }
        with self.client.post(
            LOGIN, json=payload, name=LOGIN, timeout=TIMEOUT_S, catch_response=True
        ) as response:
            token = _json(response.text).get("token")
            if _problem(response) or not token:
                response.failure(_problem(response) or "no token in the answer")
                raise StopUser
            response.success()
        self.auth = {"Authorization": f"Bearer {token}"}

    def _next_question(self) -> dict[str, Any]:
        """The session's next question, in order; a new conversation each time round."""
        if self.turn % len(self.questions) == 0:
            self.conversation_id = None
        question = self.questions[self.turn % len(self.questions)]
        self.turn += 1
        return {"message": question["text"], "conversation_id": self.conversation_id}

    @task(3)
    def ask(self) -> None:
        """One question, answered whole."""
        with self.client.post(
            CHAT,
            json=self._next_question(),
            headers=self.auth,
            name=CHAT,
            timeout=TIMEOUT_S,
            catch_response=True,
        ) as response:
            conversation = _json(response.text).get("conversation_id")
            if _problem(response) or conversation is None:
                response.failure(_problem(response) or "no conversation_id in the answer")
                return
            self.conversation_id = conversation
            response.success()

    @task(2)
    def ask_streamed(self) -> None:
        """One question on the SSE endpoint, timed to the end of the answer."""
        began = time.perf_counter()
        with self.client.post(
            STREAM,
            json=self._next_question(),
            headers=self.auth,
            name=STREAM,
            timeout=TIMEOUT_S,
            stream=True,
            catch_response=True,
        ) as response:
            problem, size = _problem(response), 0
            if problem is None:
                try:
                    problem, size = self._read_events(response.iter_lines(decode_unicode=True))
                except OSError as exc:  # requests' errors: a dropped or stalled stream
                    problem = f"{type(exc).__name__}: {exc}"
            # Locust stops its clock at the headers when streaming; this one request is
            # reported once, when the block ends, with the whole answer's time.
            meta = cast(dict[str, Any], response.request_meta)
            meta["response_time"] = (time.perf_counter() - began) * 1000
            meta["response_length"] = size
            if problem:
                response.failure(problem)
            else:
                response.success()

    def _read_events(self, lines: Iterator[str]) -> tuple[str | None, int]:
        """Read an SSE body; return what went wrong (None if it ended with `done`) and its size."""
        event, done, problem, size = "message", False, None, 0
        for line in lines:
            size += len(line) + 1
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data = _json(line[5:].strip())
                if event == "error":
                    problem = f"error event: {data.get('detail', data)}"
                elif event in ("meta", "done") and data.get("conversation_id") is not None:
                    self.conversation_id = data["conversation_id"]
                done = done or event == "done"
            elif not line:
                event = "message"
        if problem is None and not done:
            problem = "the stream ended without a done event"
        return problem, size

    @task(1)
    def read_history(self) -> None:
        """List the guest's conversations, then read the newest."""
        with self.client.get(
            CONVERSATIONS,
            headers=self.auth,
            name=CONVERSATIONS,
            timeout=TIMEOUT_S,
            catch_response=True,
        ) as response:
            items = _json(response.text).get("items")
            if _problem(response) or not isinstance(items, list):
                response.failure(_problem(response) or "no items in the answer")
                return
            response.success()
        if items:
            self.client.get(
                f"{CONVERSATIONS}/{items[0]['id']}",
                headers=self.auth,
                name=CONVERSATION,
                timeout=TIMEOUT_S,
            )


def _json(text: str) -> dict[str, Any]:
    """A JSON object from a body, or {} when it is not one."""
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _problem(response: ResponseContextManager) -> str | None:
    """Why a response failed at the HTTP level (no answer, or not 200), or None."""
    if response.error is not None and response.status_code == 0:
        return f"{type(response.error).__name__}: {response.error}"
    if response.status_code != 200:
        return f"{response.status_code}: {response.text[:200]}"
    return None
