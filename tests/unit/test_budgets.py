"""A month's arithmetic and a budget's thresholds, without a database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from posada.core.errors import InvalidInput
from posada.core.groups import BudgetSettings
from posada.tenants.budgets import Budget, Month, check_budget, project

JUNE = Month(2036, 6)


def test_a_month_is_parsed_strictly() -> None:
    assert Month.parse("2036-06") == JUNE
    assert str(Month.parse(" 2036-12 ")) == "2036-12"
    for bad in ("2036-13", "2036-00", "2036-6", "June", "", "9999-12", "2036-06-01"):
        with pytest.raises(InvalidInput, match="YYYY-MM"):
            Month.parse(bad)


def test_a_months_edges_and_elapsed_share() -> None:
    assert (JUNE.start, JUNE.end, JUNE.days) == (
        datetime(2036, 6, 1, tzinfo=UTC), datetime(2036, 7, 1, tzinfo=UTC), 30,
    )  # fmt: skip
    assert Month(2036, 12).end == datetime(2037, 1, 1, tzinfo=UTC)
    assert JUNE.elapsed(datetime(2036, 6, 16, tzinfo=UTC)) == 0.5
    assert JUNE.elapsed(datetime(2036, 5, 20, tzinfo=UTC)) == 0
    assert JUNE.elapsed(datetime(2036, 8, 1, tzinfo=UTC)) == 1


def test_the_projection_is_the_pace_and_a_finished_month_its_total() -> None:
    assert project(spent=4.0, elapsed=0.5) == 8.0
    assert project(spent=4.0, elapsed=1.0) == 4.0
    assert project(spent=0.0, elapsed=0.0) == 0.0
    # Ten minutes into a 30-day month, $0.05 would be a $216 month: the pace is taken
    # over one day at least, $1.50.
    ten_minutes = 10 / (30 * 24 * 60)
    assert project(spent=0.05, elapsed=ten_minutes, days=30) == pytest.approx(1.5)
    assert project(spent=0.05, elapsed=2 / 30, days=30) == pytest.approx(0.75)


def _status(spent: float, own: Budget | None, defaults: BudgetSettings) -> dict[str, object]:
    now = datetime(2036, 6, 16, tzinfo=UTC)  # half of June
    return check_budget(own=own, defaults=defaults, month=JUNE, spent=spent, now=now).as_dict()


def test_the_thresholds_warn_at_80_percent_projected_and_act_once_spent() -> None:
    own, defaults = Budget(monthly_usd=10, action="no_llm"), BudgetSettings()
    under = _status(3.99, own, defaults)
    assert (under["warning"], under["over"], under["applied"]) == (False, False, "continue")
    warned = _status(4.0, own, defaults)
    assert (warned["ratio"], warned["warning"], warned["applied"]) == (0.8, True, "continue")
    over = _status(10.0, own, defaults)
    assert (over["ratio"], over["over"], over["applied"]) == (2.0, True, "no_llm")


def test_the_hotels_own_budget_wins_over_the_default_and_none_is_none() -> None:
    defaults = BudgetSettings(monthly_usd=5, action="small_only", warn_ratio=0.5)
    assert _status(1, None, defaults)["source"] == "default"
    assert _status(3, None, defaults)["applied"] == "continue"  # $6 projected, $3 spent
    assert _status(5, None, defaults)["applied"] == "small_only"
    mine = _status(5, Budget(monthly_usd=100), defaults)
    assert (mine["source"], mine["applied"], mine["warning"]) == ("hotel", "continue", False)
    none = _status(50, None, BudgetSettings())
    assert (none["source"], none["ratio"], none["warning"], none["over"]) == (
        "none", None, False, False,
    )  # fmt: skip


def test_a_budget_refuses_what_is_not_an_amount_or_an_action() -> None:
    for amount in (-1.0, 0.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="monthly_usd"):
            Budget(monthly_usd=amount)
    with pytest.raises(ValueError, match="action"):
        Budget.model_validate({"monthly_usd": 1, "action": "panic"})
