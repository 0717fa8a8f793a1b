"""Real-browser checks of issue 3: a sponsor sees only its own data, URLs never bypass sign-in
or roles, bookmarks survive sign-in, one browser can switch sponsors, and lockout holds.

One `streamlit run portal_app.py` on a fresh data root serves the whole module; the first
browser visit bootstraps the demo plant, warehouse and users, as the README promises.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from portal import preload
from portal.navigation import PAGES, pages_for
from tests.browser_support import (
    ROOT,
    SIGN_IN_HEADING,
    SPONSORS,
    VIEWPORT,
    Portal,
    SponsorNames,
    latest_released_batch,
    leaks,
    leaks_by_page,
    open_from_sidebar,
    open_signed_out,
    seen_text,
    settle,
    sidebar_links,
    sign_in,
    sign_out,
    signed_out_views,
    sponsor_names,
    start_portal,
    stop_portal,
    submit,
    wait_for_session_cookie,
)
from tests.ownership import Ownership, ownership

pytestmark = pytest.mark.browser


PRIYA = ("priya", "priya-demo-2026")  # sponsor_qa, NWT
BRUNO = ("bruno", "bruno-demo-2026")  # sponsor_qa, CTB
# Only the lockout test uses Elena, so locking her account disturbs no other test.
ELENA = ("elena", "elena-demo-2026")
SCRIPT_STEMS = sorted(path.stem for path in (ROOT / "pages").rglob("*.py"))


@pytest.fixture(scope="module")
def first_requests(browser, portal: Portal, tmp_path_factory) -> dict[str, str]:
    """A second, freshly started server whose first requests are the page scripts' stems.

    Streamlit registers every top-level pages/*.py under its stem until the router has run
    once in the process; page scripts sit one folder down so that none is, and these URLs are
    the ones that would reach a page script directly if one were.
    """
    log = tmp_path_factory.mktemp("fresh-portal") / "streamlit.log"
    server = start_portal(portal.data_root, log)
    try:
        urls = {server.page_url(stem): stem for stem in SCRIPT_STEMS}
        seen = signed_out_views(browser, list(urls), VIEWPORT)
    finally:
        stop_portal(server)
    return {urls[url]: text for url, text in seen.items()}


@pytest.fixture(scope="module")
def names(portal: Portal) -> dict[str, SponsorNames]:
    """Each demo sponsor's identifiers, from the source of record (not from what the job
    published: a record wrongly published to a sponsor must not count as its own)."""
    return {sponsor: sponsor_names(portal.source, sponsor) for sponsor in SPONSORS}


@pytest.fixture(scope="module")
def oracle(portal: Portal) -> Ownership:
    return ownership(portal.source)


@pytest.fixture
def page(browser) -> Iterator:
    """A fresh browser context (no cookies) and one tab in it."""
    context = browser.new_context(viewport=VIEWPORT)
    yield context.new_page()
    context.close()


def others(names: dict[str, SponsorNames], sponsor: str) -> set[str]:
    """Every other sponsor's identifiers that are not also the sponsor's own."""
    own = names[sponsor].all
    return {name for other in SPONSORS if other != sponsor for name in names[other].all} - own


def forbidden_for(oracle: Ownership, names: dict[str, SponsorNames], sponsor: str) -> set[str]:
    """Other sponsors' names, products and batches, and the numbers of deviations, CAPAs,
    change controls and complaints the sponsor may not see, all by the source's ownership."""
    return others(names, sponsor) | oracle.foreign(sponsor)


def signed_in(page, portal: Portal, who: tuple[str, str], landing: str = "Overview") -> None:
    open_signed_out(page, portal.url)
    submit(page, lambda: sign_in(page, *who), landing)


def pick_batch(page, batch_number: str) -> None:
    """Choose a batch in the batch record's Batch box by typing its number, as a person does."""
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text="Batch")
    box.click()
    page.keyboard.type(batch_number)
    page.get_by_role("option").filter(has_text=batch_number).first.wait_for()
    submit(page, lambda: page.keyboard.press("Enter"), "Batch record", f"Batch {batch_number}")


def visit_every_page(
    page, role: str, batch: str | None = None, shots: Path | None = None
) -> dict[str, str]:
    """Open each of the role's pages from the sidebar; page title -> text seen there.

    With `batch`, the batch record shows that batch; with `shots`, the overview and the batch
    record are saved there as full-page screenshots (to look at, not compared).
    """
    seen = {}
    for spec in pages_for(role):
        open_from_sidebar(page, spec.title)
        if spec.url_path == "batch-record" and batch:
            pick_batch(page, batch)
        if shots and spec.url_path in ("home", "batch-record"):
            page.screenshot(path=shots / f"{spec.url_path}.png", full_page=True)
        seen[spec.title] = seen_text(page)
    return seen


def test_sponsor_sees_only_own_data_on_every_page(
    page, portal, names, oracle, tmp_path: Path
) -> None:
    batch, product = latest_released_batch(portal.warehouse, "NWT")
    signed_in(page, portal, PRIYA)
    specs = pages_for("sponsor_qa")
    menu = sidebar_links(page)
    assert list(menu) == [spec.title for spec in specs]
    # The default page's link is the root URL; every other link is its registered path.
    assert all(menu[spec.title] in (spec.url_path, "") for spec in specs)

    seen = visit_every_page(page, "sponsor_qa", batch, shots=tmp_path)

    forbidden = forbidden_for(oracle, names, "NWT")
    assert leaks_by_page(seen, forbidden) == {}
    record = seen["Batch record"]
    assert f"Batch {batch}" in record and product in record
    everything = "\n".join(seen.values())
    assert "Sponsor: NWT" in seen["Overview"]
    assert len(leaks(everything, names["NWT"].batches)) > 5  # NWT's own batches are shown


@pytest.mark.parametrize(
    ("who", "sponsor"),
    [(("fatima", "fatima-demo-2026"), "FBK"), (("takeshi", "takeshi-demo-2026"), "TSP"),
     (("wendy", "wendy-demo-2026"), "WGT")],
)  # fmt: skip
def test_every_other_sponsor_sees_only_its_own_data(page, portal, names, oracle, who, sponsor):
    """NWT and CTB are crawled above; the other demo sponsors' QA leads see no other
    client's identifier on any page either (TSP shares a change whose title names NWT's
    product)."""
    signed_in(page, portal, who)
    assert f"Sponsor: {sponsor}" in page.inner_text("body")
    seen = visit_every_page(page, "sponsor_qa")
    assert leaks_by_page(seen, forbidden_for(oracle, names, sponsor)) == {}
    assert leaks("\n".join(seen.values()), names[sponsor].products)  # its own data is shown


def test_signed_out_urls_land_on_sign_in(browser, portal, names) -> None:
    everyone = {name for sponsor in SPONSORS for name in names[sponsor].all}
    paths = [spec.url_path for spec in PAGES] + SCRIPT_STEMS
    seen = signed_out_views(browser, [portal.page_url(path) for path in paths], VIEWPORT)
    for url, text in seen.items():
        assert SIGN_IN_HEADING in text and "Password" in text, url
        assert "Sign out" not in text, url
        assert not any(spec.title in text for spec in PAGES), url  # no menu, no page
        assert leaks(text, everyone) == [], url


def test_fresh_server_shows_no_data_at_a_script_url(first_requests, names) -> None:
    everyone = {name for sponsor in SPONSORS for name in names[sponsor].all}
    assert leaks_by_page(first_requests, everyone) == {}


def test_fresh_server_script_url_lands_on_sign_in(first_requests) -> None:
    bypassed = [stem for stem, text in first_requests.items() if "Password" not in text]
    assert bypassed == []


def test_role_cannot_open_another_roles_page_by_url(page, portal) -> None:
    signed_in(page, portal, PRIYA)
    assert "users" not in {spec.url_path for spec in pages_for("sponsor_qa")}
    # Typing a URL starts a new session, which resumes from the signed cookie: wait for it.
    wait_for_session_cookie(page)
    page.goto(portal.page_url("users"))
    settle(page, "Overview")
    assert page.locator("h1", has_text="Users").count() == 0
    assert "Users" not in sidebar_links(page)


def test_bookmark_opens_after_sign_in(page, portal) -> None:
    open_signed_out(page, portal.page_url("capa-aging"))
    submit(page, lambda: sign_in(page, *PRIYA), "CAPA aging")
    assert urlparse(page.url).path.rstrip("/").endswith("/capa-aging")


def test_the_landing_pages_own_address_opens_in_a_new_tab(page, portal) -> None:
    # The landing page's own address, opened in a new tab of the signed-in browser, opens the
    # page without a "page not found" box (Streamlit's default page answers only at "/").
    signed_in(page, portal, PRIYA)
    wait_for_session_cookie(page)
    tab = page.context.new_page()
    tab.goto(portal.page_url("home"))
    settle(tab, "Overview")
    assert tab.get_by_text("Page not found").count() == 0
    assert "Sponsor: NWT" in tab.inner_text("body")
    tab.close()


def test_sign_out_then_other_sponsor_in_same_browser(page, portal, names, oracle) -> None:
    signed_in(page, portal, PRIYA)
    assert "Sponsor: NWT" in page.inner_text("body")
    sign_out(page)
    submit(page, lambda: sign_in(page, *BRUNO), "Overview")
    assert "Sponsor: CTB" in page.inner_text("body")

    seen = visit_every_page(page, "sponsor_qa")
    open_from_sidebar(page, "Batches")
    page.locator('[data-testid="stMultiSelect"]').filter(has_text="Products").click()
    options = page.get_by_role("option")
    options.first.wait_for()
    # Streamlit adds a "Select all" entry above the products.
    offered = [text for text in options.all_inner_texts() if text != "Select all"]
    page.keyboard.press("Escape")

    forbidden = forbidden_for(oracle, names, "CTB")
    assert leaks_by_page(seen, forbidden) == {}
    assert leaks("\n".join(offered), forbidden) == []
    assert offered and set(offered) <= names["CTB"].products
    assert len(leaks("\n".join(seen.values()), names["CTB"].batches)) > 5


def test_lockout_refuses_even_the_right_password(page, portal) -> None:
    username, password = ELENA
    open_signed_out(page, portal.url)
    for attempt in range(1, 6):
        expected = "locked" if attempt == 5 else "Sign-in refused"
        wrong = f"wrong-{attempt}"
        submit(page, lambda wrong=wrong: sign_in(page, username, wrong), SIGN_IN_HEADING, expected)
    submit(page, lambda: sign_in(page, username, password), SIGN_IN_HEADING, "locked")
    assert "This account is locked" in page.inner_text("body")
    assert page.get_by_role("button", name="Sign out").count() == 0


LOADED_JS = """(files) => files.every((file) => performance.getEntriesByType('resource')
    .some((entry) => new URL(entry.name).pathname.endsWith(file)))"""


def test_sign_in_form_loads_the_dashboards_code_before_the_click(page, portal) -> None:
    """While the password is typed, the browser fetches the dashboards' element modules and
    the table's stylesheet (portal.preload); the overview then finds them loaded."""
    files = [url.removeprefix(".") for url in (*preload.modules(), *preload.stylesheets())]
    assert any("PlotlyChart" in file for file in files)
    open_signed_out(page, portal.url)
    page.wait_for_function(LOADED_JS, arg=files, timeout=30_000, polling=100)
    submit(page, lambda: sign_in(page, *PRIYA), "Overview")
    page.locator(".js-plotly-plot").first.wait_for()
    fetched = page.evaluate("""() => performance.getEntriesByType('resource')
        .map((entry) => new URL(entry.name).pathname)""")
    assert [path for path in fetched if "/PlotlyChart." in path] == [
        file for file in files if "/PlotlyChart." in file
    ]  # fetched once, before the click: the chart's own import found it loaded
    sheets = page.evaluate("""() => Array.from(document.querySelectorAll(
        'link[rel="stylesheet"]'), (link) => new URL(link.href).pathname)""")
    for sheet in preload.stylesheets():
        assert sheets.count(sheet.removeprefix(".")) == 1, sheets  # added once, not twice
