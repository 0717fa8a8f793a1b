"""Tech transfer page on the demo warehouse: the sponsor's projects only, milestones planned
vs actual, and weeks to engineering batch against the 6–10 week benchmark."""

from __future__ import annotations

import json
from datetime import date

import polars as pl
import pytest

from tests.page_b_checks import SPONSORS, render_per_sponsor, table
from tests.page_checks import partition
from warehouse import clock
from warehouse.queries.tech_transfer import timeline


@pytest.fixture(scope="module")
def shown(demo_warehouse, tmp_path_factory):
    return render_per_sponsor(
        "tech_transfer.py", "tech_transfer", demo_warehouse, tmp_path_factory.mktemp("portal")
    )


def test_timeline_has_a_planned_span_for_every_milestone_and_actual_only_when_reached() -> None:
    steps = pl.DataFrame(
        {
            "project_id": ["TT-1", "TT-1"], "seq": [0, 1], "milestone": ["KICKOFF", "PPQ"],
            "planned_start": [date(2026, 1, 1), date(2026, 1, 10)],
            "planned_at": [date(2026, 1, 10), date(2026, 3, 1)],
            "actual_start": [date(2026, 1, 1), date(2026, 1, 12)],
            "actual_at": [date(2026, 1, 12), None],
        }
    )  # fmt: skip
    spans = timeline(steps)
    assert spans.select("milestone", "track").rows() == [
        ("KICKOFF", "planned"), ("KICKOFF", "actual"), ("PPQ", "planned"),
    ]  # fmt: skip


@pytest.mark.parametrize("sponsor", SPONSORS)
def test_rows_equal_the_partition(sponsor, shown, demo_warehouse) -> None:
    app, _ = shown[sponsor]
    projects = partition(demo_warehouse, "tech_transfer", sponsor).filter(
        pl.col("contract_signed_at") <= clock.today()
    )
    listed = table(app, "current_phase")
    assert sorted(listed["project_id"]) == sorted(projects["project_id"])
    if projects.height:
        first = listed["project_id"][0]
        milestones = partition(demo_warehouse, "tt_milestone", sponsor)
        assert (
            table(app, "slip_days").height
            == milestones.filter(pl.col("project_id") == first).height
        )
        others = set(
            partition(demo_warehouse, "tech_transfer", SPONSORS[1 - SPONSORS.index(sponsor)])[
                "project_id"
            ]
        )
        assert not others & set(app.selectbox(key="tech_transfer:project").options)


def test_weeks_to_engineering_batch_are_drawn_against_the_benchmark(shown) -> None:
    app, _ = shown[SPONSORS[0]]
    specs = [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]
    bands = [s for s in specs if "Weeks from contract" in json.dumps(s.get("layout", {}))]
    assert bands, "the weeks chart is shown"
    [band] = bands[0]["layout"]["shapes"]
    assert (band["x0"], band["x1"]) == (6, 10)
