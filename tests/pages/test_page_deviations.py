"""Deviations & OOS page on the demo warehouse: confined to the sponsor, complete, and showing
every ground-truth OOS outcome on its own sponsor's page."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest

from tests.page_b_checks import (
    SPONSORS,
    anomalies,
    render_per_sponsor,
    run_wide,
    table,
)
from tests.page_checks import partition
from tests.page_harness import principal
from warehouse import catalogue
from warehouse.kpis import invalidated_oos_rate, recurrence_count
from warehouse.queries.deviations import ANOTHER_CLIENTS_DEVIATION

# The outcome as the page words it (the catalogue's words for the query's outcome).
_OUTCOME = catalogue.dataset("oos_investigations").column("outcome")
OUTCOME_SHOWN = {
    "OOS_CONFIRMED": _OUTCOME.word("confirmed"),
    "OOS_INVALIDATED": _OUTCOME.word("invalidated"),
}


@pytest.fixture(scope="module")
def shown(demo_warehouse, tmp_path_factory):
    return render_per_sponsor(
        "deviations.py", "deviations", demo_warehouse, tmp_path_factory.mktemp("portal")
    )


@pytest.mark.parametrize("sponsor", SPONSORS)
def test_rows_equal_the_partition(sponsor, shown, demo_warehouse) -> None:
    app, _ = shown[sponsor]
    deviations = partition(demo_warehouse, "deviation", sponsor)
    shown_deviations = table(app, "deviation_number")
    assert sorted(shown_deviations["deviation_number"]) == sorted(deviations["deviation_number"])
    oos = partition(demo_warehouse, "oos_investigation", sponsor)
    assert table(app, "outcome").height == oos.height
    assert recurrence_count(shown_deviations) == deviations["is_recurrence"].sum()


@pytest.mark.parametrize("sponsor", SPONSORS)
def test_a_recurrence_of_another_clients_deviation_shows_only_that_it_recurs(
    sponsor, shown, demo_warehouse
) -> None:
    # The partition keeps recurrence_of only when the earlier deviation is this sponsor's too;
    # is_recurrence is on every copy. Nothing of another client's deviation may show.
    app, _ = shown[sponsor]
    deviations = partition(demo_warehouse, "deviation", sponsor)
    own_numbers = dict(zip(deviations["deviation_id"], deviations["deviation_number"], strict=True))
    expected = {
        row["deviation_number"]: own_numbers[row["recurrence_of"]] if row["recurrence_of"]
        else ANOTHER_CLIENTS_DEVIATION if row["is_recurrence"] else None
        for row in deviations.iter_rows(named=True)
    }  # fmt: skip
    assert ANOTHER_CLIENTS_DEVIATION in expected.values(), "no cross-client recurrence to show"
    rows = table(app, "deviation_number")
    assert dict(zip(rows["deviation_number"], rows["recurrence_of"], strict=True)) == expected


@pytest.mark.parametrize("kind", sorted(OUTCOME_SHOWN))
def test_ground_truth_oos_on_its_sponsors_page_only(kind, demo_plant, shown, demo_warehouse):
    found = anomalies(demo_plant[1], kind)
    assert found, f"no {kind} for {SPONSORS} in the ground truth"
    for anomaly in found:
        owner = anomaly["sponsor_id"]
        oos = partition(demo_warehouse, "oos_investigation", owner).filter(
            pl.col("oos_id") == anomaly["key"]
        )
        batches = partition(demo_warehouse, "batch", owner)
        [batch_number] = batches.filter(pl.col("batch_id") == oos["batch_id"][0])["batch_number"]
        rows = table(shown[owner][0], "outcome").filter(pl.col("batch_number") == batch_number)
        assert OUTCOME_SHOWN[kind] in rows["outcome"].to_list(), anomaly
        for other in SPONSORS:
            if other != owner:
                assert batch_number not in shown[other][1]


def test_invalidated_oos_rate_counts_concluded_release_and_stability_results() -> None:
    oos = pl.DataFrame(
        {
            "test_type": ["RELEASE", "LT_STABILITY", "RELEASE", "IPC", "RELEASE"],
            "outcome": ["INVALIDATED_LAB_ERROR", "CONFIRMED", None, "INVALIDATED_LAB_ERROR",
                        "INCONCLUSIVE"],
            "opened_at": [datetime(2026, 3, 2)] * 5,
        }
    )  # fmt: skip
    start, end = date(2026, 3, 1), date(2026, 3, 31)
    assert invalidated_oos_rate(oos, start, end).value == pytest.approx(1 / 3)
    assert invalidated_oos_rate(oos.filter(pl.col("outcome").is_null()), start, end).value is None


def test_a_product_filter_keeps_the_deviations_linked_to_that_product(
    demo_warehouse, monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    sponsor = SPONSORS[0]
    links = partition(demo_warehouse, "deviation_link", sponsor).join(
        partition(demo_warehouse, "batch", sponsor).select("batch_id", batch_product="product_id"),
        on="batch_id",
        how="left",
    )
    product = partition(demo_warehouse, "product", sponsor)["product_id"].sort()[0]
    linked = links.filter(pl.coalesce("product_id", "batch_product") == product)
    numbers = partition(demo_warehouse, "deviation", sponsor).filter(
        pl.col("deviation_id").is_in(linked["deviation_id"].implode())
    )["deviation_number"]
    app = run_wide("deviations.py", "deviations", principal("sponsor_qa", sponsor), demo_warehouse,
                   products=(product,))  # fmt: skip
    assert not app.exception
    assert sorted(table(app, "deviation_number")["deviation_number"]) == sorted(numbers)
