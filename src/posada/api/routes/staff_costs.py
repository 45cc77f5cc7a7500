"""The hotel's costs and monthly budget on the staff page: managers read them, the owner
sets the budget. Always the session's own hotel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from posada.api.deps import RuntimeDep
from posada.api.openapi import BODY, COMMON, responses
from posada.api.staff_auth import ManagerDep, OwnerDep
from posada.core.errors import Forbidden, NotAuthorized
from posada.observe.costs import hotel_costs
from posada.runtime import Runtime
from posada.tenants.budgets import Action, Budget, BudgetStatus, Month, guard_for, set_budget

router = APIRouter(prefix="/api/staff", tags=["staff"])


class BudgetChange(BaseModel):
    """A monthly budget in USD and what happens once it is spent; a null amount removes the
    hotel's own budget (the default, if any, applies again)."""

    model_config = ConfigDict(extra="forbid")

    monthly_usd: float | None = Field(gt=0, le=1e9, allow_inf_nan=False)
    action: Action = "continue"


async def _status(runtime: Runtime, tenant_id: int, *, fresh: bool = False) -> BudgetStatus:
    guard = guard_for(runtime.pool)
    return await guard.status(
        runtime.pool, tenant_id=tenant_id, settings=runtime.settings.budget, fresh=fresh
    )


@router.get("/costs", responses=responses(NotAuthorized, Forbidden, *COMMON))
async def staff_costs(
    session: ManagerDep,
    runtime: RuntimeDep,
    month: Annotated[
        str | None, Query(max_length=20, description="YYYY-MM; the current month if absent")
    ] = None,
) -> dict[str, Any]:
    """The month's LLM and embedding spend, calls, tokens and answers by day, its
    projection, and the budget's status this month."""
    now = guard_for(runtime.pool).clock()
    chosen = Month.of(now) if month is None else Month.parse(month)
    tenant_id = session.member.tenant_id
    async with runtime.pool.connection() as conn:
        costs = await hotel_costs(conn, tenant_id=tenant_id, month=chosen, now=now)
    # Fresh: the page shows what the database holds now, and the guard learns it too.
    status = await _status(runtime, tenant_id, fresh=True)
    return {**costs.as_dict(), "budget": status.as_dict()}


@router.get("/budget", responses=responses(NotAuthorized, Forbidden, *COMMON))
async def staff_budget(session: ManagerDep, runtime: RuntimeDep) -> dict[str, Any]:
    """The hotel's monthly budget, this month's spend and projection against it."""
    return (await _status(runtime, session.member.tenant_id, fresh=True)).as_dict()


@router.put("/budget", responses=responses(NotAuthorized, Forbidden, *BODY, *COMMON))
async def staff_set_budget(
    body: BudgetChange, session: OwnerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Set (or remove) the hotel's monthly budget; this process applies it at once, the
    others within POSADA_BUDGET_REFRESH_S."""
    budget = None
    if body.monthly_usd is not None:
        budget = Budget(monthly_usd=body.monthly_usd, action=body.action)
    tenant_id = session.member.tenant_id
    async with runtime.pool.connection() as conn:
        await set_budget(conn, tenant_id=tenant_id, budget=budget)
    guard_for(runtime.pool).forget(tenant_id)  # and warn again against the new amount
    return (await _status(runtime, tenant_id, fresh=True)).as_dict()
