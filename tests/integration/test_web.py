"""The guest chat page in headless Chromium, against a real `posada serve`."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Route, async_playwright, expect

from posada.runtime import Runtime
from tests.support.helpers import StayFinder, serve_fake_llm, serve_posada

# Pictures of the pages a test leaves to be looked at (the newest run's, by name).
SCREENS = Path(tempfile.gettempdir()) / "posada-screens"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
    pytest.skip(
        "Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True
    )

# Flags for a closed network and a root user (as the machines that run this are).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def site(runtime: Runtime) -> Iterator[str]:
    """posada answering through a simulated LLM that writes at a visible pace."""
    for llm in serve_fake_llm("--ttft-ms", "100", "--tokens-per-s", "8"):
        yield from serve_posada(
            runtime, env={"POSADA_LLM_BASE_URL": llm, "POSADA_LLM_API_KEY": "test"}
        )


async def test_log_in_ask_see_the_stream_reload_see_the_history(
    site: str,
    current_stay: StayFinder,
    runtime: Runtime,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    stay = await current_stay("coral")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = await browser.new_page(viewport={"width": 390, "height": 844}, locale="en-US")
        # Chromium reports every resource or script the CSP blocked on the console.
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        loaded = await page.goto(f"{site}/?hotel=casa-azul")
        assert loaded is not None
        policy = loaded.headers["content-security-policy"]
        assert "script-src 'self';" in policy
        assert "frame-ancestors 'none'" in policy
        await expect(page.locator("#hotel-name")).to_have_text("Hotel Casa Azul")
        await expect(page.locator("#login")).to_be_visible()
        await expect(page.locator("button[type=submit]").first).to_have_text("Log in")

        await page.fill("#check-in", "2001-01-01")
        await page.fill("#phone", stay.phone_last4)
        await page.click("#login button[type=submit]")
        await expect(page.locator("#login-error")).to_have_text(
            "We could not find your reservation."
        )

        await page.fill("#check-in", stay.check_in.isoformat())
        await page.click("#login button[type=submit]")
        await expect(page.locator("#chat")).to_be_visible()
        await expect(page.locator("#login")).to_be_hidden()

        # Note every length the answer's text takes while it is written.
        await page.evaluate("""() => {
            window.lengths = new Set();
            new MutationObserver(() => {
                const last = [...document.querySelectorAll('#messages li.assistant .text')].pop();
                if (last) window.lengths.add(last.textContent.length);
            }).observe(document.getElementById('messages'),
                       {childList: true, subtree: true, characterData: true});
        }""")
        await page.fill("#message", "How much is a relaxing massage at the spa?")
        await page.click("#ask button[type=submit]")
        answer = page.locator("#messages li.assistant .text").last
        await expect(answer).to_contain_text("150.000", timeout=15_000)
        lengths = await page.evaluate("() => [...window.lengths].filter((n) => n > 0).length")
        assert lengths > 3, "the answer was rendered piece by piece as it arrived"
        await expect(page.locator("#messages li.assistant .sources").last).to_contain_text(
            "Sources:"
        )
        # The new conversation's live stream gave the answer its stored id: thumbs on it.
        await expect(
            page.locator("#messages li.assistant").last.locator(".feedback button")
        ).to_have_count(2)
        await page.screenshot(path=str(tmp_path_factory.mktemp("web") / "chat.png"))

        await page.reload()
        await expect(page.locator("#chat")).to_be_visible()
        await expect(page.locator("#messages li")).to_have_count(2)
        await expect(page.locator("#messages li.guest")).to_have_text(
            "How much is a relaxing massage at the spa?"
        )

        # The token is kept for the tab only, never where other tabs or later visits read it.
        assert await page.evaluate("() => sessionStorage.getItem('posada:casa-azul:token')")
        assert await page.evaluate("() => localStorage.length") == 0

        # The hotel erases the conversation; the next question carries on in a new one.
        erased = await page.evaluate(
            "() => sessionStorage.getItem('posada:casa-azul:conversation')"
        )
        async with runtime.pool.connection() as conn:
            await conn.execute("DELETE FROM conversations WHERE id = %s", (int(erased),))
        await page.fill("#message", "What time is check-out?")
        await page.click("#ask button[type=submit]")
        await expect(page.locator("#messages li.assistant .text").last).to_contain_text("11:00")
        renewed = await page.evaluate(
            "() => sessionStorage.getItem('posada:casa-azul:conversation')"
        )
        assert renewed not in (None, erased)

        await page.select_option("#lang", "es")
        await expect(page.locator("#ask button[type=submit]")).to_have_text("Enviar")
        assert await page.evaluate("() => localStorage.getItem('posada:casa-azul:lang')") == "es"
        # Nothing the page needs was blocked by its policy (Chromium says so on the console).
        assert [text for text in console if "Content Security Policy" in text] == []

        # Framed by another page: refused (X-Frame-Options DENY, frame-ancestors 'none').
        other = await browser.new_page()
        await other.set_content(f'<iframe id="f" src="{site}/?hotel=casa-azul"></iframe>')
        framed = await other.wait_for_selector("#f")
        assert framed is not None
        frame = await framed.content_frame()
        assert frame is None or await frame.query_selector("#hotel-name") is None
        await browser.close()


async def test_the_page_speaks_the_browsers_language_and_the_guests_choice(
    site: str, current_stay: StayFinder
) -> None:
    stay = await current_stay("brisa")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = await browser.new_page(locale="pt-BR")
        await page.goto(f"{site}/?hotel=casa-azul")
        await expect(page.locator("#login p").first).to_have_text(
            "Entre com a data de check-in da sua reserva e os últimos 4 dígitos do seu telefone."
        )
        await expect(page.locator("html")).to_have_attribute("lang", "pt")
        await expect(page.locator("#lang")).to_have_value("pt")
        await page.fill("#check-in", "2001-01-01")
        await page.fill("#phone", stay.phone_last4)
        await page.click("#login button[type=submit]")
        await expect(page.locator("#login-error")).to_have_text("Não encontramos sua reserva.")

        await page.fill("#check-in", stay.check_in.isoformat())
        await page.click("#login button[type=submit]")
        await expect(page.locator("#message")).to_have_attribute(
            "placeholder", "Escreva sua pergunta…"
        )
        await expect(page.locator("#new")).to_have_text("Nova conversa")

        # Refused for asking too fast: said in the page's language, not as a raw error.
        async def too_many(route: Route) -> None:
            await route.fulfill(status=429, json={"detail": "too many requests"})

        await page.route("**/api/guest/chat/stream", too_many)
        await page.fill("#message", "qual a senha do wifi")
        await page.click("#ask button[type=submit]")
        await expect(page.locator("#messages li.assistant .text").last).to_have_text(
            "Muitas tentativas seguidas; espere um pouco e tente de novo."
        )

        # The guest picks French; it outlasts a reload, over the browser's Portuguese.
        await page.select_option("#lang", "fr")
        await expect(page.locator("#ask button[type=submit]")).to_have_text("Envoyer")
        await expect(page.locator("#logout")).to_have_text("Se déconnecter")
        await page.reload()
        await expect(page.locator("#new")).to_have_text("Nouvelle conversation")
        await expect(page.locator("html")).to_have_attribute("lang", "fr")

        # A browser in a language the page does not have: Spanish, the hotel's.
        german = await browser.new_page(locale="de-DE")
        await german.goto(f"{site}/?hotel=casa-azul")
        await expect(german.locator("#login button[type=submit]")).to_have_text("Entrar")
        await expect(german.locator("#login p").first).to_contain_text("Ingresa con la fecha")
        await browser.close()


async def test_at_phone_height_the_newest_answer_shows_above_the_input_and_history_pages(
    site: str, current_stay: StayFinder, runtime: Runtime
) -> None:
    stay = await current_stay("caracola")
    # A long conversation of this guest's already: 70 messages, the page shows 30 at first.
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO conversations (tenant_id, reservation_id) "
            "SELECT tenant_id, id FROM reservations WHERE id = %s RETURNING id",
            (stay.reservation_id,),
        )
        row = await cur.fetchone()
        assert row is not None
        conversation = int(row[0])
        for n in range(1, 71):
            role = "guest" if n % 2 else "assistant"
            await conn.execute(
                "INSERT INTO messages (conversation_id, tenant_id, role, content, layer) "
                "SELECT %s, tenant_id, %s, %s, %s FROM conversations WHERE id = %s",
                (conversation, role, f"message {n}", None if role == "guest" else "faq",
                 conversation),
            )  # fmt: skip
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = await browser.new_page(viewport={"width": 360, "height": 640}, locale="en-US")
        await page.goto(f"{site}/?hotel=casa-azul")
        await page.fill("#check-in", stay.check_in.isoformat())
        await page.fill("#phone", stay.phone_last4)
        await page.click("#login button[type=submit]")
        await expect(page.locator("#chat")).to_be_visible()
        await page.evaluate(
            f"() => sessionStorage.setItem('posada:casa-azul:conversation', '{conversation}')"
        )
        await page.reload()
        bubbles = page.locator("#messages li")
        await expect(bubbles).to_have_count(30)
        await expect(bubbles.last.locator(".text")).to_have_text("message 70")
        # Scrolled to the top, the older messages come in pages, in order, none twice.
        for shown in (60, 70):
            await page.locator("#scroll").evaluate("(box) => { box.scrollTop = 0; }")
            await expect(bubbles).to_have_count(shown)
        texts = await page.locator("#messages li .text").all_inner_texts()
        assert texts == [f"message {n}" for n in range(1, 71)]

        # The answer being written shows a labelled typing indicator until its first words.
        await page.evaluate("""() => {
            window.typingSeen = {seen: false, withText: false};
            new MutationObserver(() => {
                const last = [...document.querySelectorAll('#messages li.assistant')].pop();
                const dots = last && last.querySelector('.typing[role=status][aria-label]');
                if (!dots) return;
                window.typingSeen.seen = true;
                if (last.querySelector('.text').textContent) window.typingSeen.withText = true;
            }).observe(document.getElementById('messages'),
                       {childList: true, subtree: true, characterData: true});
        }""")
        await page.fill("#message", "How much is a relaxing massage at the spa?")
        await page.click("#ask button[type=submit]")
        answer = page.locator("#messages li.assistant").last
        await expect(answer.locator(".sources")).to_contain_text("Sources:", timeout=15_000)
        assert await page.evaluate("() => window.typingSeen") == {"seen": True, "withText": False}
        await expect(page.locator("#messages .typing")).to_have_count(0)

        # The whole answer, sources included, ends above the input box.
        last = await answer.bounding_box()
        box = await page.locator("#ask").bounding_box()
        assert last is not None
        assert box is not None
        assert last["y"] + last["height"] <= box["y"], (last, box)
        assert last["y"] >= 0
        SCREENS.mkdir(exist_ok=True)
        await page.screenshot(path=SCREENS / "guest-phone.png")

        # A thumbs-down on the answer is stored on that message.
        unhelpful = answer.get_by_role("button", name="Unhelpful answer", exact=True)
        await unhelpful.click()
        await expect(unhelpful).to_have_attribute("aria-pressed", "true")
        await expect(
            answer.get_by_role("button", name="Helpful answer", exact=True)
        ).to_have_attribute("aria-pressed", "false")
        answered = await answer.get_attribute("data-id")
        assert answered is not None
        async with runtime.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT role, feedback FROM messages WHERE id = %s", (int(answered),)
            )
            assert await cur.fetchone() == ("assistant", -1)
        # After a reload the history shows the guest's verdict as given.
        await page.reload()
        again = page.locator(f'#messages li.assistant[data-id="{answered}"]')
        await expect(
            again.get_by_role("button", name="Unhelpful answer", exact=True)
        ).to_have_attribute("aria-pressed", "true")
        await browser.close()


async def test_a_throttled_login_says_to_wait_not_that_the_stay_is_wrong(site: str) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = await browser.new_page(locale="en-US")

        async def throttled(route: Route) -> None:
            await route.fulfill(
                status=429,
                json={"detail": "too many login attempts"},
                headers={"Retry-After": "60"},
            )

        await page.route("**/api/guest/login", throttled)
        await page.goto(f"{site}/?hotel=casa-azul")
        await page.fill("#check-in", "2026-01-01")
        await page.fill("#phone", "1234")
        await page.click("#login button[type=submit]")
        await expect(page.locator("#login-error")).to_have_text(
            "Too many tries in a row; please wait a little and try again."
        )
        await browser.close()


async def test_a_guest_who_asks_for_a_person_sees_one_notice_and_waits(
    site: str, current_stay: StayFinder
) -> None:
    stay = await current_stay("manglar")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = await browser.new_page(viewport={"width": 360, "height": 640}, locale="es-CO")
        await page.goto(f"{site}/?hotel=casa-azul")
        await page.fill("#check-in", stay.check_in.isoformat())
        await page.fill("#phone", stay.phone_last4)
        await page.click("#login button[type=submit]")
        await page.fill("#message", "quiero hablar con una persona de recepción")
        await page.click("#ask button[type=submit]")
        notice = page.locator("#messages li.notice .text")
        await expect(notice).to_have_text("Una persona de recepción te responderá aquí en breve.")
        await expect(page.locator("#handoff")).to_have_text(
            "Una persona de recepción te responderá aquí."
        )
        await expect(page.locator("#reception")).to_be_hidden()
        # Its stored copy came on the live stream: the same bubble, not a second one.
        await expect(page.locator("#messages li.notice[data-id]")).to_have_count(1)
        await expect(page.locator("#messages li")).to_have_count(2)
        # While waiting, a message is kept for reception and not answered.
        await page.fill("#message", "¿hay toallas extra?")
        await page.click("#ask button[type=submit]")
        await expect(page.locator("#messages li.guest")).to_have_count(2)
        await expect(page.locator("#messages .typing")).to_have_count(0)
        await expect(page.locator("#messages li")).to_have_count(3)
        await page.reload()
        await expect(page.locator("#messages li")).to_have_count(3)
        await expect(page.locator("#handoff")).to_be_visible()
        await browser.close()
