"""The staff page in headless Chromium, against a real `posada serve` on the session's
database: logging in, the reservations' infinite scroll, a handoff between a guest's page
and the front desk's, and an upload with a broken file."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, Route, ViewportSize, async_playwright, expect

from posada.runtime import Runtime
from posada.staff.accounts import Role, add_member
from tests.integration.test_web import CHROMIUM, FLAGS, SCREENS
from tests.support.abuse import HEADER, Hotel, app_client, make_hotel
from tests.support.helpers import serve_fake_llm, serve_posada
from tests.support.staff_login import ask, guest_login

PASSWORD = "correct horse battery"
PHONE: ViewportSize = {"width": 360, "height": 740}
LAPTOP: ViewportSize = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def site(runtime: Runtime) -> Iterator[str]:
    """posada answering through a simulated LLM."""
    for llm in serve_fake_llm("--ttft-ms", "50", "--tokens-per-s", "40"):
        yield from serve_posada(
            runtime, env={"POSADA_LLM_BASE_URL": llm, "POSADA_LLM_API_KEY": "test"}
        )


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        await launched.close()


async def member(runtime: Runtime, hotel: Hotel, role: Role) -> str:
    """A new account of `role` at `hotel`; its e-mail."""
    email = f"{role}-{uuid.uuid4().hex[:6]}@{hotel.tenant.slug}.example"
    async with runtime.pool.connection() as conn:
        await add_member(
            conn, tenant_id=hotel.tenant.id, email=email, role=role, password=PASSWORD,
            min_length=10,
        )  # fmt: skip
    return email


async def log_in(page: Page, hotel: Hotel, email: str, password: str = PASSWORD) -> None:
    await page.fill("#login-tenant", hotel.tenant.slug)
    await page.fill("#login-email", email)
    await page.fill("#login-password", password)
    await page.click("#login button[type=submit]")


def screenshot(name: str) -> Path:
    """Where a test leaves a picture of the page, to look at."""
    SCREENS.mkdir(exist_ok=True)
    return SCREENS / f"staff-{name}.png"


async def test_log_in_wrong_then_right_and_the_tabs_follow_the_role(
    site: str, runtime: Runtime, browser: Browser
) -> None:
    hotel = await make_hotel(runtime, [("S1", "a", "1111", 1)])
    desk = await member(runtime, hotel, "reception")
    owner = await member(runtime, hotel, "owner")
    page = await browser.new_page(viewport=PHONE, locale="en-US")
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    await page.goto(f"{site}/staff")
    await expect(page.locator("#login")).to_be_visible()
    await expect(page.locator("#login button[type=submit]")).to_have_text("Log in")

    await log_in(page, hotel, desk, "not the password")
    await expect(page.locator("#login-error")).to_have_text("Wrong hotel, e-mail or password.")
    await page.screenshot(path=screenshot("login-phone"))
    await expect(page.locator("#tabs")).to_be_hidden()

    # Throttled (test_staff.py drives the server's own 429): the page says to wait, not
    # that the password is wrong, so a member does not think they forgot it.
    async def throttled(route: Route) -> None:
        await route.fulfill(status=429, json={"detail": "too many login attempts"})

    await page.route("**/api/staff/login", throttled)
    await log_in(page, hotel, desk)
    busy = "Too many tries: wait a few minutes and try again."
    await expect(page.locator("#login-error")).to_have_text(busy)
    await page.unroute("**/api/staff/login", throttled)

    await log_in(page, hotel, desk)
    await expect(page.locator("#tabs")).to_be_visible()
    await expect(page.locator("#login")).to_be_hidden()
    await expect(page.locator("#res-list li")).to_have_count(1)
    await expect(page.locator("#res-list li .name")).to_have_text("Guest S1")
    # Reception: reservations and conversations only.
    shown = page.locator("#tabs [role=tab]:visible")
    await expect(shown).to_have_count(2)

    # A reload keeps the session (the cookie), and asks /api/staff/me for the CSRF token.
    await page.reload()
    await expect(page.locator("#tabs")).to_be_visible()
    await page.click("#logout")
    await expect(page.locator("#login")).to_be_visible()
    await page.reload()
    await expect(page.locator("#login")).to_be_visible()

    # An owner sees every tab; the page speaks Spanish when asked.
    await log_in(page, hotel, owner)
    await expect(shown).to_have_count(6)
    await page.select_option("#lang", "es")
    await expect(page.locator("#tabs [data-tab=reservations]")).to_have_text("Reservas")
    await page.click("#tabs [data-tab=staff]")
    await expect(page.locator("#acc-list li")).to_have_count(2)
    await page.screenshot(path=screenshot("accounts-phone"))
    await page.click("#tabs [data-tab=reservations]")
    await page.set_viewport_size(LAPTOP)
    await page.screenshot(path=screenshot("reservations-top-laptop"))
    assert [text for text in console if "Content Security Policy" in text] == []


async def test_the_reservations_load_the_next_page_when_scrolled(
    site: str, runtime: Runtime, browser: Browser
) -> None:
    # 60 stays: more than two of the page's pages (25 each).
    stays = [(f"R{n:03d}", "ab"[n % 2], f"{5000 + n}", n // 4) for n in range(60)]
    hotel = await make_hotel(runtime, stays)
    desk = await member(runtime, hotel, "reception")
    page = await browser.new_page(viewport=PHONE, locale="en-US")
    asked: list[str] = []
    page.on(
        "request",
        lambda request: (
            asked.append(request.url) if "/api/staff/reservations" in request.url else None
        ),
    )
    await page.goto(f"{site}/staff")
    await log_in(page, hotel, desk)
    rows = page.locator("#res-list > li")
    await expect(rows).to_have_count(25)
    assert not any("after=" in url for url in asked)

    await page.locator("#res-more").scroll_into_view_if_needed()
    await expect(rows).to_have_count(50)
    assert any("after=" in url for url in asked), asked
    await page.locator("#res-more").scroll_into_view_if_needed()
    await expect(rows).to_have_count(60)
    refs = await page.locator("#res-list .muted").all_inner_texts()
    assert sorted(r.split(" · ")[0] for r in refs) == sorted(ref for ref, *_ in stays)

    # A filter starts again from its first page (the sentinel may be in view at once on
    # the shorter list, so the next page can follow before a count of 25 is seen).
    asked.clear()
    await page.select_option("#res-filters select[name=unit]", "a")
    await page.locator("#res-more").scroll_into_view_if_needed()
    await expect(rows).to_have_count(30)
    filtered = [url for url in asked if "unit=a" in url]
    assert filtered, asked
    assert "after=" not in filtered[0], filtered
    assert any("after=" in url for url in filtered[1:]), filtered
    units = await page.locator("#res-list .unit").all_inner_texts()
    assert set(units) == {"A"}
    await page.screenshot(path=screenshot("reservations-phone"), full_page=False)
    await page.set_viewport_size(LAPTOP)
    await page.screenshot(path=screenshot("reservations-laptop"))


async def test_a_guest_asks_for_reception_and_the_front_desk_answers_live(
    site: str, runtime: Runtime, browser: Browser
) -> None:
    hotel = await make_hotel(runtime, [("G1", "a", "4321", 1)])
    desk = await member(runtime, hotel, "reception")
    staff = await (await browser.new_context(viewport=LAPTOP, locale="en-US")).new_page()
    guest = await (await browser.new_context(viewport=PHONE, locale="en-US")).new_page()
    await staff.goto(f"{site}/staff")
    await log_in(staff, hotel, desk)
    await staff.click("#tabs [data-tab=conversations]")
    await expect(staff.locator("#conv-empty")).to_be_visible()

    await guest.goto(f"{site}/?hotel={hotel.tenant.slug}")
    await guest.fill("#check-in", hotel.day(1).isoformat())
    await guest.fill("#phone", "4321")
    await guest.click("#login button[type=submit]")
    await guest.click("#reception")
    notice = "A person from reception will answer you here shortly."
    await expect(guest.locator("#messages li.notice .text")).to_have_text(notice)
    await expect(guest.locator("#handoff")).to_have_text(
        "A person from reception will answer you here."
    )
    await expect(guest.locator("#reception")).to_be_hidden()

    # The front desk's inbox shows it waiting, without a reload.
    waiting = staff.locator("#conv-list li.waiting")
    await expect(waiting).to_have_count(1)
    await expect(staff.locator("#waiting-count")).to_have_text("1")
    await waiting.click()
    await expect(staff.locator("#conv-messages li.notice .text")).to_have_text(notice)
    await expect(staff.locator("#conv-state")).to_have_text("waiting")
    await staff.fill("#conv-reply textarea", "Hello, this is Ana at reception. How can I help?")
    await staff.click("#conv-reply button[type=submit]")
    await expect(staff.locator("#conv-state")).to_have_text("with reception")
    await expect(staff.locator("#waiting-count")).to_be_hidden()

    # The guest's page shows the reply as it is sent.
    reply = guest.locator("#messages li.staff .text")
    await expect(reply).to_have_text("Hello, this is Ana at reception. How can I help?")
    await expect(guest.locator("#handoff")).to_have_text("You are talking to reception.")

    # While reception has it, posada does not answer; the desk sees the message live.
    await guest.fill("#message", "Could you bring two more towels to unit A?")
    await guest.click("#ask button[type=submit]")
    asked = staff.locator("#conv-messages li.guest .text")
    await expect(asked).to_have_text("Could you bring two more towels to unit A?")
    await expect(guest.locator("#messages li.assistant")).to_have_count(0)
    await staff.screenshot(path=screenshot("conversation-laptop"))
    await guest.screenshot(path=screenshot("guest-handoff-phone"))

    # Handed back: the guest is told, and may ask posada (or reception) again.
    await staff.click("#conv-handback")
    await expect(staff.locator("#conv-handback")).to_be_hidden()
    await expect(guest.locator("#messages li.notice .text").last).to_have_text(
        "Reception has finished; I can answer your questions again."
    )
    await expect(guest.locator("#handoff")).to_be_hidden()
    await expect(guest.locator("#reception")).to_be_visible()

    # The same conversation on the desk's phone: the list, then the conversation alone.
    await staff.set_viewport_size(PHONE)
    await staff.click("#conv-back")
    await expect(staff.locator("#conv-list li")).to_have_count(1)
    await staff.screenshot(path=screenshot("conversations-phone"))


GOOD = """---
title: Sauna and spa
language: en
---
# Sauna and spa

