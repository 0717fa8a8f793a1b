"""CAPA aging page on the demo warehouse, and the KPI 9/10/11 helpers on hand-made frames."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest

from tests.page_b_checks import (
    SPONSORS,
    anomalies,
    render_per_sponsor,
    table,
)
from tests.page_checks import partition
from warehouse import catalogue, clock
from warehouse.kpis import (
    AGE_BUCKETS,
    age_bucket,
    capa_aging,
    capa_effectiveness_rate,
    capa_on_time_closure,
)


@pytest.fixture(scope="module")
def shown(demo_warehouse, tmp_path_factory):
    return render_per_sponsor("capa.py", "capa", demo_warehouse, tmp_path_factory.mktemp("portal"))


@pytest.mark.parametrize(
    ("days", "bucket"),
    [(0, "0–30"), (30, "0–30"), (31, "31–60"), (60, "31–60"), (61, "61–90"), (90, "61–90"),
     (91, "91–180"), (180, "91–180"), (181, ">180"), (2000, ">180")],
)  # fmt: skip
def test_age_bucket_boundaries_follow_kpi_10(days: int, bucket: str) -> None:
    assert age_bucket(days) == bucket


def test_aging_counts_open_capas_per_bucket_split_by_overdue() -> None:
    # Today 1 Jun: ages 5, 45, 45, 200 days; the 2nd and 4th are past their current due.
    today = date(2026, 6, 1)
    capas = pl.DataFrame(
        {
            "status": ["PLAN", "IMPLEMENTING", "PLAN", "PENDING_EFFECTIVENESS", "CLOSED"],
            "opened_at": [datetime(2026, 5, 27), datetime(2026, 4, 17), datetime(2026, 4, 17),
                          datetime(2025, 11, 13), datetime(2026, 1, 1)],
            "current_due": [date(2026, 7, 1), date(2026, 5, 31), date(2026, 6, 1),
                            date(2026, 1, 1), date(2026, 2, 1)],
        }
    )  # fmt: skip
    counts = capa_aging(capas, today)
    assert counts["bucket"].to_list() == list(AGE_BUCKETS)
    assert counts["overdue"].to_list() == [0, 1, 0, 0, 1]
    assert counts["not_overdue"].to_list() == [1, 1, 0, 0, 0]


def test_on_time_closure_against_original_and_current_due() -> None:
    # Due in March: A closed on time; B extended to April, closed late vs original; C open.
    capas = pl.DataFrame(
        {
            "status": ["CLOSED", "CLOSED", "IMPLEMENTING", "CANCELLED"],
            "original_due": [date(2026, 3, 10), date(2026, 3, 20), date(2026, 3, 25),
                             date(2026, 3, 5)],
            "current_due": [date(2026, 3, 10), date(2026, 4, 20), date(2026, 3, 25),
                            date(2026, 3, 5)],
            "closed_at": [datetime(2026, 3, 9), datetime(2026, 4, 1), None, None],
        }
    )  # fmt: skip
    start, end = date(2026, 3, 1), date(2026, 3, 31)
    original = capa_on_time_closure(capas, start, end, date(2026, 6, 1), due="original_due")
    current = capa_on_time_closure(capas, start, end, date(2026, 6, 1), due="current_due")
    assert (original.numerator, original.denominator) == (1, 3)
    assert (current.numerator, current.denominator) == (1, 2)


def test_effectiveness_rate_is_effective_over_completed_checks() -> None:
    checks = pl.DataFrame(
        {
            "result": ["EFFECTIVE", "NOT_EFFECTIVE", "EFFECTIVE", "EFFECTIVE"],
            "checked_at": [datetime(2026, 3, d) for d in (2, 9, 16, 23)],
        }
    )
    start, end = date(2026, 3, 1), date(2026, 3, 31)
    assert capa_effectiveness_rate(checks, start, end).value == 0.75
    assert capa_effectiveness_rate(checks.clear(), start, end).value is None


@pytest.mark.parametrize("sponsor", SPONSORS)
def test_rows_equal_the_partition(sponsor, shown, demo_warehouse) -> None:
    app, _ = shown[sponsor]
    capas = partition(demo_warehouse, "capa", sponsor)
    assert sorted(table(app, "capa_number")["capa_number"]) == sorted(capas["capa_number"])
    extensions = partition(demo_warehouse, "capa_extension", sponsor)
    assert table(app, "days_added").height == extensions.height
    checks = partition(demo_warehouse, "capa_effectiveness", sponsor)
    assert table(app, "checked_at").height == checks.height
    today = clock.today()
    open_capas = capas.filter(~pl.col("status").is_in(["CLOSED", "CANCELLED"]))
    overdue = open_capas.filter(pl.col("current_due") < today)
    assert table(app, "capa_number")["overdue"].sum() == overdue.height


# kind -> (table whose capa_number column proves it, the row's column and value there, as
# the page shows it: in the catalogue's words)
SIGNALS = {
    "CAPA_OVERDUE": ("days_overdue", "overdue", True),
    "CAPA_EXTENDED": ("days_added", "capa_number", None),
    "CAPA_NOT_EFFECTIVE": (
        "checked_at",
        "result",
        catalogue.dataset("capa_effectiveness").column("result").word("NOT_EFFECTIVE"),
    ),
}


@pytest.mark.parametrize("kind", sorted(SIGNALS))
def test_ground_truth_capas_on_their_sponsors_page(kind, demo_plant, shown, demo_warehouse):
    marker, column, value = SIGNALS[kind]
    found = anomalies(demo_plant[1], kind)
    assert found, f"no {kind} for {SPONSORS} in the ground truth"
    for anomaly in found:
        owner = anomaly["sponsor_id"]
        capas = partition(demo_warehouse, "capa", owner)
        [number] = capas.filter(pl.col("capa_id") == anomaly["key"])["capa_number"]
        rows = table(shown[owner][0], marker).filter(pl.col("capa_number") == number)
        assert rows.height > 0, anomaly
        if value is not None:
            assert value in rows[column].to_list(), anomaly
        for other in SPONSORS:
            # A CAPA of a deviation touching both sponsors is rightly on both pages.
            visible = anomaly["key"] in partition(demo_warehouse, "capa", other)["capa_id"]
            if other != owner and not visible:
                assert number not in table(shown[other][0], "capa_number")["capa_number"]
