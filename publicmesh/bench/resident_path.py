"""The resident path, measured in a real phone-sized browser: from a service notice in the inbox to a submitted
application. What the person had to type, how many times they tapped, and the portal's total server time."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from publicmesh.bench.browser import PHONE, launch

TIMEOUT_MS = 15_000
OFFER_FORM = "main form[action^='/applications/offers/']"
SUBMITTED = ("received", "in-review", "approved", "paid")  # shown once the services part holds the application
MEASURED = ("document", "xhr", "fetch")  # not static files, nor the status stream that stays open

# Editable controls of the application form other than the signing password, as the person meets them.
TYPED_FIELDS_JS = """form => [...form.querySelectorAll("input, select, textarea")].filter(e =>
    !(e.type === "hidden" || e.type === "password" || e.name === "password"
      || ["submit", "button", "reset", "image"].includes(e.type)
      || e.disabled || e.readOnly || e.getClientRects().length === 0
      || getComputedStyle(e).visibility === "hidden")).length"""


class ServerTime:
    """Sums the ``Server-Timing`` durations of the portal's document and XHR/fetch responses, redirects included."""

    def __init__(self, portal_url: str):
        parts = urlsplit(portal_url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.total_ms = 0.0
        self.responses = 0

    def __call__(self, response) -> None:
        if not response.url.startswith(self.origin) or response.request.resource_type not in MEASURED:
            return
        found = re.search(r"dur=([0-9.]+)", response.headers.get("server-timing", ""))
        if found:
            self.total_ms += float(found.group(1))
            self.responses += 1

    def take(self) -> float:
        """The time summed so far, starting again from zero."""
        total, self.total_ms = self.total_ms, 0.0
        return round(total, 1)


def measure(
    portal_url: str, card_id: str, pin: str, signing_password: str, *, headless=True, screenshots: Path | None = None
) -> dict:
    """Logs in with the card, then from the notices inbox opens the newest service notice and applies.

    ``typed_fields`` counts the editable controls of the application form besides the signing password (read
    from the page), ``taps`` the clicks from the inbox to the submitted application, ``server_ms`` the portal's
    server time over the path (the inbox included), ``login_server_ms`` the same over the login (the login page,
    the card login and the home page it lands on).
    """
    # noqa below: Playwright is in the test extra only; `bench services --no-browser` runs without it.
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    with sync_playwright() as p:
        browser = launch(p, headless=headless)
        try:
            context = browser.new_context(base_url=portal_url, **PHONE)
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            timing = ServerTime(portal_url)
            page.on("response", timing)
            return _walk(page, timing, card_id, pin, signing_password, screenshots)
        finally:
            browser.close()


def _walk(page, timing: ServerTime, card_id: str, pin: str, signing_password: str, screenshots: Path | None) -> dict:
    def shot(name: str) -> None:
        if screenshots is not None:
            screenshots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshots / f"resident-path-{name}.png"), full_page=True)

    taps = 0

    def tap(locator) -> None:
        nonlocal taps
        with page.expect_navigation():
            locator.tap()
        taps += 1

    page.goto("/login")
    page.select_option("select#card", card_id)
    page.fill("#pin", pin)
    with page.expect_navigation():
        page.locator("form[action='/login'] button[type=submit]").click()
    if urlsplit(page.url).path == "/login":
        raise RuntimeError(f"the card login failed: {_alert(page)}")
    login_ms = timing.take()

    page.goto("/notices")
    shot("1-notices")
    newest = page.locator("main article h2 a[href$='/open']").first
    if newest.count() == 0:
        raise RuntimeError("the inbox holds no notice to open")
    tap(newest)
    if page.locator(OFFER_FORM).count() == 0:  # a notice page of its own: follow its link to the offer
        tap(page.locator("main a[href^='/applications/offers/']").first)
    form = page.locator(OFFER_FORM)
    if form.count() == 0:
        raise RuntimeError(f"the notice did not lead to an application form ({page.url})")
    typed_fields = form.evaluate(TYPED_FIELDS_JS)
    shot("2-offer")

    form.locator("input[type=password]").fill(signing_password)
    tap(form.locator("button[type=submit]"))
    done = re.search(r"[?&]done=([^&#]+)", page.url)
    if done is None:
        raise RuntimeError(f"the application was not submitted: {_alert(page)}")
    cell = f"tr#a-{done.group(1)} td.status"
    status = page.locator(", ".join(f"{cell}[data-status='{s}']" for s in SUBMITTED))
    status.wait_for()
    shot("3-submitted")
    return {
        "typed_fields": typed_fields,
        "taps": taps,
        "server_ms": timing.take(),
        "status": status.inner_text().strip().splitlines()[0],  # the status, not the withdraw link below it
        "login_server_ms": login_ms,
        "application": done.group(1),
    }


def _alert(page) -> str:
    alert = page.locator("main [role=alert]")
    return alert.first.inner_text() if alert.count() else page.url
