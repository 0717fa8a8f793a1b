"""Equipment & suppliers page on the demo warehouse: the sponsor's own uses only, uses out of
calibration, and suppliers that are not fully approved."""

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
from warehouse import catalogue
from warehouse.queries.equipment import suppliers

QUALIFICATION = catalogue.dataset("suppliers").column("supplier_status")


@pytest.fixture(scope="module")
def shown(demo_warehouse, tmp_path_factory):
    return render_per_sponsor(
        "equipment.py", "equipment", demo_warehouse, tmp_path_factory.mktemp("portal")
    )


def _consumed_suppliers(warehouse, sponsor: str) -> pl.DataFrame:
    """Suppliers (id, name) of the lots this sponsor's batches consumed, from the partitions."""
    lots = (
        partition(warehouse, "material_consumption", sponsor)
        .select("lot_id")
        .join(
            partition(warehouse, "material_lot", sponsor).select("lot_id", "supplier_id"),
            on="lot_id",
        )
    )
    names = partition(warehouse, "supplier", sponsor).select("supplier_id", "name")
    return lots.join(names, on="supplier_id")


def test_suppliers_list_the_worst_status_first() -> None:
    lots = pl.DataFrame(
        {
            "supplier": ["A", "B", "B", "C"],
            "supplier_status": ["APPROVED", "DISQUALIFIED", "DISQUALIFIED", "CONDITIONAL"],
            "lot_id": ["L1", "L2", "L3", "L4"],
            "material_name": ["API", "Excipient", "API", "Glass"],
        }
    )
    listed = suppliers(lots)
    assert listed["supplier"].to_list() == ["B", "C", "A"]
    assert listed["lots_consumed"].to_list() == [2, 1, 1]
    assert listed["materials"][0] == "API; Excipient"


@pytest.mark.parametrize("sponsor", SPONSORS)
def test_rows_equal_the_partition(sponsor, shown, demo_warehouse) -> None:
    app, _ = shown[sponsor]
    usage = partition(demo_warehouse, "equipment_usage", sponsor)
    assert table(app, "uses_not_valid").height == usage["equipment_id"].n_unique()
    assert table(app, "uses_not_valid")["uses"].sum() == usage.height
    invalid = usage.filter(
        ~(pl.col("calibration_valid_at_use") & pl.col("qualification_valid_at_use"))
    )
    assert sorted(table(app, "usage_id")["usage_id"]) == sorted(invalid["usage_id"])
    consumed = _consumed_suppliers(demo_warehouse, sponsor)
    assert table(app, "release_status").height == consumed["lot_id"].n_unique()
    assert set(table(app, "lots_consumed")["supplier"]) == set(consumed["name"])


def test_ground_truth_uses_out_of_calibration_on_their_sponsors_page(
    demo_plant, shown, demo_warehouse
) -> None:
    found = anomalies(demo_plant[1], "CALIBRATION_OVERDUE_IN_USE")
    assert found, f"no CALIBRATION_OVERDUE_IN_USE for {SPONSORS} in the ground truth"
    for anomaly in found:
        owner = anomaly["sponsor_id"]
        row = table(shown[owner][0], "usage_id").filter(pl.col("usage_id") == anomaly["key"])
        assert row["calibration_valid_at_use"].to_list() == [False], anomaly
        for other in SPONSORS:
            if other != owner:
                assert anomaly["key"] not in table(shown[other][0], "usage_id")["usage_id"]


@pytest.mark.parametrize(
    ("kind", "status"),
    [("SUPPLIER_CONDITIONAL", "CONDITIONAL"), ("SUPPLIER_DISQUALIFIED", "DISQUALIFIED")],
)
def test_ground_truth_suppliers_on_the_pages_of_sponsors_that_used_them(
    kind, status, demo_plant, shown, demo_warehouse
) -> None:
    found = anomalies(demo_plant[1], kind)
    assert found, f"no {kind} for {SPONSORS} in the ground truth"
    for anomaly in found:
        for sponsor in SPONSORS:
            consumed = _consumed_suppliers(demo_warehouse, sponsor)
            names = consumed.filter(pl.col("supplier_id") == anomaly["key"])["name"].unique()
            listed = table(shown[sponsor][0], "lots_consumed")
            if sponsor == anomaly["sponsor_id"]:
                [name] = names
                row = listed.filter(pl.col("supplier") == name)
                # The page shows the catalogue's words for the status code.
                assert row["supplier_status"].to_list() == [QUALIFICATION.word(status)], anomaly
                assert name in shown[sponsor][0].warning[0].value
            else:
                # Another sponsor sees the supplier only if its own batches used its lots.
                assert names.len() == 0 or set(names) <= set(listed["supplier"])
