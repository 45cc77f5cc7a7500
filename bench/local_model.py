"""The opt-in local model, measured: Gemma 3 270M (Q4_K_M) on llama-cpp-python's server.

Starts `posada model serve` on a free port (the packaged GGUF, all cores unless
`--threads`), and then, through posada's own client (`providers.llm.OpenAIChatModel`):

- cancellation: a long answer is streamed and closed after a few pieces, as when a guest
  leaves; the server must stop generating. Shown two ways: the server's own log says
  "Disconnected from client", and a short request sent right after waits no longer than
  one sent to an idle server (the server answers one request at a time: one still
  generating would hold it for the rest of the long answer, whose whole length is
  measured too);
- the real-corpus answers (saved to `--json` before the last part): ingests
  `../shared/corpus` as `bench.real_quality` does and asks the first wording of each
  answerable fact of the test split (at most `--questions`),
  through posada's real pipeline (`answer_question`: one embedding, one lookup, the
  prompt, the LLM; caches off, and FAQ answers off so that the model answers whatever has
  a relevant passage). Per answer: time to first token (the request to the first piece),
  tokens per second (the streamed pieces, one a token, after the first, over the time they
  took), the usage posada recorded and whether it was reported or estimated, the cost;
  whether the answer holds the fact (an `expect` string, matched as `real_quality` does),
  and whether it merely repeats posada's prompt (its opening instruction in the answer: a
  base model copies its prompt, passages and all, and the fact with them).
  The same questions are answered offline too (no LLM: FAQ or extractive, posada's
  default without a model) for comparison. Nothing here is tuned to the corpus;
- a real `posada serve` (the demo hotel, `posada demo`) with the local model as its LLM:
  the guest's time to the first streamed text, and a guest who leaves mid-answer (the
  model server logs the disconnect). `--no-serve` skips it.

A measurement, not a test: it exits 0 whatever the figures (2 without the corpus or the
local model's packages).

    .venv/bin/python -m bench.local_model [--questions 30] [--threads N] [--json FILE]
        [--data-dir DIR] [--corpus DIR] [--examples 6]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.real_quality import (
    ANSWERABLE,
    HERE,
    HOTELS,
    LABELS,
    Loaded,
    Message,
    holds,
    load_corpus,
    load_messages,
    loaded_corpus,
    normalise,
    prepare,
)
from bench.streaming import QUESTIONS as SERVE_QUESTIONS
from bench.streaming import first_stay
from posada.answers.pipeline import answer_question
from posada.cli.model import MODEL_ALIAS, missing_modules, posada_settings
from posada.core.config import Settings
from posada.providers.llm import (
    ChatMessage,
    ChatModel,
    Delta,
    Finished,
    OpenAIChatModel,
    StreamEvent,
    Usage,
)
from posada.runtime import Runtime
from posada_bench.servers import free_port, posada_server, run_server

LONG = [
    ChatMessage("system", "You are a hotel concierge. Answer at length."),
    ChatMessage("user", "Describe, in many paragraphs, a week of things to do on an island."),
]
SHORT = [ChatMessage("user", "Say hello.")]


@dataclass
class Call:
    """One request to the model, as posada's client saw it."""

    started: float
    pieces: list[float] = field(default_factory=list)  # when each streamed piece came
    usage: Usage | None = None

    @property
    def ttft(self) -> float | None:
        return self.pieces[0] - self.started if self.pieces else None

    @property
    def tokens_per_s(self) -> float | None:
        if len(self.pieces) < 2 or self.pieces[-1] <= self.pieces[0]:
            return None
        return (len(self.pieces) - 1) / (self.pieces[-1] - self.pieces[0])


