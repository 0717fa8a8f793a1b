"""Saved views: a user saves the current filters under a name and gets them back; nobody else
sees them."""

from __future__ import annotations

from tests.page_checks import partition
from tests.page_harness import principal, run_page

PRIYA = principal("sponsor_qa", "NWT", username="priya")
OTHER_NWT_USER = principal("sponsor_qa", "NWT", username="nadia")


def test_a_saved_view_comes_back_for_its_owner_only(
    store_engine, demo_warehouse, monkeypatch, tmp_path
):
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    product = partition(demo_warehouse, "product", "NWT")["product_id"].sort()[0]
    app = run_page("batches.py", PRIYA, demo_warehouse, state={"batches:products": [product]})
    app.sidebar.text_input(key="batches:view-name").input("my biologic").run()
    app.sidebar.button(key="batches:save-view").click().run()
    assert not app.exception

    again = run_page("batches.py", PRIYA, demo_warehouse)
    assert again.sidebar.multiselect(key="batches:products").value == []
    again.sidebar.selectbox(key="batches:view").select("my biologic").run()
    assert again.sidebar.multiselect(key="batches:products").value == [product]

    colleague = run_page("batches.py", OTHER_NWT_USER, demo_warehouse)
    assert "my biologic" not in colleague.sidebar.selectbox(key="batches:view").options


def test_a_view_saved_on_one_page_is_offered_and_applied_on_another(
    store_engine, demo_warehouse, monkeypatch, tmp_path
):
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    product = partition(demo_warehouse, "product", "NWT")["product_id"].sort()[0]
    app = run_page("batches.py", PRIYA, demo_warehouse, state={"batches:products": [product]})
    app.sidebar.text_input(key="batches:view-name").input("my biologic").run()
    app.sidebar.button(key="batches:save-view").click().run()

    elsewhere = run_page("deviations.py", PRIYA, demo_warehouse)
    assert not elsewhere.exception
    elsewhere.sidebar.selectbox(key="deviations:view").select("my biologic").run()
    assert elsewhere.sidebar.multiselect(key="deviations:products").value == [product]
