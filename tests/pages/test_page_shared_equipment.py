"""Shared-equipment page on the demo warehouse: the cross-client picture equals the partitions
and the ground truth, and sponsor roles never see it."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import polars as pl
import pytest

from tests.page_b_checks import SPONSORS, WIDE_START, table
from tests.page_checks import identifiers
from tests.page_harness import principal, run_page, shown_text
from warehouse import clock
from warehouse.scope import sponsor_ids


def _all(warehouse: Path, table_name: str) -> pl.DataFrame:
    """Every sponsor partition of a table, with the partition as sponsor_id."""
    files = warehouse / "current" / table_name / "sponsor_id=*" / "*.parquet"
    return duckdb.sql(f"SELECT * FROM read_parquet('{files}', hive_partitioning = true)").pl()


@pytest.fixture(scope="module")
def cmo_app(demo_warehouse, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTAL_DATA_DIR", str(tmp_path_factory.mktemp("portal")))
        state = {"shared_equipment:range": (WIDE_START, clock.today())}
        app = run_page("shared_equipment.py", principal("cmo_quality"), demo_warehouse,
                       state=state)  # fmt: skip
    assert not app.exception, [e.value for e in app.exception]
    return app


def test_changeovers_are_the_uses_each_sponsor_sees_after_another_client(
    cmo_app, demo_warehouse
) -> None:
    """The ETL redacts a previous occupant of another sponsor to ANOTHER_CLIENT: the CMO view
    must list exactly those uses as changeovers between sponsors."""
    usage = _all(demo_warehouse, "equipment_usage")
    expected = usage.filter(pl.col("previous_occupant") == "ANOTHER_CLIENT")["usage_id"]
    listed = table(cmo_app, "from_sponsor")
    assert sorted(listed["usage_id"]) == sorted(expected)
    assert (listed["from_sponsor"] != listed["to_sponsor"]).all()


def test_changeover_names_both_sponsors_batches(cmo_app, demo_warehouse) -> None:
    batches = _all(demo_warehouse, "batch").select("batch_number", "sponsor_id")
    names = _all(demo_warehouse, "sponsor").select("sponsor_id", pl.col("name"))
    owner = dict(batches.join(names, on="sponsor_id").select("batch_number", "name").iter_rows())
    for row in table(cmo_app, "from_sponsor").head(50).iter_rows(named=True):
        assert owner[row["from_batch"]] == row["from_sponsor"]
        assert owner[row["to_batch"]] == row["to_sponsor"]


def _truth(demo_plant, kind: str) -> set[str]:
    return {a["key"] for a in demo_plant.ground_truth["anomalies"] if a["kind"] == kind}


def test_uses_not_fit_for_use_equal_the_ground_truth_and_say_why(cmo_app, demo_plant) -> None:
    """Overdue calibrations and calibrations that failed before the use, each in words."""
    overdue = _truth(demo_plant, "CALIBRATION_OVERDUE_IN_USE")
    failed = _truth(demo_plant, "CALIBRATION_FAILED_IN_USE")
    assert overdue and failed
    lapsed = table(cmo_app, "lapsed")
    assert set(lapsed["usage_id"]) == overdue | failed
    late = lapsed.filter(pl.col("usage_id").is_in(list(overdue)))
    assert (late["calibration_due_before_use"] < late["started_at"].dt.date()).all()
    for row in late.iter_rows(named=True):
        assert row["why_unfit"] == (
            f"calibration overdue since {row['calibration_due_before_use']:%Y-%m-%d}"
        )
    for row in lapsed.filter(pl.col("usage_id").is_in(list(failed))).iter_rows(named=True):
        assert re.fullmatch(r"latest calibration on \d{4}-\d\d-\d\d failed", row["why_unfit"])


def test_equipment_table_counts_every_use_once(cmo_app, demo_warehouse) -> None:
    """Equipment is fanned out to every sponsor partition; its uses must still count once."""
    assert "Batches started in the period, per train and sponsor" in shown_text(cmo_app)
    sharing = table(cmo_app, "sponsor_names")
    usage = _all(demo_warehouse, "equipment_usage")
    assert sorted(sharing["equipment_id"]) == sorted(usage["equipment_id"].unique())
    assert sharing["uses"].sum() == usage.height
    assert sharing.filter(pl.col("sponsors") > 1).height > 0


@pytest.mark.parametrize("role", ["sponsor_qa", "auditor"])
def test_sponsor_roles_are_refused(role, demo_warehouse, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    app = run_page("shared_equipment.py", principal(role, SPONSORS[0]), demo_warehouse)
    assert not app.exception
    assert app.error and "CMO staff" in app.error[0].value
    assert not app.dataframe and not app.metric
    others = set().union(*(identifiers(demo_warehouse, s) for s in sponsor_ids(demo_warehouse)))
    text = shown_text(app)
    assert [name for name in others if name in text] == []


@pytest.mark.parametrize("role", ["cmo_management", "bd_demo"])
def test_renders_for_site_roles(role, demo_warehouse, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    app = run_page("shared_equipment.py", principal(role), demo_warehouse)
    assert not app.exception, [e.value for e in app.exception]
    assert app.title[0].value == "Shared equipment"
    assert len(app.metric) == 4
