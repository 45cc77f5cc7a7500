"""The staff page's Performance and cost tab in headless Chromium, against a real `posada
serve`: shown to managers and owners, not the front desk; its SVG charts drawn from known
rows of the persisted figures (bars, columns and points, a budget line); the P50/P95/P99
table; the owner's budget form; a phone's width with nothing wider than the page; and one
real guest chat that reaches the tab through the rollup writer."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from posada.observe import histogram
from posada.runtime import Runtime
from posada.staff.accounts import Role
from tests.integration.test_staff_performance import add_answers, add_requests, this_minute
from tests.integration.test_staff_web import LAPTOP, PHONE, log_in, member, screenshot
from tests.integration.test_web import CHROMIUM, FLAGS
from tests.support.abuse import Hotel, make_hotel
from tests.support.helpers import serve_fake_llm, serve_posada
from tests.support.staff_login import ask, guest_login

# Routes and their durations (ms), as a known minute of the last hour.
KNOWN = {
    "POST /api/guest/chat": [float(n) for n in range(20, 220, 2)],  # 100 requests
    "GET /api/guest/conversations/{conversation_id}": [4.0] * 30 + [12.0] * 10,
    "POST /api/guest/login": [30.0] * 20 + [300.0],
}
UNDER_360 = re.compile(r"^(\d{1,2}|[12]\d\d|3[0-5]\d)(\.\d+)?$")  # a width in px
ANSWERS = {"llm": 4, "faq": 3, "exact": 2, "semantic": 1}  # cache and FAQ: 60%


@pytest.fixture(scope="module")
def site(runtime: Runtime) -> Iterator[str]:
    """posada writing no figures of its own: the tab shows the known rows alone."""
    yield from serve_posada(runtime, env={"POSADA_METRICS_ENABLED": "false"})


@pytest.fixture(scope="module")
def live_site(runtime: Runtime) -> Iterator[str]:
    """posada answering through a simulated LLM, writing its figures every half second."""
    for llm in serve_fake_llm("--ttft-ms", "20", "--tokens-per-s", "200"):
        yield from serve_posada(
            runtime,
            env={
                "POSADA_LLM_BASE_URL": llm,
                "POSADA_LLM_API_KEY": "test",
                "POSADA_METRICS_FLUSH_S": "0.5",
                "POSADA_METRICS_REPLICA": "web-test",
            },
        )


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        await launched.close()


def ms(value: float) -> str:
    """A duration as the page writes it in English (staff-performance.js `ms`)."""
    if value >= 1000:
        return f"{value / 1000:.2f}".rstrip("0").rstrip(".") + " s"
    return f"{value:.1f}".rstrip("0").rstrip(".") + " ms" if value < 10 else f"{value:.0f} ms"


def percentile(durations: list[float], p: int) -> float:
    return histogram.percentile(histogram.merge([_counts(durations)]), p)


def _counts(durations: list[float]) -> list[int]:
    counts = histogram.empty()
    for value in durations:
        histogram.add(counts, value)
    return counts


def days_so_far() -> list[datetime]:
    """Midnight of each day of this month up to today (UTC)."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return [today.replace(day=d) for d in range(1, today.day + 1)]


async def known_hotel(runtime: Runtime) -> Hotel:
    """A hotel with the KNOWN routes, the ANSWERS and a day's spend for each day so far."""
    hotel = await make_hotel(runtime, [("K1", "a", "6001", 1)])
    now = this_minute()
    for route, durations in KNOWN.items():
        await add_requests(runtime, hotel, route, durations, at=now)
    await add_answers(runtime, hotel, ANSWERS, now)
    async with runtime.pool.connection() as conn:
        for k, day in enumerate(days_so_far()):
            await conn.execute(
                """INSERT INTO metric_llm (grain, bucket, replica, tenant_id, model, calls,
                       input_tokens, output_tokens, cost_usd)
                   VALUES ('d', %s, 'test-a', %s, 'gpt-test', %s, 1000, 100, %s)""",
                (day, hotel.tenant.id, 10 + k, 0.5 + 0.25 * k),
            )
    return hotel


async def values(page: Page, selector: str) -> list[float]:
    """The data-value of each element the selector finds."""
    found = await page.locator(selector).evaluate_all(
        "(nodes) => nodes.map((n) => n.dataset.value)"
    )
    return [float(v) for v in found]


async def no_overflow(page: Page) -> None:
    """Nothing on the page is wider than the viewport."""
    wide = await page.evaluate("document.documentElement.scrollWidth - innerWidth")
    assert wide <= 0, f"the page is {wide}px wider than the viewport"


