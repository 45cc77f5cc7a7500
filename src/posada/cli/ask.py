"""`posada ask`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from posada.answers.models import Answer
from posada.answers.pipeline import answer_question
from posada.cli._common import run_with_runtime
from posada.knowledge.retrieval import Visibility
from posada.runtime import Runtime
from posada.tenants.service import get_tenant, get_unit_id


def ask(
    question: Annotated[str, typer.Argument(help="what a guest would ask")],
    tenant: Annotated[str, typer.Option(help="the hotel's slug")],
    unit: Annotated[str | None, typer.Option(help="ask as a guest staying in this unit")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="answer, layer, sources, timings")
    ] = False,
) -> None:
    """Answer a question as the guest chat would (nothing is stored)."""

    async def work(runtime: Runtime) -> Answer:
        async with runtime.pool.connection() as conn:
            hotel = await get_tenant(conn, slug=tenant)
            unit_id = None if unit is None else await get_unit_id(conn, tenant=hotel, slug=unit)
        return await answer_question(
            runtime=runtime, visibility=Visibility(hotel.id, unit_id), question=question
        )

    answer = run_with_runtime(work)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "answer": answer.text,
                    "layer": answer.layer,
                    "sources": [s.as_dict() for s in answer.sources],
                    "timings": answer.timings,
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    typer.echo(answer.text)
    typer.echo(f"\n[{answer.layer}, {answer.timings['total']:.0f} ms]")
    for source in answer.sources:
        typer.echo(f"- {source.title} › {source.heading.split(' › ')[-1]} ({source.source})")