class Timed:
    """A chat model that notes when each piece of its answers arrives (the real one inside)."""

    def __init__(self, inner: ChatModel) -> None:
        self.inner = inner
        self.provider, self.model = inner.provider, inner.model
        self.price_in, self.price_out = inner.price_in, inner.price_out
        self.calls: list[Call] = []

    async def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int, request_timeout: float
    ) -> AsyncIterator[StreamEvent]:
        call = Call(time.perf_counter())
        self.calls.append(call)
        events = self.inner.stream(messages, max_tokens=max_tokens, request_timeout=request_timeout)
        async with aclosing(events) as stream:  # type: ignore[type-var]
            async for event in stream:
                if isinstance(event, Delta):
                    call.pieces.append(time.perf_counter())
                elif isinstance(event, Finished):
                    call.usage = event.usage
                yield event


async def timed_stream(model: ChatModel, prompt: list[ChatMessage], max_tokens: int) -> Call:
    """One whole streamed answer through posada's client."""
    call = Call(time.perf_counter())
    async for event in model.stream(prompt, max_tokens=max_tokens, request_timeout=120):
        if isinstance(event, Delta):
            call.pieces.append(time.perf_counter())
        elif isinstance(event, Finished):
            call.usage = event.usage
    return call


def disconnections(log: Path) -> int:
    """How many times the server's log says a client left mid-answer."""
    return log.read_text("utf-8", errors="replace").count("Disconnected from client")


async def measure_cancel(model: ChatModel, log: Path) -> dict[str, Any]:
    """A long answer closed after a few pieces: does the server stop generating?"""
    idle = [(await timed_stream(model, SHORT, 8)).ttft or 0.0 for _ in range(3)]
    whole = await timed_stream(model, LONG, 300)
    before = disconnections(log)
    read = 0
    stream = model.stream(LONG, max_tokens=300, request_timeout=120)
    async with aclosing(stream) as events:  # type: ignore[type-var]
        async for event in events:
            read += isinstance(event, Delta)
            if read >= 5:
                break  # the guest left
    closed = time.perf_counter()
    after = await timed_stream(model, SHORT, 8)
    waited = (after.pieces[0] if after.pieces else closed) - closed
    await asyncio.sleep(0.5)  # the log is written by another process
    return {
        "idle_short_ttft_ms": round(statistics.median(idle) * 1000, 1),
        "long_answer_whole_s": round(whole.pieces[-1] - whole.started, 2) if whole.pieces else None,
        "long_answer_pieces": len(whole.pieces),
        "pieces_read_before_closing": read,
        "next_request_ttft_ms": round(waited * 1000, 1),
        "server_logged_disconnect": disconnections(log) > before,
    }


def llm_settings(data_dir: Path, base_url: str | None) -> Settings:
    """Caches off; with a URL, both tiers on the local model at price 0 and FAQ answers off."""
    fields: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": None,
        "answer_cache": False,
        "semantic_cache": False,
    }
    if base_url is not None:
        fields.update(llm_base_url=base_url, faq_answers=False)
        for tier in ("small", "large"):
            fields.update({f"llm_{tier}_model": MODEL_ALIAS})
            fields.update({f"llm_{tier}_price_in": 0, f"llm_{tier}_price_out": 0})
    return Settings(**fields)


def chosen(messages: list[Message], limit: int) -> list[Message]:
    """The first wording of each answerable fact of the test split, in file order."""
    seen: set[str] = set()
    picked = []
    for message in messages:
        if message.split == "test" and message.kind in ANSWERABLE and message.fact not in seen:
            seen.add(message.fact)
            picked.append(message)
    return picked[:limit]


@dataclass
class Asked:
    """One question, answered by the local model and offline."""

    message: Message
    answer: str
    layer: str
    right: bool
    incomplete: bool
    usage: Usage | None
    cost_usd: float
    call: Call | None
    offline: str = ""
    offline_layer: str = ""
    offline_right: bool = False


