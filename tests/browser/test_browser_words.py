"""Real-browser checks of "A portal its users would choose": every role reads words, never
codes; the shared filters follow the user from page to page and into a copied link; CMO staff
see which sponsor a page shows; and a CMO view reaches that sponsor's QA only.

One `streamlit run portal_app.py` on a fresh data root serves the module and one Chromium
drives it; each user signs in once and keeps their tab for every test that needs them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import NamedTuple
from urllib.parse import parse_qs, urlparse

import pytest

from portal.navigation import PageSpec, pages_for
from tests.browser_support import (
    RENDER_TIMEOUT_MS,
    VIEWPORT,
    Portal,
    leaks,
    open_signed_out,
    settle,
    sign_in,
    sponsor_names,
    submit,
    wait_for_session_cookie,
)
from warehouse import catalogue, clock

pytestmark = pytest.mark.browser


# username -> role; the password is "<username>-demo-2026" (README, "Demo sign-ins").
ROLES = {"priya": "sponsor_qa", "tom": "auditor", "carla": "cmo_quality", "marco": "bd_demo",
         "sam": "admin", "bruno": "sponsor_qa", "wendy": "sponsor_qa"}  # fmt: skip
# A page whose heading is not its menu title.
HEADINGS = {"guided-tour": "Guided demo tour"}
# The pages that show one sponsor's data, where CMO staff read which sponsor it is.
SPONSOR_DASHBOARDS = ("Overview", "Batches", "Batch record", "Deviations & OOS", "CAPA aging",
                      "Change control", "Training", "Equipment & suppliers", "Tech transfer",
                      "Audit pack")  # fmt: skip


def _catalogue_words() -> set[str]:
    return {word for ds in catalogue.DATASETS for col in ds.columns for word in col.words.values()}


def catalogue_codes() -> set[str]:
    """The codes a page must show in words: every column's codes that look like codes (upper
    case or snake_case), that differ from their words and that no word itself contains.

    Left out: lower-case codes that are plain English ("open", "late", "auditor"), which no
    text search can tell from prose; and codes a word contains ("OOS" in "Confirmed OOS",
    "PPQ" in its words, "I" in "Phase I"), which the words themselves would show."""
    words = " ".join(_catalogue_words())
    codes = set()
    for ds in catalogue.DATASETS:
        for col in ds.columns:
            for code, word in col.words.items():
                looks_like_code = "_" in code or code.isupper()
                if looks_like_code and code != word and not leaks(words, [code]):
                    codes.add(code)
    return codes


def snake_case_names() -> set[str]:
    """Every catalogue column name with an underscore: a raw header or axis title if shown."""
    return {col.name for ds in catalogue.DATASETS for col in ds.columns if "_" in col.name}


MISSING = {"None", "nan", "NaN"}  # an empty cell shown as Python or pandas writes it
NOT_WORDS = catalogue_codes() | snake_case_names() | MISSING


# --- one browser, one server, one signed-in tab per user -----------------------------------


@pytest.fixture(scope="module")
def tab(browser, portal: Portal) -> Iterator[Callable[[str], object]]:
    """tab(username): that user's signed-in tab, in a context of its own; signed in once."""
    tabs: dict[str, object] = {}

    def signed_in(username: str):
        if username not in tabs:
            page = browser.new_context(viewport=VIEWPORT).new_page()
            open_signed_out(page, portal.url)
            landing = pages_for(ROLES[username])[0]
            submit(page, lambda: sign_in(page, username, f"{username}-demo-2026"),
                   HEADINGS.get(landing.url_path, landing.title))  # fmt: skip
            tabs[username] = page
        return tabs[username]

    yield signed_in
    for page in tabs.values():
        page.context.close()


class Visit(NamedTuple):
    text: str  # the visible text and every drawn table cell, one cell a line
    sponsor: str | None  # the sponsor picker's choice, on a page that has one


@pytest.fixture(scope="module")
def walks(tab) -> Callable[[str], dict[str, Visit]]:
    """walks(username): every page of the user's menu, opened from the sidebar; title -> Visit.
    Each user's walk is made once and shared by the tests that read it."""
    done: dict[str, dict[str, Visit]] = {}

    def walk(username: str) -> dict[str, Visit]:
        if username not in done:
            page = tab(username)
            seen = {}
            for spec in pages_for(ROLES[username]):
                open_page(page, spec)
                seen[spec.title] = Visit(shown_text(page), picked_sponsor(page))
            done[username] = seen
        return done[username]

    return walk


# --- reading and driving a page --------------------------------------------------------------


def open_page(page, spec: PageSpec) -> None:
    """Open `spec` from the sidebar menu, first unfolding it ("View 3 more") if it is folded.
    A role with one page has no menu: its page is the one already shown."""
    heading = HEADINGS.get(spec.url_path, spec.title)
    menu = page.locator('[data-testid="stSidebarNav"]')
    if not menu.count():
        settle(page, heading)
        return
    more = page.locator('[data-testid="stSidebarNavViewButton"]')
    if more.count() and "more" in more.inner_text():
        more.click()
    page.evaluate(RUN_WATCH)
    menu.locator("a", has_text=spec.title).first.click()
    settle(page, heading)


