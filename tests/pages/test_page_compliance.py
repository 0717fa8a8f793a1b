"""Quality-agreement compliance page on the demo warehouse: exactly the ground-truth breaches,
shares equal to the partitions, each sponsor confined to itself."""

from __future__ import annotations

import re

import polars as pl
import pytest

from tests.page_b_checks import SPONSORS, WIDE_START, leaked, table
from tests.page_checks import partition
from tests.page_harness import principal, run_page, shown_text
from warehouse import catalogue, clock
from warehouse.scope import sponsor_ids

BREACH_KINDS = ("NOTIFICATION_LATE", "CHANGE_EFFECTIVE_BEFORE_APPROVAL",
                "CHANGE_OBLIGATION_BELOW_AGREEMENT")  # fmt: skip
# A breach's kind as the page words it.
KIND = catalogue.dataset("compliance_breaches").column("kind")
ROLES = ("sponsor_qa", "auditor", "cmo_quality", "cmo_management", "bd_demo")


def _run(who, warehouse):
    state = {"compliance:range": (WIDE_START, clock.today())}
    return run_page("compliance.py", who, warehouse, picked_sponsor=SPONSORS[0], state=state)


@pytest.fixture(scope="module")
def shown(demo_warehouse, tmp_path_factory):
    """The whole history as CMO quality, and as each test sponsor's QA."""
    apps = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTAL_DATA_DIR", str(tmp_path_factory.mktemp("portal")))
        apps["cmo"] = _run(principal("cmo_quality"), demo_warehouse)
        for sponsor in SPONSORS:
            apps[sponsor] = _run(principal("sponsor_qa", sponsor), demo_warehouse)
    for name, app in apps.items():
        assert not app.exception, (name, [e.value for e in app.exception])
    return apps


def _truth(demo_plant, sponsor: str | None = None) -> set[tuple[str, str]]:
    return {
        (KIND.word(a["kind"]), a["key"])
        for a in demo_plant.ground_truth["anomalies"]
        if a["kind"] in BREACH_KINDS and sponsor in (None, a["sponsor_id"])
    }


def _breaches(app) -> set[tuple[str, str]]:
    listed = table(app, "broken_by")
    return set(zip(listed["kind"], listed["record_key"], strict=True)) if listed.height else set()


def test_cmo_view_lists_exactly_the_ground_truth_breaches(shown, demo_plant) -> None:
    expected = _truth(demo_plant)
    assert {kind for kind, _ in expected} == set(map(KIND.word, BREACH_KINDS))
    assert _breaches(shown["cmo"]) == expected
    assert str(len(expected)) in shown["cmo"].error[0].value


@pytest.mark.parametrize("sponsor", SPONSORS)
def test_sponsor_view_lists_exactly_its_own_breaches(shown, demo_plant, sponsor) -> None:
    assert _breaches(shown[sponsor]) == _truth(demo_plant, sponsor)


@pytest.mark.parametrize("sponsor", SPONSORS)
def test_sponsor_view_shows_nothing_of_another_sponsor(shown, demo_warehouse, sponsor) -> None:
    assert leaked(demo_warehouse, sponsor, shown_text(shown[sponsor])) == []


def test_each_breach_names_the_clock_it_broke(shown) -> None:
    listed = table(shown["cmo"], "broken_by")
    for row in listed.iter_rows(named=True):
        if row["kind"] == KIND.word("NOTIFICATION_LATE"):
            assert row["clock"].startswith("notify within") and " h late" in row["broken_by"]
        elif row["kind"] == KIND.word("CHANGE_OBLIGATION_BELOW_AGREEMENT"):
            assert row["clock"].endswith("changes: the agreement requires prior approval")
            assert row["broken_by"] == "recorded as needing only a notification"
        else:
            assert "approval before going effective" in row["clock"]
            assert row["broken_by"].startswith("effective ")


def test_deviation_shares_equal_the_partitions(shown, demo_warehouse) -> None:
    """Share of deviation notifications on time = (links − notified_late) ÷ links, per sponsor
    (every demo link is notified, so every one counts)."""
    summary = table(shown["cmo"], "Deviations")
    names = dict(zip(summary["sponsor"], summary["Deviations"], strict=True))
    for sponsor in sponsor_ids(demo_warehouse):
        links = partition(demo_warehouse, "deviation_link", sponsor)
        [name] = partition(demo_warehouse, "sponsor", sponsor)["name"]
        on_time = links.height - links["notified_late"].sum()
        assert names[name] == f"{on_time / links.height * 100:.1f} %", sponsor


def test_prior_approval_share_counts_changes_that_went_effective(shown, demo_warehouse) -> None:
    """KPI 14 for one sponsor: approved on or before effective ÷ prior-approval changes that
    went effective (whole history)."""
    sponsor = SPONSORS[0]
    impacts = partition(demo_warehouse, "change_impact", sponsor).join(
        partition(demo_warehouse, "change_control", sponsor), on="change_id"
    )
    effective = impacts.filter(
        (pl.col("obligation") == "PRIOR_APPROVAL") & pl.col("actual_effective").is_not_null()
    )
    kept = effective.filter(
        (pl.col("decision") == "APPROVED")
        & (pl.col("decided_at").dt.date() <= pl.col("actual_effective"))
    )
    [name] = partition(demo_warehouse, "sponsor", sponsor)["name"]
    summary = table(shown["cmo"], "Prior-approval changes (KPI 14)")
    [value] = summary.filter(pl.col("sponsor") == name)["Prior-approval changes (KPI 14)"]
    assert (
        value == f"{kept['change_id'].n_unique() / effective['change_id'].n_unique() * 100:.1f} %"
    )


@pytest.mark.parametrize("role", ROLES)
def test_renders_for_every_role(role, demo_warehouse, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    sponsor = SPONSORS[0] if role in ("sponsor_qa", "auditor") else None
    app = run_page("compliance.py", principal(role, sponsor), demo_warehouse,
                   picked_sponsor=SPONSORS[0])  # fmt: skip
    assert not app.exception, [e.value for e in app.exception]
    assert app.title[0].value == "Quality-agreement compliance"
    if role in ("sponsor_qa", "auditor", "bd_demo"):  # one sponsor: a metric per clock kept
        shares = app.metric[3:]
        assert shares and all(re.fullmatch(r"\d+\.\d %", m.value) for m in shares)
        assert all(re.fullmatch(r"\d+ of \d+ kept within the agreed clock\.", m.help)
                   for m in shares)  # fmt: skip
        assert not app.get("plotly_chart")
    else:
        assert len(app.metric) == 3
