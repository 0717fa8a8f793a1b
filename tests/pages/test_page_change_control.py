"""Change control page on the demo warehouse: own obligations only, awaiting and violations."""

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
from warehouse import catalogue, clock

OBLIGATION = catalogue.dataset("change_controls").column("obligation")


@pytest.fixture(scope="module")
def shown(demo_warehouse, tmp_path_factory):
    return render_per_sponsor(
        "change_control.py", "change_control", demo_warehouse, tmp_path_factory.mktemp("portal")
    )


def _impacts(app) -> pl.DataFrame:
    """The full list (the last table with impact ids; awaiting/violation tables come first)."""
    frames = [f.value for f in app.dataframe if "impact_id" in f.value.columns]
    return pl.from_pandas(frames[-1]) if frames else table(app, "impact_id")


@pytest.mark.parametrize("sponsor", SPONSORS)
def test_rows_equal_the_partition_and_awaiting_is_flagged_first(sponsor, shown, demo_warehouse):
    app, _ = shown[sponsor]
    impacts = partition(demo_warehouse, "change_impact", sponsor)
    changes = partition(demo_warehouse, "change_control", sponsor)
    listed = _impacts(app)
    assert sorted(listed["impact_id"]) == sorted(impacts["impact_id"])
    merged = impacts.join(changes, on="change_id", suffix="_change")
    awaiting = merged.filter(
        pl.col("actual_effective").is_null()
        & ~pl.col("status").is_in(["REJECTED", "CLOSED"])
        & (
            ((pl.col("obligation") == "PRIOR_APPROVAL")
             & pl.col("decision").fill_null("PENDING").eq("PENDING"))
            | ((pl.col("obligation") == "NOTIFY") & pl.col("notified_at").is_null())
        )
    )  # fmt: skip
    assert sorted(listed.filter(pl.col("awaiting_sponsor"))["impact_id"]) == sorted(
        awaiting["impact_id"]
    )
    if awaiting.height:
        # One sentence per awaiting change: its number, what it waits for and by when.
        sentences = [w.value for w in app.warning][: awaiting.height]
        for row in awaiting.iter_rows(named=True):
            said = [x for x in sentences if x.startswith(row["change_number"] + " ")]
            wanted = "your prior approval" if row["obligation"] == "PRIOR_APPROVAL" else "notif"
            assert said and wanted in said[0], (row["change_number"], sentences)
        assert len(sentences) == awaiting.height
        assert sorted(table(app, "impact_id")["impact_id"]) == sorted(awaiting["impact_id"])


def test_effective_before_approval_is_a_violation_on_its_sponsors_page(
    demo_plant, shown, demo_warehouse
) -> None:
    found = anomalies(demo_plant[1], "CHANGE_EFFECTIVE_BEFORE_APPROVAL")
    assert found, f"no CHANGE_EFFECTIVE_BEFORE_APPROVAL for {SPONSORS} in the ground truth"
    for anomaly in found:
        owner = anomaly["sponsor_id"]
        row = _impacts(shown[owner][0]).filter(pl.col("impact_id") == anomaly["key"])
        assert row["violation"].to_list() == [True], anomaly
        assert row["violation_reason"][0]
        assert shown[owner][0].error, "violations are flagged above the list"
        for other in SPONSORS:
            if other != owner:
                assert anomaly["key"] not in _impacts(shown[other][0])["impact_id"]


def test_obligation_below_the_agreement_is_a_violation_in_words_on_its_sponsors_page(
    demo_plant, shown, demo_warehouse
) -> None:
    """Recorded NOTIFY where the sponsor's agreement requires PRIOR_APPROVAL: a violation, and
    one plain sentence above the list naming the change (DOMAIN.md, change control)."""
    found = anomalies(demo_plant[1], "CHANGE_OBLIGATION_BELOW_AGREEMENT")
    assert {a["sponsor_id"] for a in found} == set(SPONSORS)
    for anomaly in found:
        owner = anomaly["sponsor_id"]
        app, text = shown[owner]
        row = _impacts(app).filter(pl.col("impact_id") == anomaly["key"])
        assert row.select("violation", "obligation_below_agreement").row(0) == (True, True)
        assert row.select("obligation", "obligation_required").row(0) == (
            OBLIGATION.word("NOTIFY"), OBLIGATION.word("PRIOR_APPROVAL")
        )  # fmt: skip
        [number] = row["change_number"]
        [sentence] = [e.value for e in app.error if number in e.value]
        assert "was recorded as needing only a notification from the sponsor" in sentence
        assert "the sponsor's quality agreement requires prior approval" in sentence
        assert "_" not in sentence
        for other in SPONSORS:
            if other != owner:
                assert anomaly["key"] not in _impacts(shown[other][0])["impact_id"]
                assert number not in shown[other][1]


def test_each_sponsor_sees_its_own_obligation_only(demo_plant, shown, demo_warehouse) -> None:
    found = anomalies(demo_plant[1], "CHANGE_OBLIGATION_DIFFERS")
    assert found, f"no CHANGE_OBLIGATION_DIFFERS for {SPONSORS} in the ground truth"
    for anomaly in found:
        owner = anomaly["sponsor_id"]
        own = partition(demo_warehouse, "change_impact", owner)
        [change_id] = own.filter(pl.col("impact_id") == anomaly["key"])["change_id"]
        [number] = partition(demo_warehouse, "change_control", owner).filter(
            pl.col("change_id") == change_id
        )["change_number"]
        expected = own.filter(pl.col("change_id") == change_id)
        rows = _impacts(shown[owner][0]).filter(pl.col("change_number") == number)
        assert sorted(rows["impact_id"]) == sorted(expected["impact_id"])
        assert sorted(rows["obligation"]) == sorted(map(OBLIGATION.word, expected["obligation"]))
        for other in SPONSORS:
            if other != owner:
                assert anomaly["key"] not in _impacts(shown[other][0])["impact_id"]


def test_days_to_planned_counts_from_today(shown) -> None:
    listed = _impacts(shown[SPONSORS[0]][0]).filter(pl.col("days_to_planned").is_not_null())
    for planned, days in listed.select("planned_effective", "days_to_planned").iter_rows():
        planned_day = planned.date() if hasattr(planned, "date") else planned
        assert days == (planned_day - clock.today()).days


def test_an_awaiting_change_says_what_it_waits_for_and_by_when() -> None:
    from datetime import date

    from warehouse.queries.change_control import awaiting_sentences

    awaiting = pl.DataFrame({
        "change_number": ["CC-1", "CC-2", "CC-3"],
        "change_type": ["ANALYTICAL_METHOD", "SOP", "SOP"],
        "product": ["Avelorin (fictional)", None, None],
        "obligation": ["PRIOR_APPROVAL", "NOTIFY", "PRIOR_APPROVAL"],
        "planned_effective": [date(2026, 12, 12), date(2026, 12, 3), None],
        "days_to_planned": [10, 1, None],
    })  # fmt: skip
    assert awaiting_sentences(awaiting, "your", "you") == [
        "CC-1 (Analytical method change, Avelorin (fictional)) awaits your prior approval: "
        "planned effective 12 Dec 2026, in 10 days.",
        "CC-2 (SOP change) must be notified to you; the CMO has not sent the notification yet: "
        "planned effective 03 Dec 2026, in 1 day.",
        "CC-3 (SOP change) awaits your prior approval: no planned effective day yet.",
    ]
    assert "the sponsor's prior approval" in awaiting_sentences(
        awaiting, "the sponsor's", "the sponsor")[0]  # fmt: skip
