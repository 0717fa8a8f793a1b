"""Management cockpit on the demo warehouse: one computation, two views.

The cockpit reads every sponsor through a CMO scope; each sponsor's own pages read through
its confined scope. For the same period the numbers must agree, and site figures must count
a fanned-out record once.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from tests.page_harness import principal, run_page, shown_text
from warehouse import catalogue, clock, kpis
from warehouse.filters import Filters
from warehouse.queries import batches, cockpit, overview
from warehouse.scope import open_cmo_scope, open_sponsor_scope, sponsor_ids

TODAY = clock.today()
PERIOD = Filters(start=TODAY - timedelta(days=365), end=TODAY)  # the page's default period
FDA_LAR, ISPE_LAR = "Lot acceptance rate (FDA 2016)", "Lot acceptance rate (ISPE pilot)"
EVERY = {"cockpit:health-view": "Every measure"}  # the health table's full width


def _health(app: AppTest) -> pl.DataFrame:
    tables = [*app.dataframe, *app.table]  # every measure scrolls; the glance is a table
    return pl.from_pandas(next(f.value for f in tables if "Sponsor" in f.value.columns))


def _kpi_table(app: AppTest) -> pl.DataFrame:
    tables = [*app.dataframe, *app.table]  # a handful of sponsors: a static table
    return pl.from_pandas(next(f.value for f in tables if "KPI" in f.value.columns))


@pytest.fixture(scope="module")
def sponsors(demo_warehouse: Path) -> list[str]:
    return sponsor_ids(demo_warehouse)


@pytest.fixture(scope="module")
def cockpit_app(demo_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> AppTest:
    """The cockpit as CMO quality staff, default period (the last 365 days)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTAL_DATA_DIR", str(tmp_path_factory.mktemp("portal-data")))
        app = run_page("cockpit.py", principal("cmo_quality"), demo_warehouse, state=EVERY)
    assert not app.exception, [e.value for e in app.exception]
    return app