RUN_WATCH = "() => {}"  # opening a page from the menu is waited for by its heading

# Table cells (a canvas carries them as an accessibility table) and what the boxes show as
# chosen (a select box's choice is its input's value, not text), one a line.
CELLS_AND_CHOICES_JS = """() => [
    ...Array.from(document.querySelectorAll(
        '[data-testid="data-grid-canvas"] th, [data-testid="data-grid-canvas"] td'))
        .map(cell => cell.textContent),
    ...Array.from(document.querySelectorAll('input[type="text"]'))
        .filter(input => input.offsetParent !== null).map(input => input.value),
].join('\\n')"""


def shown_text(page) -> str:
    """The page's visible text, its tables' drawn cells and its boxes' choices, one a line
    (two neighbouring cells must not run together into one word)."""
    page.wait_for_function(
        """() => Array.from(document.querySelectorAll('[data-testid="data-grid-canvas"]'))
            .every(canvas => canvas.textContent.length > 0)""",
        timeout=RENDER_TIMEOUT_MS,
    )
    return page.inner_text("body") + "\n" + page.evaluate(CELLS_AND_CHOICES_JS)


def sidebar_box(page, label: str, kind: str = "stSelectbox"):
    return page.locator(f'[data-testid="stSidebar"] [data-testid="{kind}"]').filter(
        has=page.get_by_text(label, exact=True)
    )


def picked_sponsor(page) -> str | None:
    """The sponsor picker's choice (CMO staff and the demo), or None on a page without one."""
    box = sidebar_box(page, "Sponsor")
    if not box.count():
        return None
    return box.first.locator("input").input_value()


def pick_sponsor(page, sponsor_id: str, heading: str) -> None:
    """Choose `sponsor_id` in the sidebar's sponsor picker, unless it is chosen already."""
    if picked_sponsor(page) == sponsor_id:
        return
    sidebar_box(page, "Sponsor").first.click()
    option = page.get_by_role("option", name=sponsor_id, exact=True)
    submit(page, option.click, heading)
    assert picked_sponsor(page) == sponsor_id


def multiselect_options(page, box) -> list[str]:
    """The options `box` offers (the list opens on a click and is closed again)."""
    box.click()
    page.get_by_role("listbox").first.wait_for()
    texts = [text for text in page.get_by_role("option").all_inner_texts() if text != "Select all"]
    page.keyboard.press("Escape")
    return texts


def chosen(page, label: str) -> str:
    """What the sidebar's multiselect `label` shows as chosen (its tags), as one text."""
    box = sidebar_box(page, label, "stMultiSelect").first
    return box.inner_text().replace(label, "", 1)


def words_that_are_codes(text: str) -> list[str]:
    return leaks(text, NOT_WORDS)


def where(text: str, words: list[str]) -> dict[str, str]:
    """Each word with the first line of `text` that shows it, for a failure to quote."""
    lines = text.splitlines()
    return {word: next(line for line in lines if leaks(line, [word])).strip() for word in words}


# --- 1. words, never codes -------------------------------------------------------------------


@pytest.mark.parametrize("username", ["priya", "tom", "carla", "marco", "sam"])
def test_every_page_reads_in_words_for_every_role(walks, username: str) -> None:
    seen = walks(username)
    assert [*seen] == [spec.title for spec in pages_for(ROLES[username])]
    found = {
        title: where(visit.text, codes)
        for title, visit in seen.items()
        if (codes := words_that_are_codes(visit.text))
    }
    assert found == {}, (
        f"{username} ({ROLES[username]}) reads codes or column names; page -> word -> the line "
        f"that shows it: {found}"
    )


def test_the_code_list_can_catch_a_code() -> None:
    # The check above would see a code left raw, and leaves words and prose alone.
    text = "Status\nSPONSOR_RELEASED\nbatch_number\nNone\nOpen deviations, on time\nPhase I"
    assert words_that_are_codes(text) == ["None", "SPONSOR_RELEASED", "batch_number"]


# --- 2. the shared filters follow the user -------------------------------------------------


PERIOD_JS = """box => Array.from(box.querySelectorAll('[data-range-field]')).map(field =>
    ['year', 'month', 'day'].map(part => field.querySelector(`[data-type="${part}"]`)
        .getAttribute('aria-valuenow')).join('-'))"""


def period_shown(page) -> tuple[date, date]:
    """The sidebar's Period as its two date fields show it."""
    box = sidebar_box(page, "Period", "stDateInput").first
    start, end = (date(*map(int, shown.split("-"))) for shown in box.evaluate(PERIOD_JS))
    return start, end


def choose_period(page, start: date, end: date, heading: str) -> None:
    """Type both ends of the Period into its fields, as a person does; the choice counts when
    the focus leaves the field (here: a click on the page's heading)."""
    box = sidebar_box(page, "Period", "stDateInput").first
    for field, day in (("start", start), ("end", end)):
        box.locator(f'[data-range-field="{field}"] [data-type="year"]').click()
        page.keyboard.type(f"{day:%Y%m%d}")
    submit(page, page.locator("h1", has_text=heading).first.click, heading)