The rooftop sauna opens at seven in the morning and closes at ten at night.
"""
ALSO_GOOD = """---
title: Parking
language: en
---
# Parking

Guests park for free in the garage under the lobby; the gate opens with the room key.
"""
BROKEN = """---
title: Nothing here
language: en
---
"""


async def test_an_upload_with_a_broken_file_names_it_by_line_and_stores_the_rest(
    site: str, runtime: Runtime, browser: Browser, tmp_path: Path
) -> None:
    hotel = await make_hotel(runtime, [])
    manager = await member(runtime, hotel, "manager")
    files = []
    for name, text in (("sauna.md", GOOD), ("parking.md", ALSO_GOOD), ("broken.md", BROKEN)):
        (tmp_path / name).write_text(text, encoding="utf-8")
        files.append(str(tmp_path / name))
    page = await browser.new_page(viewport=PHONE, locale="en-US")
    await page.goto(f"{site}/staff")
    await log_in(page, hotel, manager)
    await page.click("#tabs [data-tab=knowledge]")
    await expect(page.locator("#doc-empty")).to_be_visible()
    await page.set_input_files("#doc-upload", files)

    await expect(page.locator("#doc-summary")).to_contain_text("Stored: 2 documents")
    failed = page.locator("#doc-files li.failed")
    await expect(failed).to_have_count(1)
    await expect(failed.locator("code")).to_have_text(
        "broken.md:5: the document has no text to answer from"
    )
    await expect(page.locator("#doc-files li.parsed")).to_have_count(2)
    assert await page.locator("#doc-progress progress").get_attribute("value") == "1"
    sources = page.locator("#doc-list li .source")
    await expect(sources).to_have_count(2)
    assert sorted(await sources.all_inner_texts()) == ["parking.md", "sauna.md"]
    await page.screenshot(path=screenshot("knowledge-phone"), full_page=True)

    # Deleted from the page: gone from the list and from the database.
    sauna = page.locator("#doc-list li", has_text="sauna.md")
    await sauna.get_by_role("button", name="Delete").click()
    await sauna.get_by_role("button", name="Delete? Press again").click()
    await expect(sources).to_have_count(1)
    await expect(sources).to_have_text("parking.md")
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT source FROM documents WHERE tenant_id = %s", (hotel.tenant.id,)
        )
        assert await cur.fetchall() == [("parking.md",)]


async def test_the_front_desk_adds_edits_cancels_and_imports_stays(
    site: str, runtime: Runtime, browser: Browser, tmp_path: Path
) -> None:
    hotel = await make_hotel(runtime, [])
    desk = await member(runtime, hotel, "reception")
    page = await browser.new_page(viewport=PHONE, locale="en-US")
    await page.goto(f"{site}/staff")
    await log_in(page, hotel, desk)
    await expect(page.locator("#res-empty")).to_be_visible()

    form = page.locator("#res-form")
    day = hotel.day(0).isoformat()
    later = hotel.day(-3).isoformat()
    await page.click("#res-add")
    await form.locator("[name=external_ref]").fill("W-1")
    await form.locator("[name=unit]").select_option("b")
    await form.locator("[name=guest_name]").fill("José Pérez")
    await form.locator("[name=phone_last4]").fill("7788")
    await form.locator("[name=check_in]").fill(later)
    await form.locator("[name=check_out]").fill(day)  # before check-in: refused
    await form.locator("button[type=submit]").click()
    await expect(form.locator(".error")).to_contain_text("check_out")
    await form.locator("[name=check_in]").fill(day)
    await form.locator("[name=check_out]").fill(later)
    await form.locator("button[type=submit]").click()
    await expect(form).to_be_hidden()
    rows = page.locator("#res-list > li")
    await expect(rows).to_have_count(1)
    await expect(rows.locator(".name")).to_have_text("José Pérez")
    await expect(rows.locator(".unit")).to_have_text("B")

    await rows.get_by_role("button", name="Edit").click()
    await expect(form.locator("[name=external_ref]")).to_be_disabled()
    await form.locator("[name=guest_name]").fill("José Pérez Gil")
    await form.locator("button[type=submit]").click()
    await expect(rows.locator(".name")).to_have_text("José Pérez Gil")

    await rows.get_by_role("button", name="Cancel stay").click()
    await rows.get_by_role("button", name="Cancel? Press again").click()
    await expect(rows.locator(".badge")).to_have_text("cancelled")

    # A CSV with a bad line: every bad line named, nothing imported.
    bad = tmp_path / "stays.csv"
    bad.write_text(
        HEADER
        + f"C-1,a,Ana,1234,{day},{later},confirmed\n"
        + f"C-2,zz,Bea,1234,{day},{later},confirmed\n",
        encoding="utf-8",
    )
    await page.set_input_files("#res-import", str(bad))
    result = page.locator("#res-import-result")
    await expect(result.locator("li")).to_have_count(1)
    await expect(result.locator("li")).to_contain_text("line 3:")
    await expect(rows).to_have_count(1)
    good = tmp_path / "good.csv"
    good.write_text(HEADER + f"C-1,a,Ana,1234,{day},{later},confirmed\n", encoding="utf-8")
    await page.set_input_files("#res-import", str(good))
    await expect(result).to_have_text("Imported: 1 new, 0 updated.")
    await expect(rows).to_have_count(2)
    await page.fill("#res-filters input[name=name]", "jose")
    await expect(rows).to_have_count(1)
    await page.screenshot(path=screenshot("reservations-form-phone"))


HELIPAD = "Is there a helipad for my helicopter?"
ROOF = "Yes: the helipad is on the roof of building B; book it at reception a day ahead."


async def test_the_manager_adds_an_unanswered_question_to_the_faq(
    site: str, runtime: Runtime, browser: Browser
) -> None:
    hotel = await make_hotel(runtime, [("S1", "a", "2001", 1)])
    manager = await member(runtime, hotel, "manager")
    async with app_client(runtime) as http:
        guest = await guest_login(http, hotel, 1, "2001")
        declined = await ask(http, guest, HELIPAD)
        assert declined["sources"] == []

        page = await browser.new_page(viewport=LAPTOP, locale="en-US")
        await page.goto(f"{site}/staff")
        await log_in(page, hotel, manager)
        await page.click("#tabs [data-tab=report]")
        group = page.locator("#report-list > li")
        await expect(group).to_have_count(1)
        await expect(group.locator(".question")).to_have_text(HELIPAD)
        await group.get_by_role("button", name="Add to FAQ").click()
        dialog = page.locator("#faq-dialog")
        await expect(dialog.locator("[name=question]")).to_have_value(HELIPAD)
        await dialog.locator("[name=answer]").fill(ROOF)
        await page.screenshot(path=screenshot("faq-dialog-laptop"))
        await dialog.locator("button[type=submit]").click()
        await expect(dialog).to_be_hidden()
        await expect(group.locator(".badge.ok")).to_be_visible()

        await page.click("#tabs [data-tab=knowledge]")
        entry = page.locator("#faq-list > li")
        await expect(entry).to_have_count(1)
        await expect(entry.locator(".answer")).to_have_text(ROOF)
        # The guest's next question is answered from it.
        again = await ask(http, guest, HELIPAD, declined["conversation_id"])
        assert again["answer"] == ROOF


async def test_conversations_page_on_scroll_and_an_open_one_loads_older_messages_at_the_top(
    site: str, runtime: Runtime, browser: Browser
) -> None:
    hotel = await make_hotel(runtime, [("S1", "a", "3001", 1)])
    desk = await member(runtime, hotel, "reception")
    # 40 conversations of one stay (more than a page of 25); the newest has 70 messages.
    async with runtime.pool.connection() as conn:
        for n in range(40):
            cur = await conn.execute(
                "INSERT INTO conversations (tenant_id, reservation_id, updated_at) "
                "SELECT tenant_id, id, now() - make_interval(mins => %s) FROM reservations "
                "WHERE tenant_id = %s RETURNING id",
                (40 - n, hotel.tenant.id),
            )
            row = await cur.fetchone()
            assert row is not None
            count = 70 if n == 39 else 1
            await conn.execute(
                "INSERT INTO messages (conversation_id, tenant_id, role, content) "
                "SELECT %s, %s, 'guest', 'question ' || %s || '.' || i "
                "FROM generate_series(1, %s) i",
                (row[0], hotel.tenant.id, n, count),
            )
    page = await browser.new_page(viewport=PHONE, locale="en-US")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/conversations?" in r.url else None)
    await page.goto(f"{site}/staff#conversations")
    await log_in(page, hotel, desk)
    items = page.locator("#conv-list > li")
    await expect(items).to_have_count(25)
    await expect(items.first.locator(".title")).to_have_text("question 39.1")
    await page.locator("#conv-more").scroll_into_view_if_needed()
    await expect(items).to_have_count(40)
    assert any("before=" in url for url in asked), asked

    await items.first.click()
    messages = page.locator("#conv-messages > li")
    await expect(messages).to_have_count(30)
    await expect(messages.last.locator(".text")).to_have_text("question 39.70")
    for shown in (60, 70):
        await page.locator("#conv-scroll").evaluate("(box) => { box.scrollTop = 0; }")
        await expect(messages).to_have_count(shown)
    texts = await page.locator("#conv-messages .text").all_inner_texts()
    assert texts == [f"question 39.{i}" for i in range(1, 71)]
