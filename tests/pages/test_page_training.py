"""Training page on the demo warehouse: the matrix covers the sponsor's operators and SOPs,
and every ground-truth training gap appears with its batch and step."""

from __future__ import annotations

import polars as pl
import pytest

from tests.page_b_checks import (
    SPONSORS,
    anomalies,
    render_per_sponsor,
    table,
)
from tests.page_checks import partition
from warehouse.queries.training import status_counts


@pytest.fixture(scope="module")
def shown(demo_warehouse, tmp_path_factory):
    return render_per_sponsor(
        "training.py", "training", demo_warehouse, tmp_path_factory.mktemp("portal")
    )


def test_status_counts_name_every_status() -> None:
    matrix = pl.DataFrame({"status": ["CURRENT", "CURRENT", "OVERDUE"]})
    assert status_counts(matrix) == {"CURRENT": 2, "DUE": 0, "OVERDUE": 1, "MISSING": 0}


@pytest.mark.parametrize("sponsor", SPONSORS)
def test_rows_equal_the_partition(sponsor, shown, demo_warehouse) -> None:
    app, _ = shown[sponsor]
    events = partition(demo_warehouse, "batch_event", sponsor)
    assert table(app, "event_id").height == int(events["training_gap"].sum())
    batches = partition(demo_warehouse, "batch", sponsor).select("batch_id", "product_id")
    worked = pl.concat(
        [
            events.select("batch_id", operator_id="performed_by"),
            events.select("batch_id", operator_id="verified_by").drop_nulls(),
        ]
    ).join(batches, on="batch_id")
    needed = worked.join(partition(demo_warehouse, "product_sop", sponsor), on="product_id")
    needed = needed.select("operator_id", "sop_id").unique()
    matrix = table(app, "sop_number")
    assert matrix.height == needed.height
    operators = partition(demo_warehouse, "operator", sponsor)
    assert set(matrix["operator"]) == set(
        operators.filter(pl.col("operator_id").is_in(needed["operator_id"].implode()))["name"]
    )


def test_ground_truth_training_gaps_on_their_sponsors_page(demo_plant, shown, demo_warehouse):
    found = anomalies(demo_plant[1], "TRAINING_GAP")
    assert found, f"no TRAINING_GAP for {SPONSORS} in the ground truth"
    for anomaly in found:
        owner = anomaly["sponsor_id"]
        event = partition(demo_warehouse, "batch_event", owner).filter(
            pl.col("event_id") == anomaly["key"]
        )
        [batch_number] = partition(demo_warehouse, "batch", owner).filter(
            pl.col("batch_id") == event["batch_id"][0]
        )["batch_number"]
        row = table(shown[owner][0], "event_id").filter(pl.col("event_id") == anomaly["key"])
        assert row.select("batch_number", "step_name").rows() == [
            (batch_number, event["step_name"][0])
        ], anomaly
        for other in SPONSORS:
            if other != owner:
                assert anomaly["key"] not in table(shown[other][0], "event_id")["event_id"]


@pytest.mark.parametrize("sponsor", SPONSORS)
def test_the_matrix_chart_is_operators_by_sops_with_a_status_legend(sponsor, shown) -> None:
    import json

    app, _ = shown[sponsor]
    (spec,) = [json.loads(c.proto.spec) for c in app.get("plotly_chart")]
    traces = spec["data"]
    matrix = table(app, "sop_number")
    words = {"Current", "Due soon", "Overdue", "Not trained"}
    assert {t["name"] for t in traces} == set(matrix["status"]) <= words  # legend in words
    colours = {t["name"]: t["marker"]["color"] for t in traces}
    assert colours.get("Overdue", "#d62728") == "#d62728"  # red: needs attention
    assert colours.get("Current", "#2ca02c") == "#2ca02c"
    assert all(t["marker"]["symbol"] == "square" for t in traces)
    assert sum(len(t["x"]) for t in traces) == matrix.height  # one square per operator × SOP
    assert spec["layout"]["legend"]["title"]["text"] == "Training status"
