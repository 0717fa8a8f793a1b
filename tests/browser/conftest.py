"""What every real-browser module shares: one headless Chromium per module, and a portal
server on a fresh data root, bootstrapped by a first visit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser_support import (
    BOOTSTRAP_TIMEOUT_MS,
    CHROMIUM,
    LAUNCH_ARGS,
    VIEWPORT,
    Portal,
    open_signed_out,
    require_chromium,
    start_portal,
    stop_portal,
)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def portal(browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    """The README's run command on a fresh data root, bootstrapped by a first browser visit."""
    base = tmp_path_factory.mktemp("browser-portal")
    server = start_portal(base / "data", base / "streamlit.log")
    try:
        context = browser.new_context(viewport=VIEWPORT)
        open_signed_out(context.new_page(), server.url, BOOTSTRAP_TIMEOUT_MS)
        context.close()
        yield server
    finally:
        stop_portal(server)
