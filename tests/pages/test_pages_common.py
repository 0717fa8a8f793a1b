"""What every sponsor dashboard owes every role: it renders, and shows only its own sponsor.

One parametrized table over the page registry, so a new page is covered by adding it there.
Page-specific numbers and anomalies are in tests/pages/test_page_<page>.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from portal.navigation import PAGES
from portal.widgets import ATTENTION, GOOD, TONES
from tests.page_b_checks import ROLES, SPONSORS, leaked, render_as, render_per_sponsor
from tests.page_checks import partition
from tests.page_harness import shown_text
from tests.role_matrix import allowed
from warehouse.contract import TABLES

DASHBOARDS = [spec for spec in PAGES if Path(spec.script).parent.name == "sponsor"]


# Each dashboard for each role README gives it; the refusals are tests/security/test_role_gates.
GIVEN = [(spec, role) for spec in DASHBOARDS for role in ROLES if spec.url_path in allowed(role)]


@pytest.mark.parametrize(("spec", "role"), GIVEN, ids=[f"{s.url_path}-{r}" for s, r in GIVEN])
def test_renders_for_every_role(spec, role, demo_warehouse, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    app = render_as(role, Path(spec.script).name, demo_warehouse)
    assert not app.exception, [e.value for e in app.exception]
    assert app.title[0].value == spec.title


@pytest.mark.parametrize("spec", DASHBOARDS, ids=lambda spec: spec.url_path)
def test_shows_nothing_of_another_sponsor(spec, demo_warehouse, tmp_path) -> None:
    page = Path(spec.script).stem
    shown = render_per_sponsor(Path(spec.script).name, page, demo_warehouse, tmp_path)
    for sponsor in SPONSORS:
        assert leaked(demo_warehouse, sponsor, shown[sponsor][1]) == [], sponsor


# --- charts read as the tables do ---------------------------------------------------------------

# Every code of the contract's enums that is not already a word ("OOS", "SOP" are).
CODES = {code for table in TABLES for col in table.columns for code in (col.enum or ())
         if "_" in code or code.isupper() and len(code) > 3}  # fmt: skip
SNAKE = re.compile(r"^[a-z]+(_[a-z0-9]+)+$")
CHARTED = [(spec, "sponsor_qa") for spec in DASHBOARDS] + [
    (spec, "cmo_quality") for spec in PAGES if Path(spec.script).parent.name == "cmo"
]


def _chart_words(spec: dict) -> set[str]:
    """What a reader of the chart reads: titles, legend entries, hover labels and categories."""
    layout = spec.get("layout", {})
    words = {
        (layout.get(axis) or {}).get("title", {}).get("text") or ""
        for axis in layout if axis.startswith(("xaxis", "yaxis"))
    }  # fmt: skip
    words.add(((layout.get("legend") or {}).get("title") or {}).get("text") or "")
    for trace in spec.get("data", []):
        words.add(trace.get("name") or "")
        words |= set(re.findall(r"(?:^|<br>)([^=<]+)=", trace.get("hovertemplate") or ""))
        for axis in ("x", "y"):
            values = trace.get(axis)
            if isinstance(values, list):
                words |= {v for v in values if isinstance(v, str)}
    return words - {""}


@pytest.mark.parametrize(("spec", "role"), CHARTED, ids=[s.url_path for s, _ in CHARTED])
def test_charts_show_words_not_codes_or_column_names(spec, role, demo_warehouse, tmp_path):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTAL_DATA_DIR", str(tmp_path))
        app = render_as(role, Path(spec.script).name, demo_warehouse)
    charts = [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]
    read = set().union(*map(_chart_words, charts)) if charts else set()
    assert not {w for w in read if w in CODES or SNAKE.match(w)}, spec.url_path


# Reds and greens that Plotly, Streamlit or a page could give a trace. Streamlit's theme hands
# out its palette by position as "#000001", "#000002", ...: the 3rd and 4th are reds, the 5th
# and 6th greens in the browser.
REDS = {"#d62728", "#ff2b2b", "#ef553b", "#ff6692", "red", "#000003", "#000004"}
GREENS = {"#2ca02c", "#29b09d", "#00cc96", "#7defa1", "green", "#000005", "#000006"}


@pytest.mark.parametrize(("spec", "role"), CHARTED, ids=[s.url_path for s, _ in CHARTED])
def test_red_means_needs_attention_and_green_good_on_every_chart(
    spec, role, demo_warehouse, tmp_path
):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTAL_DATA_DIR", str(tmp_path))
        app = render_as(role, Path(spec.script).name, demo_warehouse)
    for chart in app.get("plotly_chart"):
        for trace in json.loads(chart.proto.spec).get("data", []):
            colour = str((trace.get("marker") or {}).get("color") or "").lower()
            name = trace.get("name") or ""
            if colour in REDS:
                assert name in TONES[ATTENTION], (spec.url_path, name, colour)
            if colour in GREENS:
                assert name in TONES[GOOD], (spec.url_path, name, colour)


# --- point of view: "your" for the sponsor's own QA only ------------------------------------

YOUR = re.compile(r"\byour?\b", re.IGNORECASE)


@pytest.mark.parametrize(("spec", "role"), GIVEN, ids=[f"{s.url_path}-{r}" for s, r in GIVEN])
def test_only_the_sponsors_own_qa_is_addressed_as_the_sponsor(
    spec, role, demo_warehouse, tmp_path
) -> None:
    """Anyone else (an auditor, CMO staff, the demo) reads neutral wording, and anyone but the
    sponsor's QA reads which sponsor the page shows, by name and id, under its title."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTAL_DATA_DIR", str(tmp_path))
        app = render_as(role, Path(spec.script).name, demo_warehouse)
    text = shown_text(app)
    badges = [e.value for e in app.get("markdown") if "Sponsor: " in str(e.value)]
    if role == "sponsor_qa":
        assert not badges
        if spec.url_path in ("home", "change-control"):
            assert YOUR.search(text), spec.url_path
        return
    if not (role == "auditor" and spec.url_path == "audit-pack"):  # an auditor's own packs
        assert not YOUR.findall(text), [line for line in text.splitlines() if YOUR.search(line)]
    if role == "auditor" or any(box.label == "Sponsor" for box in app.selectbox):
        name = partition(demo_warehouse, "sponsor", SPONSORS[0])["name"][0]
        assert any(f"{name} ({SPONSORS[0]})" in badge for badge in badges), badges
    else:  # CMO staff on a page of every sponsor (compliance, the access log)
        assert not badges