async def test_the_tab_is_for_managers_and_owners_not_the_front_desk(
    site: str, runtime: Runtime, browser: Browser
) -> None:
    hotel = await make_hotel(runtime, [("T1", "a", "6101", 1)])
    tab = "#tabs [data-tab=performance]"
    roles: list[tuple[Role, bool]] = [("reception", False), ("manager", True), ("owner", True)]
    for role, visible in roles:
        page = await browser.new_page(viewport=LAPTOP, locale="en-US")
        await page.goto(f"{site}/staff")
        await log_in(page, hotel, await member(runtime, hotel, role))
        await expect(page.locator("#tabs")).to_be_visible()
        if visible:
            await expect(page.locator(tab)).to_have_text("Performance and cost")
        else:
            await expect(page.locator(tab)).to_be_hidden()
            # Asked for by its address, the front desk gets its first tab instead.
            await page.goto(f"{site}/staff#performance")
            await expect(page.locator("#reservations")).to_be_visible()
            await expect(page.locator("#performance")).to_be_hidden()
        await page.close()


async def test_the_charts_and_table_show_known_figures_and_the_owner_sets_the_budget(
    site: str, runtime: Runtime, browser: Browser
) -> None:
    hotel = await known_hotel(runtime)
    owner = await member(runtime, hotel, "owner")
    page = await browser.new_page(viewport=LAPTOP, locale="en-US")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(f"{site}/staff")
    await log_in(page, hotel, owner)
    await page.click("#tabs [data-tab=performance]")

    # The P50/P95/P99 table, busiest route first.
    rows = page.locator("#perf-routes tbody tr")
    await expect(rows.first).to_have_attribute("data-route", "POST /api/guest/chat")
    for route, durations in KNOWN.items():
        row = page.locator(f'#perf-routes tr[data-route="{route}"]')
        for p in (50, 95, 99):
            await expect(row.locator(f".p{p}")).to_have_text(ms(percentile(durations, p)))

    # The slowest routes: one bar each, longest P95 first.
    bars = "#chart-slowest svg g.bar"
    await expect(page.locator(bars)).to_have_count(len(KNOWN))
    p95 = sorted((percentile(d, 95) for d in KNOWN.values()), reverse=True)
    assert await values(page, bars) == p95
    tooltip = await page.locator(f"{bars} > title").first.text_content()
    assert "P99" in (tooltip or "")

    # Answers by layer, and the cache-and-FAQ share.
    await expect(page.locator("#perf-share")).to_contain_text("60% of 10 answers")
    layers = "#chart-layers svg g.bar"
    await expect(page.locator(layers)).to_have_count(4)
    assert await values(page, layers) == sorted(ANSWERS.values(), reverse=True)
    await expect(page.locator("#chart-layers g.bar.cached")).to_have_count(3)

    # The month: a point and a column per day so far, no budget line yet.
    days = days_so_far()
    spent = [0.5 + 0.25 * k for k in range(len(days))]
    await expect(page.locator("#chart-days svg g.column")).to_have_count(len(days))
    assert await values(page, "#chart-days g.column") == pytest.approx(spent)
    calls = [float(10 + k) for k in range(len(days))]
    assert await values(page, "#chart-calls g.column") == calls
    running = [sum(spent[: k + 1]) for k in range(len(days))]
    assert await values(page, "#chart-spend g.line.spent circle") == pytest.approx(running)
    await expect(page.locator("#chart-spend g.rule")).to_have_count(0)
    await expect(page.locator("#budget-status")).to_have_text("No monthly budget.")

    # The owner sets a budget: the status, and a budget line on both charts.
    form = page.locator("#budget-form")
    await expect(form).to_be_visible()
    await form.locator("input[name=monthly_usd]").fill("40")
    await form.locator("select[name=action]").select_option("small_only")
    await form.locator("button[type=submit]").click()
    await expect(page.locator("#budget-status")).to_contain_text("$40")
    await expect(page.locator("#budget-status")).to_contain_text("small model only")
    assert await values(page, "#chart-spend g.rule.budget") == [40.0]
    per_day = 40 / _days_in_month(days[0])
    assert await values(page, "#chart-days g.rule.budget") == pytest.approx([per_day])
    stored = await page.request.get(f"{site}/api/staff/budget")
    assert stored.ok
    assert (await stored.json())["monthly_usd"] == 40
    assert (await stored.json())["action"] == "small_only"

    # A refused amount says why, and changes nothing.
    await form.locator("input[name=monthly_usd]").evaluate("(input) => { input.min = ''; }")
    await form.locator("input[name=monthly_usd]").fill("-5")
    await form.locator("button[type=submit]").click()
    await expect(form.locator(".error")).not_to_be_empty()
    assert (await (await page.request.get(f"{site}/api/staff/budget")).json())["monthly_usd"] == 40

    await page.evaluate("scrollTo(0, 0)")  # the sticky tabs at the top of the picture
    await page.screenshot(path=screenshot("performance-laptop"), full_page=True)

    # A phone: the charts drawn again at its width, nothing wider than the page.
    await page.set_viewport_size(PHONE)
    await expect(page.locator("#chart-slowest svg")).to_have_attribute("width", UNDER_360)
    await no_overflow(page)
    await page.evaluate("scrollTo(0, 0)")
    await page.screenshot(path=screenshot("performance-phone"), full_page=True)
    await page.select_option("#lang", "es")
    await expect(page.locator("#tabs [data-tab=performance]")).to_have_text("Rendimiento y coste")
    await expect(page.locator("#perf-share")).to_contain_text("caché o FAQ")
    await no_overflow(page)
    await page.evaluate("scrollTo(0, 0)")
    await page.screenshot(path=screenshot("performance-es-phone"), full_page=True)
    assert errors == []