@pytest.fixture(scope="module")
def sponsor_overviews(demo_warehouse, sponsors, tmp_path_factory) -> dict[str, AppTest]:
    """Each sponsor's own overview page, as its QA user sees it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTAL_DATA_DIR", str(tmp_path_factory.mktemp("portal-data")))
        return {s: run_page("overview.py", principal("sponsor_qa", s), demo_warehouse)
                for s in sponsors}  # fmt: skip


@pytest.mark.parametrize("role", ["cmo_quality", "cmo_management", "bd_demo"])
def test_renders_for_cmo_and_demo_roles(role, demo_warehouse, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    app = run_page("cockpit.py", principal(role), demo_warehouse)
    assert not app.exception
    assert app.title[0].value == "Management cockpit"
    assert app.table  # the health glance and the KPIs side by side


@pytest.mark.parametrize("role", ["sponsor_qa", "auditor"])
def test_sponsor_roles_are_refused(role, demo_warehouse, sponsors, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    app = run_page("cockpit.py", principal(role, sponsors[0]), demo_warehouse)
    assert [e.value for e in app.error] == ["This page is for CMO staff."]
    assert not app.dataframe


def test_one_health_row_per_sponsor_by_name_and_id(cockpit_app, sponsors, demo_warehouse) -> None:
    names = cockpit.sponsor_names(open_cmo_scope(demo_warehouse))
    assert _health(cockpit_app)["Sponsor"].to_list() == [f"{names[s]} ({s})" for s in sponsors]
    assert all(names[s] != s for s in sponsors)


def test_health_opens_at_a_glance_naming_what_needs_attention(
    cockpit_app, demo_warehouse, monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    app = run_page("cockpit.py", principal("cmo_quality"), demo_warehouse)
    glance, every = _health(app), _health(cockpit_app)
    assert glance.columns == ["Sponsor", "Lots started", "Targets met", "Needs attention",
                              "Least complete"]  # fmt: skip
    assert glance["Sponsor"].to_list() == every["Sponsor"].to_list()
    assert glance["Lots started"].to_list() == every["Lots started"].to_list()
    # Each measure named as needing attention is a measure of the full table; a row that
    # names none meets every target it could be judged on.
    measures = set(every.columns[2:-1])
    for row in glance.iter_rows(named=True):
        named = row["Needs attention"].replace("not reliable: ", "").replace(";", ",")
        if row["Needs attention"] == "—":
            met, judged = row["Targets met"].split(" of ")
            assert met == judged, row
        else:
            assert {n.strip() for n in named.split(",")} <= measures, row


def test_the_glance_counts_and_names_each_state() -> None:
    keys = cockpit.HEALTH_KEYS
    states = {k: "met" for k in keys} | {keys[0]: "missed", keys[2]: "unreliable",
                                          keys[3]: "none"}  # fmt: skip
    health = pl.DataFrame([{"sponsor_id": "S1", "lots_started": "4", "least_complete": "50 %"}
                           | dict.fromkeys(keys, "x")])  # fmt: skip
    marks = pl.DataFrame([{"sponsor_id": "none", "lots_started": "none",
                           "least_complete": "none"} | states])  # fmt: skip
    glance, glance_states = cockpit.health_glance(health.select(marks.columns), marks)
    row = glance.row(0, named=True)
    name = lambda k: catalogue.measure(k).name  # noqa: E731
    assert row["targets_met"] == f"{len(keys) - 3} of {len(keys) - 2}"
    assert row["needs_attention"] == f"{name(keys[0])}; not reliable: {name(keys[2])}"
    assert glance_states["needs_attention"].to_list() == ["missed"]


def test_health_cells_hold_values_and_completeness_stands_apart(cockpit_app) -> None:
    health = _health(cockpit_app)
    for column in (FDA_LAR, ISPE_LAR, "Right first time"):
        for cell in health[column]:
            assert "complete" not in cell, cell
            assert re.fullmatch(r"\d+(\.\d)? %", cell) or cell.startswith("not reliable"), cell
    assert all(re.fullmatch(r"\d+ %", cell) for cell in health["Least complete"])


def test_cockpit_values_equal_the_sponsors_own_pages(
    cockpit_app, sponsor_overviews, demo_warehouse, sponsors
) -> None:
    health = _health(cockpit_app)
    for sponsor in sponsors:
        row = health.filter(pl.col("Sponsor").str.ends_with(f"({sponsor})")).row(0, named=True)
        metrics = {m.label: m.value for m in sponsor_overviews[sponsor].metric}
        # Open deviations (sum of the three classes) and overdue CAPAs: the overview's metrics.
        open_by_class = sum(
            int(row[f"Open {c} deviations"]) for c in ("critical", "major", "minor")
        )
        assert str(open_by_class) == metrics["Open deviations"], sponsor
        assert row["Overdue CAPAs"].split(" ")[0] == metrics["Overdue CAPAs"], sponsor
        # Both lot acceptance readings: the sponsor's own batch list (every lot started up to
        # the period's end, so every lot released in it), through the same KPIs.
        scope = open_sponsor_scope(demo_warehouse, sponsor)
        listed = batches.batch_list(scope, Filters(start=date.min, end=PERIOD.end), TODAY)
        for column, kpi in ((FDA_LAR, kpis.lot_acceptance_rate_fda),
                            (ISPE_LAR, kpis.lot_acceptance_rate_ispe)):  # fmt: skip
            own = kpi(listed, PERIOD.start, PERIOD.end)
            assert row[column].startswith(own.display()), (sponsor, row[column], own.display())
        assert row["Lots started"] == str(own.extra["lots_started"])


def test_every_kpi_per_sponsor_equals_the_sponsor_scope(demo_warehouse, sponsors) -> None:
    site = cockpit.cockpit(
        cockpit.kpi_inputs(open_cmo_scope(demo_warehouse)), PERIOD.start, PERIOD.end, TODAY
    )
    for sponsor in sponsors:
        own = cockpit.kpi_inputs(open_sponsor_scope(demo_warehouse, sponsor))
        assert cockpit.compute_kpis(own, PERIOD.start, PERIOD.end, TODAY) == site[sponsor]
        scope = open_sponsor_scope(demo_warehouse, sponsor)
        overdue = overview.overdue_capas(scope, PERIOD, TODAY).height
        assert site[sponsor]["overdue_capas"].value == overdue


def test_site_figures_count_each_fanned_out_record_once(demo_warehouse, cockpit_app) -> None:
    # Plain DuckDB over every partition (SITE included): distinct open deviations and CAPAs.
    current = demo_warehouse / "current"

    def distinct(sql: str, table: str) -> int:
        files = current / table / "sponsor_id=*" / "*.parquet"
        return duckdb.sql(sql.format(f"read_parquet('{files}')")).fetchall()[0][0]

    open_deviations = distinct(
        "SELECT count(DISTINCT deviation_id) FROM {} "
        "WHERE status NOT IN ('CLOSED', 'CANCELLED')", "deviation"
    )  # fmt: skip
    overdue_capas = distinct(
        "SELECT count(DISTINCT capa_id) FROM {} WHERE status NOT IN ('CLOSED', 'CANCELLED') "
        f"AND current_due < DATE '{TODAY.isoformat()}'", "capa"
    )  # fmt: skip
    table = _kpi_table(cockpit_app)
    site = dict(zip(table["KPI"], table[cockpit.SITE_LABEL], strict=True))
    assert site["Open deviations"].split(" ")[0] == str(open_deviations)
    assert site["10. Overdue CAPAs"].split(" ")[0] == str(overdue_capas)
    per_sponsor = sum(int(v.split(" ")[0]) for k, v in table.row(
        table["KPI"].to_list().index("Open deviations"), named=True).items()
        if k not in ("KPI", cockpit.SITE_LABEL))  # fmt: skip
    assert per_sponsor >= open_deviations  # a shared deviation shows under each sponsor


def test_every_kpi_in_domain_order_with_its_value_and_apart_its_completeness(
    demo_warehouse, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    app = run_page("cockpit.py", principal("cmo_quality"), demo_warehouse)
    table = _kpi_table(app)
    assert table.height == len(cockpit.COCKPIT_KPIS)
    names = cockpit.sponsor_names(open_cmo_scope(demo_warehouse))
    assert table.columns == ["KPI", cockpit.SITE_LABEL, *names.values()]  # by name, not id
    numbers = [int(k.split(".")[0]) for k in table["KPI"] if k[0].isdigit()]
    assert numbers == sorted(numbers) and numbers[:2] == [1, 1]  # DOMAIN.md's order
    assert table["KPI"][-2:].to_list() == ["Open deviations", "Pending change approvals"]
    for row in table.drop("KPI").iter_rows():
        for cell in row:
            assert "complete" not in cell, cell
    app.segmented_control(key="cockpit:kpi-view").set_value("Data completeness").run()
    completeness = _kpi_table(app)
    assert completeness["KPI"].to_list() == table["KPI"].to_list()
    for row in completeness.drop("KPI").iter_rows():
        for cell in row:
            assert re.fullmatch(r"\d+ %", cell) or cell == "—", cell


def test_a_kpi_under_the_threshold_is_not_shown_as_a_number(demo_warehouse, monkeypatch, tmp_path):
    # At a 100 % threshold any lot still in process makes the lot acceptance rate unreliable.
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    app = run_page("cockpit.py", principal("cmo_quality"), demo_warehouse,
                   state={"cockpit:threshold": 100} | EVERY)  # fmt: skip
    for column in (FDA_LAR, ISPE_LAR):
        cells = _health(app)[column].to_list()
        unreliable = [cell for cell in cells if cell.startswith("not reliable: ")]
        assert unreliable, cells
        assert all(c.endswith("of lots started lack a final disposition") for c in unreliable)
    assert "not reliable" in shown_text(app)


def test_both_lot_acceptance_readings_are_shown_with_their_sources(cockpit_app) -> None:
    definitions = {m.value.split("**")[1]: m.value for m in cockpit_app.markdown
                   if m.value.startswith("**")}  # fmt: skip
    assert "FDA 2016 draft guidance" in definitions[f"1. {FDA_LAR}"]
    assert "can exceed 100 %" in definitions[f"1. {FDA_LAR}"]
    assert "ISPE Quality Metrics pilot" in definitions[f"1. {ISPE_LAR}"]
    assert "finally dispositioned" in definitions[f"1. {ISPE_LAR}"]
    assert len(definitions) == len(cockpit.COCKPIT_KPIS)
    assert {FDA_LAR, ISPE_LAR} <= set(_health(cockpit_app).columns)
    assert re.search(r"\bLAR\b", shown_text(cockpit_app)) is None


def _kpi(key: str, value: float, completeness: float = 1.0, **extra: float) -> kpis.KpiResult:
    return kpis.KpiResult(key, value, value, 1, completeness, completeness >= 0.8, "lots", extra)


def _population(lar: float, completeness: float) -> dict[str, kpis.KpiResult]:
    """A sponsor's results with the given lot acceptance rate (both readings); everything else
    on target."""
    return {
        key: _kpi(key, lar, completeness, lots_started=10)
        for key in ("lot_acceptance_rate_fda", "lot_acceptance_rate_ispe")
    } | {
        "right_first_time": _kpi("right_first_time", 0.9),
        "overdue_capas": _kpi("overdue_capas", 0),
        "notification_timeliness": _kpi("notification_timeliness", 1.0),
        "open_deviations": _kpi("open_deviations", 0, CRITICAL=0, MAJOR=0, MINOR=0),
        "pending_change_approvals": _kpi("pending_change_approvals", 0),
        "disposition_cycle_time": _kpi("disposition_cycle_time", 10, p90=15),
    }


def test_targets_decide_each_health_cell_state() -> None:
    # Lot acceptance rate target 98 %: 99 % meets it, 90 % misses it, 99 % on half the lots is
    # not reliable.
    results = {
        cockpit.SITE_LABEL: _population(0.99, 1.0),
        "S1": _population(0.99, 1.0),
        "S2": _population(0.90, 1.0),
        "S3": _population(0.99, 0.5),
    }
    health, states = cockpit.health_table(results, cockpit.DEFAULT_TARGETS)
    assert health["sponsor_id"].to_list() == ["S1", "S2", "S3"]
    for column in ("lot_acceptance_rate_fda", "lot_acceptance_rate_ispe"):
        assert states[column].to_list() == ["met", "missed", "unreliable"]
        assert health[column][2] == "not reliable: 50 % of lots"
    assert set(states["disposition_cycle_time_p90"]) == {"met"}
    stricter = cockpit.DEFAULT_TARGETS | {"lot_acceptance_rate_fda": cockpit.Target(1.0, True)}
    _, states = cockpit.health_table(results, stricter)
    assert states["lot_acceptance_rate_fda"].to_list() == ["missed", "missed", "unreliable"]
    assert states["lot_acceptance_rate_ispe"].to_list() == ["met", "missed", "unreliable"]


def test_drilling_into_a_sponsor_picks_it_for_the_overview(
    demo_warehouse, sponsors, monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    app = run_page("cockpit.py", principal("cmo_management"), demo_warehouse)
    app.selectbox(key="cockpit:drill").select(sponsors[-1]).run()
    app.button(key="cockpit:open").click().run()
    assert app.session_state["_picked_sponsor"] == sponsors[-1]