async def ask_offline(settings: Settings, args: argparse.Namespace) -> tuple[Loaded, list[Asked]]:
    """Load the corpus (once per data dir) and answer each question without an LLM."""
    runtime = await Runtime.open(settings)
    try:
        loaded = await loaded_corpus(runtime)
        if not loaded.tenants:
            loaded = await load_corpus(runtime, args.corpus)
        asked = []
        for message in chosen(load_messages(args.labels), args.questions):
            got = await answer_question(
                runtime=runtime,
                visibility=loaded.visibility(message),
                question=message.text,
                hotel=HOTELS[message.hotel],
            )
            asked.append(
                Asked(message, "", "", False, False, None, 0.0, None, got.text, got.layer,
                      holds(got.text, message.expect))
            )  # fmt: skip
    finally:
        await runtime.close()
    return loaded, asked


async def ask_local(settings: Settings, loaded: Loaded, asked: list[Asked]) -> None:
    """The same questions through posada's pipeline with the local model as its LLM."""
    runtime = await Runtime.open(settings)
    try:
        timed = Timed(runtime.chat_models["small"])
        runtime.chat_models = {"small": timed, "large": timed}
        for item in asked:
            message = item.message
            calls = len(timed.calls)
            got = await answer_question(
                runtime=runtime,
                visibility=loaded.visibility(message),
                question=message.text,
                hotel=HOTELS[message.hotel],
            )
            item.answer, item.layer, item.incomplete = got.text, got.layer, got.incomplete
            item.right = holds(got.text, message.expect)
            item.usage, item.cost_usd = got.usage, got.cost_usd
            item.call = timed.calls[calls] if len(timed.calls) > calls else None
            print(f"  {message.fact}: {got.layer} right={item.right}", file=sys.stderr)
    finally:
        await runtime.close()


# The instruction that opens posada's system prompt (answers.prompt.SYSTEM): an answer that
# holds it repeats the prompt, and any fact in it is the prompt's, not the model's answer.
INSTRUCTION = "Answer only from the context below"


def echoes(answer: str) -> bool:
    """Whether the answer repeats posada's own instructions."""
    return normalise(INSTRUCTION) in normalise(answer)


def p95(values: list[float]) -> float:
    return sorted(values)[int(0.95 * (len(values) - 1))]


def summarise(asked: list[Asked]) -> dict[str, Any]:
    """The figures over the questions asked."""
    llm = [a for a in asked if a.layer == "llm"]
    calls = [a.call for a in llm if a.call is not None]
    ttfts = [c.ttft for c in calls if c.ttft is not None]
    rates = [c.tokens_per_s for c in calls if c.tokens_per_s is not None]
    usages = [a.usage for a in llm if a.usage is not None]
    pieces = [len(c.pieces) for c in calls]
    out = sum(u.output_tokens for u in usages)
    return {
        "questions": len(asked),
        "answered_by_llm": len(llm),
        "layers": dict(Counter(a.layer for a in asked)),
        "fact_in_answer_llm": (sum(a.right for a in llm), len(llm)),
        "echoes_prompt": sum(echoes(a.answer) for a in llm),
        "fact_in_answer_llm_not_echo": (
            sum(a.right and not echoes(a.answer) for a in llm),
            sum(not echoes(a.answer) for a in llm),
        ),
        "fact_in_answer_all": (sum(a.right for a in asked), len(asked)),
        "fact_in_answer_offline": (sum(a.offline_right for a in asked), len(asked)),
        "incomplete": sum(a.incomplete for a in asked),
        "ttft_median_ms": round(statistics.median(ttfts) * 1000, 1) if ttfts else None,
        "ttft_p95_ms": round(p95(ttfts) * 1000, 1) if ttfts else None,
        "tokens_per_s_median": round(statistics.median(rates), 1) if rates else None,
        "pieces_median": statistics.median(pieces) if pieces else None,
        "usage_reported": sum(not u.estimated for u in usages),
        "usage_estimated": sum(u.estimated for u in usages),
        "input_tokens_mean": round(sum(u.input_tokens for u in usages) / max(1, len(usages))),
        "output_tokens_mean": round(out / max(1, len(usages))),
        # posada's estimate (4 characters a token) against the pieces streamed (one a token)
        "estimated_over_streamed": round(out / sum(pieces), 2) if pieces and sum(pieces) else None,
        "cost_usd_per_1000": round(1000 * sum(a.cost_usd for a in asked) / max(1, len(asked)), 6),
    }


