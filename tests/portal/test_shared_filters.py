"""One set of filters for the whole portal, in the real app (portal_app.py under AppTest):
products and a period chosen on one page follow the user to the next; the URL names them, so
a copied link reopens the view; for another sponsor's user the link applies within its own
scope only; a reversed period in a link is refused with a message."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

from portal import users
from tests.browser_support import leaks
from tests.page_checks import partition
from tests.page_harness import ROOT, shown_text
from warehouse.scope import snapshot_info


def signed_in(username: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "portal_app.py"), default_timeout=90).run()
    at.text_input(key="sign_in_username").input(username)
    at.text_input(key="sign_in_password").input(users.demo_password(username))
    return at.button[0].click().run()


def open_url(at: AppTest, url_path: str, query: dict[str, str] | None = None) -> AppTest:
    at.context = {"url": f"http://localhost:8501/{url_path}"}
    at._page_hash = calc_hash(url_path)  # st.Page hashes its url_path
    if query is not None:
        at.query_params.clear()
        at.query_params.update(query)
    return at.run()


def shown_filters(at: AppTest, page: str) -> tuple[list[str], tuple[date, ...]]:
    return (at.sidebar.multiselect(key=f"{page}:products").value,
            tuple(at.sidebar.date_input(key=f"{page}:range").value))  # fmt: skip


def own_product(warehouse: Path, sponsor: str) -> str:
    return partition(warehouse, "product", sponsor)["product_id"].sort()[0]


def test_filters_chosen_on_one_page_follow_to_the_next_and_name_the_url(portal) -> None:
    product = own_product(portal, "NWT")
    as_of = snapshot_info(portal).created_at.date()
    period = (as_of - timedelta(days=60), as_of - timedelta(days=5))
    at = open_url(signed_in("priya"), "batch-list")
    assert shown_filters(at, "batches")[0] == []
    at.sidebar.multiselect(key="batches:products").set_value([product])
    at = at.run()
    at.sidebar.date_input(key="batches:range").set_value(period)
    at = at.run()
    assert not at.exception
    assert at.query_params["products"] == product
    assert (at.query_params["from"], at.query_params["to"]) == tuple(map(date.isoformat, period))

    for url, page in (("deviations-oos", "deviations"), ("tech-transfer", "tech_transfer"),
                      ("capa-aging", "capa")):  # fmt: skip
        at = open_url(at, url)
        assert not at.exception, url
        assert shown_filters(at, page) == ([product], period), url


def test_a_page_whose_period_was_never_chosen_keeps_its_default(portal) -> None:
    at = open_url(signed_in("priya"), "tech-transfer")
    start, end = shown_filters(at, "tech_transfer")[1]
    assert (end - start).days == 3 * 365  # the tech-transfer page's own default
    at = open_url(at, "batch-list")
    start, end = shown_filters(at, "batches")[1]
    assert (end - start).days == 365


def test_a_copied_link_reopens_the_view(portal) -> None:
    product = own_product(portal, "NWT")
    link = {"products": product, "from": "2026-01-05", "to": "2026-03-31"}
    at = open_url(signed_in("priya"), "deviations-oos", link)
    assert not at.exception and not at.sidebar.warning
    assert shown_filters(at, "deviations") == ([product], (date(2026, 1, 5), date(2026, 3, 31)))


def test_another_sponsors_link_applies_only_within_ones_own_scope(portal) -> None:
    nwt = own_product(portal, "NWT")
    nwt_name = partition(portal, "product", "NWT").filter(product_id=nwt)["name"][0]
    link = {"products": nwt, "from": "2026-01-05", "to": "2026-03-31"}
    at = open_url(signed_in("bruno"), "batch-list", link)  # CTB's QA
    assert not at.exception
    assert shown_filters(at, "batches") == ([], (date(2026, 1, 5), date(2026, 3, 31)))
    assert not leaks(shown_text(at), {nwt, nwt_name})
    assert "products" not in at.query_params  # the foreign id is not written back


def test_a_reversed_period_in_a_link_is_refused_with_a_message(portal) -> None:
    at = open_url(signed_in("priya"), "batch-list", {"from": "2026-03-31", "to": "2026-01-05"})
    assert not at.exception
    (warning,) = at.sidebar.warning
    assert "ends (2026-01-05) before it starts (2026-03-31)" in warning.value
    start, end = shown_filters(at, "batches")[1]
    assert start < end and (end - start).days == 365
