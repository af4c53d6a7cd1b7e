"""Fixtures of the browser tests: a real `tuner serve` and headless Chromium via Playwright.

They skip when /usr/bin/chromium (Debian's `chromium` package) or the `playwright` package is
missing; Playwright drives the system browser (no `playwright install`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.browser import CHROMIUM, CHROMIUM_ARGS, WAIT_MS


@pytest.fixture(scope="package")
def playwright() -> Iterator[Any]:
    """Playwright, once for the browser tests: its sync API keeps an event loop running in this
    thread while it is open, which would break `asyncio.run` in tests that come later, so it
    ends with this package (its tests run one after the other)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install playwright (no browser download)")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright: Any) -> Iterator[Any]:
    """Headless Chromium, shared by the browser tests; each test gets its own context (cookies,
    storage and viewport of its own) from :func:`page`."""
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    yield page
    context.close()
