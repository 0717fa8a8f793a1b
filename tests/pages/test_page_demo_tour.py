"""Demo tour page: every step renders for bd_demo, the presenter can step through, and the
two-sponsor view of one vessel shows each side only its own sponsor's records."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from etl.demo_source.anomalies import EVENT_KINDS
from tests.page_checks import foreign_identifiers, partition
from tests.page_harness import principal, run_page, shown_text
from warehouse import catalogue
from warehouse.scope import sponsor_ids

STEPS = (
    "Batch record exception",
    "CAPA aging",
    "Change awaiting approval",
    "Audit-ready view",
    "Same vessel, two sponsors",
)


@pytest.fixture(scope="module")
def data_root(demo_warehouse, tmp_path_factory) -> Path:
    """A data root whose demo warehouse is the session's demo warehouse."""
    root = tmp_path_factory.mktemp("tour-data")
    (root / "demo").mkdir()
    (root / "demo" / "warehouse").symlink_to(demo_warehouse, target_is_directory=True)
    return root


@pytest.fixture(scope="module")
def steps(data_root) -> dict[str, AppTest]:
    """Each step as bd_demo, sponsors A and B the first two demo sponsors."""
    apps = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTAL_DATA_DIR", str(data_root))
        root = data_root / "demo" / "warehouse"
        for step in STEPS:
            state = {"tour:step": step}
            apps[step] = run_page("demo_tour.py", principal("bd_demo"), root, state=state)
    return apps


@pytest.mark.parametrize("step", STEPS)
def test_every_step_renders(steps, step) -> None:
    app = steps[step]
    assert not app.exception, [e.value for e in app.exception]
    assert app.title[0].value == "Guided demo tour"
    assert "fictional" in app.caption[0].value
    assert app.header


def test_next_and_back_step_through_the_tour(data_root, monkeypatch) -> None:
    monkeypatch.setenv("PORTAL_DATA_DIR", str(data_root))
    app = run_page("demo_tour.py", principal("bd_demo"), data_root / "demo" / "warehouse")
    seen = [app.radio[0].value]
    for _ in STEPS[1:]:
        app.button[1].click().run()
        seen.append(app.radio[0].value)
    assert tuple(seen) == STEPS
    app.button[0].click().run()
    assert app.radio[0].value == STEPS[-2]


def test_batch_step_shows_a_data_integrity_exception(steps, demo_warehouse) -> None:
    app = steps["Batch record exception"]
    sponsor = sponsor_ids(demo_warehouse)[0]
    [found] = [pl.from_pandas(f.value) for f in app.dataframe if "kind" in f.value.columns]
    kind = catalogue.dataset("batch_record_exceptions").column("kind")
    assert set(found["kind"]) & {kind.word(code) for code in EVENT_KINDS}
    events = partition(demo_warehouse, "batch_event", sponsor).filter(pl.col("di_exception"))
    assert set(found["record"]) & set(events["event_id"])


def test_change_step_shows_a_prior_approval_change_of_sponsor_a(steps, demo_warehouse) -> None:
    app = steps["Change awaiting approval"]
    sponsor = sponsor_ids(demo_warehouse)[0]
    numbers = set(partition(demo_warehouse, "change_control", sponsor)["change_number"])
    [change] = [pl.from_pandas(f.value) for f in app.dataframe]
    obligation = catalogue.dataset("change_controls").column("obligation")
    assert change["obligation"].to_list() == [obligation.word("PRIOR_APPROVAL")]
    assert change["change_number"][0] in numbers


def test_two_sponsor_view_shows_each_side_only_its_own_batches(steps, demo_warehouse) -> None:
    app = steps["Same vessel, two sponsors"]
    a, b = sponsor_ids(demo_warehouse)[:2]
    left, right = (pl.from_pandas(f.value) for f in app.dataframe)
    assert left.height and right.height
    assert set(left["batch_number"]) <= set(partition(demo_warehouse, "batch", a)["batch_number"])
    assert set(right["batch_number"]) <= set(partition(demo_warehouse, "batch", b)["batch_number"])
    # Each side meets the other only as "another client".
    assert "another client" in set(left["previous_occupant"]) | set(right["previous_occupant"])
    left_text, right_text = left.write_csv(), right.write_csv()
    assert not [n for n in foreign_identifiers(demo_warehouse, a, b) if n in left_text]
    assert not [n for n in foreign_identifiers(demo_warehouse, b, a) if n in right_text]


@pytest.mark.parametrize("step", STEPS[:4])
def test_single_sponsor_steps_show_nothing_of_another_sponsor(steps, demo_warehouse, step):
    a = sponsor_ids(demo_warehouse)[0]
    text = shown_text(steps[step])
    for other in sponsor_ids(demo_warehouse)[1:]:
        assert [n for n in foreign_identifiers(demo_warehouse, a, other) if n in text] == []


def test_presenter_notes_show_only_when_the_presenter_turns_them_on(data_root, monkeypatch):
    monkeypatch.setenv("PORTAL_DATA_DIR", str(data_root))
    root = data_root / "demo" / "warehouse"
    for step in STEPS:
        app = run_page("demo_tour.py", principal("bd_demo"), root, state={"tour:step": step})
        assert not app.sidebar.info and "Say:" not in shown_text(app), step
        app.sidebar.toggle(key="tour:notes").set_value(True).run()
        assert not app.exception
        (shown,) = app.sidebar.info  # one note per step, in the sidebar only
        assert shown.value[:1].isupper() and shown.value not in shown_text(app.main), step
