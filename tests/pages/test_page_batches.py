"""Batches page: KPI helpers on hand-made frames, and the page on the demo warehouse."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import polars as pl
import pytest

from tests.page_checks import foreign_identifiers, partition
from tests.page_harness import principal, run_page, shown_text
from warehouse import catalogue, clock
from warehouse.kpis import cycle_time_trend
from warehouse.queries.batches import status_funnel

SPONSORS = ("NWT", "CTB")


def test_status_funnel_counts_in_lifecycle_order() -> None:
    batches = pl.DataFrame({"status": ["SPONSOR_RELEASED", "IN_PROCESS", "SPONSOR_RELEASED",
                                       "PLANNED", "ON_HOLD"]})  # fmt: skip
    funnel = status_funnel(batches)
    assert funnel.rows() == [("PLANNED", 1), ("IN_PROCESS", 1), ("SPONSOR_RELEASED", 2),
                             ("ON_HOLD", 1)]  # fmt: skip


def test_cycle_time_trend_is_the_monthly_median_of_released_batches() -> None:
    # DOMAIN.md KPI 13: sponsor release − manufacturing end; median per month of release.
    # A lot the sponsor rejected (20 days) is no release and is not measured.
    batches = pl.DataFrame({
        "sponsor_decision": ["APPROVED", "APPROVED", "APPROVED", "APPROVED", None, "REJECTED"],
        "sponsor_decided_at": [datetime(2026, 3, 2), datetime(2026, 3, 30),
                               datetime(2026, 3, 15), datetime(2026, 4, 1), None,
                               datetime(2026, 3, 20)],
        "cycle_time_days": [4.0, 10.0, 6.0, 3.5, None, 20.0],
    })  # fmt: skip
    trend = cycle_time_trend(batches)
    assert trend.rows() == [(date(2026, 3, 1), 6.0, 3), (date(2026, 4, 1), 3.5, 1)]


@pytest.fixture(scope="module")
def pages(demo_warehouse, tmp_path_factory) -> dict:
    """The batches page rendered once per sponsor (sponsor_qa, default filters)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTAL_DATA_DIR", str(tmp_path_factory.mktemp("portal-data")))
        return {
            s: run_page("batches.py", principal("sponsor_qa", s), demo_warehouse) for s in SPONSORS
        }


def _in_default_period(warehouse, sponsor: str) -> pl.DataFrame:
    today = clock.today()
    return partition(warehouse, "batch", sponsor).filter(
        pl.col("mfg_start").dt.date().is_between(today - timedelta(days=365), today)
    )


@pytest.mark.parametrize("sponsor", SPONSORS)
def test_list_equals_the_partition_for_the_period(sponsor, pages, demo_warehouse) -> None:
    app = pages[sponsor]
    assert not app.exception
    listed = next(f.value for f in app.dataframe if "batch_number" in f.value.columns)
    expected = _in_default_period(demo_warehouse, sponsor)
    assert sorted(listed["batch_number"]) == sorted(expected["batch_number"])
    waiting = expected.filter(pl.col("awaiting_sponsor_release"))
    assert listed["awaiting_release_days"].notna().sum() == waiting.height


@pytest.mark.parametrize(("sponsor", "other"), [SPONSORS, SPONSORS[::-1]])
def test_nothing_of_another_sponsor_is_shown(sponsor, other, pages, demo_warehouse) -> None:
    text = shown_text(pages[sponsor])
    leaked = [name for name in foreign_identifiers(demo_warehouse, sponsor, other) if name in text]
    assert leaked == []


@pytest.mark.parametrize("sponsor", SPONSORS)
def test_funnel_and_picker_come_from_the_scope(sponsor, pages, demo_warehouse) -> None:
    app = pages[sponsor]
    picker = next(box for box in app.selectbox if box.label == "Open batch record")
    expected = _in_default_period(demo_warehouse, sponsor)
    assert sorted(picker.options) == sorted(expected["batch_number"])
    funnel = next(c for c in app.get("plotly_chart") if '"funnel"' in c.proto.spec)
    words = catalogue.dataset("batch_status").column("status").words
    for status in set(expected["status"]):
        # The chart reads as the table does: the status in words, never its code.
        assert f'"{words[status]}"' in funnel.proto.spec
        assert f'"{status}"' not in funnel.proto.spec or words[status] == status


def test_choosing_a_batch_hands_it_to_the_batch_record(demo_warehouse, monkeypatch, tmp_path):
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    app = run_page("batches.py", principal("sponsor_qa", "NWT"), demo_warehouse)
    picker = next(box for box in app.selectbox if box.label == "Open batch record")
    wanted = _in_default_period(demo_warehouse, "NWT").sort("batch_id").row(0, named=True)
    app = picker.select(wanted["batch_id"]).run()
    assert app.session_state["batch_record:batch_id"] == wanted["batch_id"]