def pct(pair: tuple[int, int]) -> str:
    got, of = pair
    return f"{got}/{of} {100 * got / of:.1f}%" if of else "-"


def report(figures: dict[str, Any], cancel: dict[str, Any], examples: list[Asked]) -> str:
    f, c = figures, cancel
    lines = [
        f"local model {MODEL_ALIAS} (Q4_K_M) on llama-cpp-python, {f['threads']} threads",
        f"questions: {f['questions']} (first wording of each answerable test fact); "
        f"answered by the model: {f['answered_by_llm']}  layers {f['layers']}",
        f"TTFT median {f['ttft_median_ms']} ms, P95 {f['ttft_p95_ms']} ms; "
        f"tokens/s median {f['tokens_per_s_median']} ({f['pieces_median']} pieces median)",
        f"fact in the model's answers: {pct(f['fact_in_answer_llm'])} ({f['echoes_prompt']} "
        f"repeat the prompt; of the others {pct(f['fact_in_answer_llm_not_echo'])}); "
        f"in all answers: {pct(f['fact_in_answer_all'])}; offline (FAQ/extractive) on the same: "
        f"{pct(f['fact_in_answer_offline'])}; cut short: {f['incomplete']}",
        f"usage: reported {f['usage_reported']}, estimated {f['usage_estimated']}; "
        f"tokens in {f['input_tokens_mean']} / out {f['output_tokens_mean']} mean "
        f"(estimate/streamed {f['estimated_over_streamed']}); "
        f"cost per 1,000 answers ${f['cost_usd_per_1000']}",
        f"cancel: idle short TTFT {c['idle_short_ttft_ms']} ms; long answer whole "
        f"{c['long_answer_whole_s']} s ({c['long_answer_pieces']} pieces); closed after "
        f"{c['pieces_read_before_closing']}: next request's TTFT {c['next_request_ttft_ms']} ms; "
        f"server logged the disconnect: {c['server_logged_disconnect']}",
    ]
    for a in examples:
        lines += [
            f"- [{a.message.hotel}/{a.message.kind}/{a.message.lang}] {a.message.text}",
            f"  expect {list(a.message.expect)} -> {'holds' if a.right else 'MISSING'} ({a.layer})",
            "  model: " + a.answer[:400].replace("\n", " ⏎ "),
            "  offline: " + a.offline[:200].replace("\n", " ⏎ "),
        ]
    return "\n".join(lines)


async def guest_stream(
    http: httpx.AsyncClient, auth: dict[str, str], question: str, *, leave: bool = False
) -> tuple[float | None, dict[str, Any]]:
    """Seconds from the POST to the first `delta` event, and the `done` event's data;
    `leave`: the guest closes the stream at its first delta."""
    started = time.perf_counter()
    first: float | None = None
    done: dict[str, Any] = {}
    event = ""
    body = {"message": question}
    async with http.stream("POST", "/api/guest/chat/stream", json=body, headers=auth) as response:
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "delta" and first is None:
                first = time.perf_counter() - started
                if leave:
                    break
            elif line.startswith("data: ") and event == "done":
                done = json.loads(line.removeprefix("data: "))
    return first, done