def _days_in_month(first: datetime) -> int:
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return (following - first).days


async def test_a_manager_reads_the_budget_but_has_no_form(
    site: str, runtime: Runtime, browser: Browser
) -> None:
    hotel = await known_hotel(runtime)
    page = await browser.new_page(viewport=PHONE, locale="en-US")
    await page.goto(f"{site}/staff")
    await log_in(page, hotel, await member(runtime, hotel, "manager"))
    await page.click("#tabs [data-tab=performance]")
    await expect(page.locator("#perf-routes tbody tr")).to_have_count(len(KNOWN))
    await expect(page.locator("#budget-status")).to_have_text("No monthly budget.")
    await expect(page.locator("#budget-form")).to_be_hidden()
    # Another window asks again: the week holds the same minute.
    await page.select_option("#perf-filters select[name=window]", "week")
    await expect(page.locator("#perf-routes tbody tr")).to_have_count(len(KNOWN))
    # Last month: finished, a column for each of its days, no projection.
    first = days_so_far()[0]
    last_month = (first - timedelta(days=1)).replace(day=1)
    await page.fill("#perf-filters input[name=month]", last_month.strftime("%Y-%m"))
    columns = page.locator("#chart-days svg g.column")
    await expect(columns).to_have_count(_days_in_month(last_month))
    await expect(page.locator("#chart-spend g.line.projected")).to_have_count(0)
    await expect(page.locator("#cost-summary")).to_have_text(
        f"{last_month.strftime('%B %Y')}: spent $0."
    )
    await expect(page.locator("#perf-error")).to_be_empty()
    await no_overflow(page)
    await page.evaluate("scrollTo(0, 0)")
    await page.screenshot(path=screenshot("performance-manager-phone"), full_page=True)


async def test_a_real_chat_reaches_the_tab(
    live_site: str, runtime: Runtime, browser: Browser
) -> None:
    site = live_site
    hotel = await make_hotel(runtime, [("C1", "a", "6201", 1)])
    async with httpx.AsyncClient(base_url=site, timeout=60) as http:
        auth = await guest_login(http, hotel, 1, "6201")
        await ask(http, auth, "What time is breakfast served?")
    # The server writes its figures every half second: wait for the chat's row.
    for _ in range(120):
        async with runtime.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT sum(answers) FROM metric_answers WHERE tenant_id = %s", (hotel.tenant.id,)
            )
            row = await cur.fetchone()
        if row is not None and row[0]:
            break
        await asyncio.sleep(0.25)
    else:
        pytest.fail("the chat's answer never reached metric_answers (the rollup writer)")
    page = await browser.new_page(viewport=LAPTOP, locale="en-US")
    await page.goto(f"{site}/staff")
    await log_in(page, hotel, await member(runtime, hotel, "manager"))
    await page.click("#tabs [data-tab=performance]")
    chat = page.locator('#perf-routes tr[data-route="POST /api/guest/chat"]')
    await expect(chat).to_have_count(1)
    await expect(chat.locator("td").nth(1)).to_have_text("1")
    await expect(page.locator("#perf-share")).to_contain_text("of 1 answer.")
    await expect(page.locator("#chart-layers svg g.bar")).to_have_count(1)
    await page.screenshot(path=screenshot("performance-live-laptop"))
