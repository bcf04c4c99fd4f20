"""Debian's chromium driven by Playwright, at a phone's size: shared by the browser tests and the benchmarks.

Never ``playwright install``: the browser is /usr/bin/chromium (``bash scripts/browser-deps.sh``).
"""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = dict(
    viewport={"width": 390, "height": 844},
    device_scale_factor=2,
    is_mobile=True,
    has_touch=True,
    locale="ja-JP",
    timezone_id="Asia/Tokyo",
)
MISSING = f"needs Debian's chromium at {CHROMIUM}: run `bash scripts/browser-deps.sh`"


def launch(playwright, *, headless: bool = True):
    """Debian's chromium from a started ``sync_playwright()``; RuntimeError if it is not installed."""
    if not CHROMIUM.exists():
        raise RuntimeError(MISSING)
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=headless)
