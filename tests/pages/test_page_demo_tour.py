"""Demo tour page: every step renders for bd_demo and leads with a chart or sentences (raw
tables only behind "The records behind this"), the presenter can step through, and the
two-sponsor view of one vessel shows each side only its own sponsor's records."""

from __future__ import annotations

import json
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


BEHIND = "The records behind this"
# What each step leads with: one chart, or (the change) a card of its facts.
LEADS = dict.fromkeys(STEPS, "plotly_chart") | {"Change awaiting approval": "metric"}


@pytest.fixture(scope="module")
def steps(data_root) -> dict[str, AppTest]:
    """Each step as bd_demo, sponsors A and B as the tour opens (tour_pair)."""
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


def picked(app: AppTest) -> tuple[str, str]:
    """Sponsors A and B as the tour shows them."""
    return app.session_state["tour:a"], app.session_state["tour:b"]


def figures(app: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]


def outside_expanders(node) -> list:
    """The elements of `node`'s tree that no expander holds."""
    found = []
    for child in getattr(node, "children", {}).values():
        if child.type == "expander":
            continue
        found += [child, *outside_expanders(child)]
    return found


def test_the_tour_opens_on_two_sponsors_that_shared_a_vessel(steps, demo_warehouse) -> None:
    a, b = picked(steps[STEPS[0]])
    assert a != b and {a, b} <= set(sponsor_ids(demo_warehouse))
    assert "never used the same equipment" not in shown_text(steps[STEPS[-1]])


@pytest.mark.parametrize("step", STEPS)
def test_every_step_leads_with_a_chart_or_sentences_and_hides_its_tables(steps, step) -> None:
    app = steps[step]
    main = outside_expanders(app.main)
    assert LEADS[step] in {e.type for e in main}, step
    assert not [e for e in main if e.type in ("dataframe", "table")], step
    for expander in app.get("expander"):
        assert expander.label == BEHIND
        assert not expander.proto.expanded  # closed until the presenter opens it


@pytest.mark.parametrize("step", [s for s in STEPS if s != "Change awaiting approval"])
def test_charted_steps_title_their_figures_and_axes_in_words(steps, step) -> None:
    [figure] = figures(steps[step]) if step != STEPS[-1] else figures(steps[step])[:1]
    layout = figure["layout"]
    assert layout["title"]["text"][:1].isupper()
    for axis in ("xaxis", "yaxis"):
        title = (layout.get(axis, {}).get("title") or {}).get("text") or ""
        assert "_" not in title, (step, axis, title)
    legends = {trace.get("name") or "" for trace in figure["data"]}
    assert not [name for name in legends if "_" in name or name.isupper()], legends


def test_batch_step_shows_a_data_integrity_exception(steps, demo_warehouse) -> None:
    app = steps["Batch record exception"]
    sponsor, _ = picked(app)
    [found] = [pl.from_pandas(f.value) for f in app.dataframe if "kind" in f.value.columns]
    kind = catalogue.dataset("batch_record_exceptions").column("kind")
    assert set(found["kind"]) & {kind.word(code) for code in EVENT_KINDS}
    events = partition(demo_warehouse, "batch_event", sponsor).filter(pl.col("di_exception"))
    assert set(found["record"]) & set(events["event_id"])
    # Each finding is a sentence above the chart, and the flagged steps are red in it.
    assert {w.value for w in app.warning} >= set(found["exception"][:5])
    [figure] = figures(app)
    red = [t for t in figure["data"] if t["name"] == "Needs review"]
    assert red and red[0]["marker"]["color"] == "#d62728"


def test_capa_step_says_each_overdue_capa_in_a_sentence(steps, demo_warehouse) -> None:
    app = steps["CAPA aging"]
    sponsor, _ = picked(app)
    numbers = set(partition(demo_warehouse, "capa", sponsor)["capa_number"])
    said = [w.value for w in app.warning]
    assert said and all(" days past its due date" in s or " day past" in s for s in said)
    assert {s.split(" ")[0] for s in said} <= numbers


def test_change_step_shows_a_prior_approval_change_of_sponsor_a(steps, demo_warehouse) -> None:
    app = steps["Change awaiting approval"]
    sponsor, _ = picked(app)
    numbers = set(partition(demo_warehouse, "change_control", sponsor)["change_number"])
    assert not app.dataframe  # a card, not a table
    metrics = {m.label: m.value for m in app.metric}
    obligation = catalogue.dataset("change_controls").column("obligation")
    card = " ".join(m.value for m in app.markdown)
    assert f"requires:** {obligation.word('PRIOR_APPROVAL').lower()}" in card
    assert "Planned effective" in metrics and ({"Days left", "Went effective"} & set(metrics))
    assert app.subheader[0].value.split(":")[0] in numbers


def test_audit_step_charts_kept_in_green_and_missed_in_red(steps) -> None:
    [figure] = figures(steps["Audit-ready view"])
    colours = {t["name"]: t["marker"]["color"] for t in figure["data"]}
    assert colours.get("Kept") == "#2ca02c"
    assert colours.get("Missed", "#d62728") == "#d62728"
    assert "KPI" not in json.dumps(figure)


def test_two_sponsor_view_shows_each_side_only_its_own_batches(steps, demo_warehouse) -> None:
    app = steps["Same vessel, two sponsors"]
    a, b = picked(app)
    left, right = (pl.from_pandas(f.value) for f in app.dataframe)
    assert left.height and right.height
    assert set(left["batch_number"]) <= set(partition(demo_warehouse, "batch", a)["batch_number"])
    assert set(right["batch_number"]) <= set(partition(demo_warehouse, "batch", b)["batch_number"])
    # Each side meets the other only as "another client".
    assert "another client" in set(left["previous_occupant"]) | set(right["previous_occupant"])
    left_text, right_text = left.write_csv(), right.write_csv()
    assert not [n for n in foreign_identifiers(demo_warehouse, a, b) if n in left_text]
    assert not [n for n in foreign_identifiers(demo_warehouse, b, a) if n in right_text]


def test_each_side_of_the_vessel_is_one_timeline_of_its_own_batches_and_another_client(
    steps, demo_warehouse
) -> None:
    app = steps["Same vessel, two sponsors"]
    sides = figures(app)
    assert len(sides) == 2
    for (own, other), figure in zip((picked(app), picked(app)[::-1]), sides, strict=True):
        shown = json.dumps(figure)
        batches = set(partition(demo_warehouse, "batch", own)["batch_number"])
        labels = {note["text"] for note in figure["layout"]["annotations"]}
        assert labels - {"another client"} and labels - {"another client"} <= batches
        assert "another client" in labels
        colours = {t["name"]: t["marker"]["color"] for t in figure["data"]}
        assert colours["Another client"] == "#9e9e9e"
        # Nothing of the other sponsor anywhere in the figure: text, hover, legend, data.
        assert [n for n in foreign_identifiers(demo_warehouse, own, other) if n in shown] == []
        assert other not in shown


@pytest.mark.parametrize("step", STEPS[:4])
def test_single_sponsor_steps_show_nothing_of_another_sponsor(steps, demo_warehouse, step):
    a, _ = picked(steps[step])
    text = shown_text(steps[step].main)  # the sidebar's pickers name every demo sponsor
    for other in set(sponsor_ids(demo_warehouse)) - {a}:
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