def test_products_and_period_follow_the_user_to_the_next_page_and_a_new_tab(tab) -> None:
    page = tab("priya")
    menu = {spec.title: spec for spec in pages_for("sponsor_qa")}
    open_page(page, menu["Batches"])
    products = sidebar_box(page, "Products", "stMultiSelect").first
    product = multiselect_options(page, products)[0]
    products.click()
    submit(page, page.get_by_role("option", name=product, exact=True).click, "Batches")
    page.keyboard.press("Escape")
    today = clock.today()
    period = (today - timedelta(days=200), today - timedelta(days=20))
    choose_period(page, *period, "Batches")
    assert product in chosen(page, "Products") and period_shown(page) == period

    open_page(page, menu["Deviations & OOS"])
    assert product in chosen(page, "Products")
    assert period_shown(page) == period
    query = parse_qs(urlparse(page.url).query)
    assert query["from"] == [period[0].isoformat()] and query["to"] == [period[1].isoformat()]
    assert len(query["products"]) == 1 and "," not in query["products"][0]
    view = page.locator('[data-testid="stMain"]').inner_text()

    # The URL, opened in a new tab of the signed-in browser (a new session): the same view.
    wait_for_session_cookie(page)
    other = page.context.new_page()
    try:
        other.goto(page.url)
        settle(other, "Deviations & OOS")
        assert product in chosen(other, "Products")
        assert period_shown(other) == period
        assert parse_qs(urlparse(other.url).query) == query
        assert other.locator('[data-testid="stMain"]').inner_text() == view
    finally:
        other.close()


# --- 3. CMO staff read which sponsor a page shows ------------------------------------------


def test_cmo_staff_read_the_sponsor_by_name_and_id_on_every_sponsor_page(walks, portal) -> None:
    seen = walks("carla")
    missing = {}
    for title in SPONSOR_DASHBOARDS:
        sponsor = seen[title].sponsor
        assert sponsor, f"{title} has no sponsor picker for carla"
        # The source of record names a demo sponsor with and without "(fictional)".
        names = sponsor_names(portal.source, sponsor).names - {sponsor}
        if not any(f"Sponsor: {name} ({sponsor})" in seen[title].text for name in names):
            missing[title] = re.findall(r"Sponsor: [^\n]*", seen[title].text)
    assert missing == {}, f"pages not naming their sponsor as 'Sponsor: <name> (<id>)': {missing}"


# --- 4. a CMO view reaches that sponsor's QA only ------------------------------------------


def entries_by(page, username: str) -> int:
    """On the Access log: how many entries `username` has (the "Who" filter's options, then
    the "n entries." caption with only them chosen); 0 when they are not among the options.
    The log is opened afresh from another page, so no earlier choice of "Who" is kept."""
    menu = {spec.title: spec for spec in pages_for("sponsor_qa")}
    open_page(page, menu["Overview"])
    open_page(page, menu["Access log"])
    who = page.locator('[data-testid="stMultiSelect"]').filter(
        has=page.get_by_text("Who", exact=True)
    )
    if username not in multiselect_options(page, who):
        return 0
    who.click()
    submit(page, page.get_by_role("option", name=username, exact=True).click, "Access log")
    page.keyboard.press("Escape")
    caption = re.search(r"(\d+) entries\.", page.inner_text('[data-testid="stMain"]'))
    assert caption, "the Access log shows no 'n entries.' caption"
    return int(caption.group(1))


def test_a_cmo_view_reaches_that_sponsors_qa_and_no_other(tab) -> None:
    # A CMO user's first sponsor page shows (and logs) the picker's first sponsor before any
    # choice, so "carla never looked at CTB" cannot be staged: for Bruno (CTB) the check is
    # that carla's views of NWT add nothing to his log; Wendy's sponsor (WGT) carla never
    # opens, and carla is nowhere on Wendy's Access log.
    carla = tab("carla")
    pages = {spec.title: spec for spec in pages_for("cmo_quality")}
    open_page(carla, pages["Overview"])
    pick_sponsor(carla, "NWT", "Overview")
    priya_before = entries_by(tab("priya"), "carla")
    bruno_before = entries_by(tab("bruno"), "carla")
    assert priya_before > 0, "priya (NWT) sees no entry by carla after carla viewed NWT"

    for title in ("Batches", "Deviations & OOS"):
        open_page(carla, pages[title])
        assert picked_sponsor(carla) == "NWT"

    priya_after = entries_by(tab("priya"), "carla")
    assert priya_after >= priya_before + 2, "carla's two NWT page views are not on priya's log"
    bruno_after = entries_by(tab("bruno"), "carla")
    assert bruno_after == bruno_before, "carla's views of NWT reached bruno's (CTB) log"
    wendy = tab("wendy")
    assert entries_by(wendy, "carla") == 0, "carla is among the users on wendy's (WGT) log"
    assert "carla" not in shown_text(wendy).lower(), "wendy's (WGT) Access log names carla"
