"""Issue 4's browser check: the bd_demo user, with a real warehouse beside the demo plant,
reaches no page or data of the real warehouse.

The data root holds the demo plant and, beside it, a real warehouse whose sponsors are
REAL1..REAL5 ("Real Client n Ltd"). Marco signs in and walks every page of his menu and every
step of the guided tour; no real sponsor id or name may appear.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from portal import users
from portal.navigation import pages_for
from tests.browser_support import (
    CHROMIUM,
    LAUNCH_ARGS,
    VIEWPORT,
    Portal,
    leaks_by_page,
    open_signed_out,
    require_chromium,
    seen_text,
    settle,
    sign_in,
    start_portal,
    stop_portal,
)
from tests.security.test_demo_isolation import REAL_NAME, build_real_warehouse
from warehouse import layout

pytestmark = pytest.mark.browser

MARCO = ("marco", "marco-demo-2026")


@pytest.fixture(scope="module")
def data_root(demo_plant, demo_warehouse, tmp_path_factory) -> Iterator[Path]:
    """Demo plant, demo warehouse, demo users, and a renamed real warehouse beside them."""
    root = tmp_path_factory.mktemp("demo-and-real") / "data"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTAL_DATA_DIR", str(root))
        layout.demo_source().parent.mkdir(parents=True)
        shutil.copy(demo_plant.path, layout.demo_source())
        shutil.copytree(demo_warehouse, layout.demo_warehouse(), symlinks=True)
        layout.real_warehouse().mkdir(parents=True)
        build_real_warehouse(layout.demo_warehouse(), layout.real_warehouse())
        users.ensure_demo_users()
        yield root


@pytest.fixture(scope="module")
def portal(data_root, tmp_path_factory) -> Iterator[Portal]:
    server = start_portal(data_root, tmp_path_factory.mktemp("demo-portal") / "streamlit.log")
    try:
        yield server
    finally:
        stop_portal(server)


@pytest.fixture(scope="module")
def page(portal) -> Iterator:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        tab = browser.new_context(viewport=VIEWPORT).new_page()
        open_signed_out(tab, portal.url)
        sign_in(tab, *MARCO)
        settle(tab, "Guided demo tour")
        yield tab
        browser.close()


def real_identifiers() -> list[str]:
    return [f"REAL{n}" for n in range(1, 6)] + [REAL_NAME.format(n=n) for n in range(1, 6)]


def test_bd_demo_sees_no_real_sponsor_on_any_page_or_tour_step(page, portal) -> None:
    seen = {"guided-tour step 1": seen_text(page)}
    next_step = page.get_by_role("button", name="Next →")
    for step in range(2, 6):
        next_step.click()
        settle(page, "Guided demo tour")
        seen[f"guided-tour step {step}"] = seen_text(page)
    for spec in pages_for("bd_demo"):
        if spec.url_path != "guided-tour":  # its steps are seen above
            page.goto(portal.page_url(spec.url_path))
            settle(page, spec.title)
            seen[spec.title] = seen_text(page)
    assert leaks_by_page(seen, real_identifiers()) == {}
    # The walk saw the demo plant itself, so the check above could have failed.
    assert any("(fictional)" in text for text in seen.values())