async def measure_serve(base_url: str, log: Path, data_dir: Path) -> dict[str, Any]:
    """A real `posada serve` (the demo hotel) with the local model as its LLM: the guest's
    time to first text over the streamed chat, and a guest who leaves mid-answer."""
    folder = data_dir / "serve"
    env = {**os.environ, "POSADA_DATA_DIR": str(folder)}
    demo = [sys.executable, "-m", "posada", "demo"]
    await asyncio.to_thread(subprocess.run, demo, env=env, check=True, capture_output=True)
    port = int(base_url.rsplit(":", 1)[1].split("/")[0])
    env |= posada_settings(host="127.0.0.1", port=port)
    ttfts: list[float] = []
    layers: Counter[str] = Counter()
    with posada_server(env=env, log=data_dir / "posada-serve.log") as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
            login = await http.post("/api/guest/login", json=await first_stay(str(folder)))
            auth = {"Authorization": f"Bearer {login.json()['token']}"}
            for question in SERVE_QUESTIONS:
                first, done = await guest_stream(http, auth, question)
                layers[str(done.get("layer") or done.get("model"))] += 1
                if first is not None and done.get("model"):
                    ttfts.append(first)
            before = disconnections(log)
            await guest_stream(http, auth, SERVE_QUESTIONS[0] + " Tell me everything.", leave=True)
            await asyncio.sleep(
                2
            )  # the upstream learns at its next token; the log is another process's
            left = disconnections(log) > before
    return {
        "questions": len(SERVE_QUESTIONS),
        "answers_by": dict(layers),
        "guest_ttft_median_ms": round(statistics.median(ttfts) * 1000, 1) if ttfts else None,
        "guest_ttft_p95_ms": round(p95(ttfts) * 1000, 1) if ttfts else None,
        "guest_left_model_server_logged_disconnect": left,
    }


async def run(args: argparse.Namespace, base_url: str, log: Path) -> dict[str, Any]:
    started = time.perf_counter()
    client = OpenAIChatModel(model=MODEL_ALIAS, base_url=base_url)
    await timed_stream(client, SHORT, 8)  # warm
    cancel = await measure_cancel(client, log)
    print(f"cancel: {cancel}", file=sys.stderr)
    loaded, asked = await ask_offline(llm_settings(args.data_dir, None), args)
    await ask_local(llm_settings(args.data_dir, base_url), loaded, asked)
    figures = {"threads": args.threads, **summarise(asked)}
    print(report(figures, cancel, asked[: args.examples]))
    result = {
        **figures,
        "cancel": cancel,
        "posada_serve": None,
        "answers": [
            {"fact": a.message.fact, "question": a.message.text, "expect": list(a.message.expect),
             "layer": a.layer, "right": a.right, "incomplete": a.incomplete, "answer": a.answer,
             "offline": a.offline, "offline_right": a.offline_right,
             "ttft_ms": round(a.call.ttft * 1000, 1) if a.call and a.call.ttft else None,
             "tokens_per_s": round(a.call.tokens_per_s, 1)
             if a.call and a.call.tokens_per_s else None}
            for a in asked
        ],
    }  # fmt: skip
    save(args, result, started)  # before the last part, which may fail on its own
    if args.serve:
        result["posada_serve"] = serve = await measure_serve(base_url, log, args.data_dir)
        print(f"posada serve (demo hotel, {serve['questions']} questions): {serve}")
        save(args, result, started)
    return result


def save(args: argparse.Namespace, result: dict[str, Any], started: float) -> None:
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(f"all {result['seconds']} s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=30, help="at most this many")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--examples", type=int, default=6, help="answers printed")
    parser.add_argument("--corpus", type=Path, default=HERE.parent.parent / "shared" / "corpus")
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--no-serve", dest="serve", action="store_false", help="skip posada serve")
    args = parser.parse_args(argv)
    missing = missing_modules(need_model=True)
    if missing:
        print(f"the local model is not installed ({', '.join(missing)}): make model-serve")
        return 2
    if not prepare(args, prefix="posada-local-"):
        return 2
    port = free_port()
    log = args.data_dir / "model-serve.log"
    serve = ["model", "serve", "--port", str(port), "--threads", str(args.threads)]
    # Unbuffered: the server's "Disconnected" line is a print, read from the log at once.
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    ready = f"http://127.0.0.1:{port}/v1/models"
    with run_server(serve, env=env, ready=ready, log=log, timeout_s=300):
        asyncio.run(run(args, f"http://127.0.0.1:{port}/v1", log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
