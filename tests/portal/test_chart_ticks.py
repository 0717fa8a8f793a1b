"""Count axes tick whole numbers: no 0.5 of a batch on a small count, on any chart the portal
draws (portal.widgets.integer_ticks, applied by portal.widgets.chart)."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path

import numpy as np
import plotly.express as px
import plotly.graph_objects as go
import polars as pl
import pytest

from portal.navigation import PAGES
from portal.widgets import integer_ticks
from tests.page_b_checks import render_as


def _ticks(figure: go.Figure, axis: str = "yaxis") -> tuple:
    layout = figure.layout[axis]
    return layout.dtick, layout.tickformat


def test_a_small_count_ticks_every_whole_number() -> None:
    data = pl.DataFrame({"status": ["Open", "Closed"], "deviations": [1, 2]})
    assert _ticks(integer_ticks(px.bar(data, x="status", y="deviations"))) == (1, "d")


def test_stacked_bars_count_their_sum_and_a_large_count_keeps_plotlys_steps() -> None:
    data = pl.DataFrame({"class": ["Minor"] * 3, "status": ["A", "B", "C"], "n": [4, 4, 4]})
    stacked = integer_ticks(px.bar(data, x="class", y="n", color="status"))
    assert _ticks(stacked) == (None, ",d")  # 12 stacked: Plotly's own whole steps
    grouped = integer_ticks(px.bar(data, x="class", y="n", color="status", barmode="group"))
    assert _ticks(grouped) == (1, "d")  # side by side, each bar reaches 4


def test_a_horizontal_bar_and_a_histogram_tick_their_count_axis() -> None:
    data = pl.DataFrame({"cause": ["Human error", "Equipment"], "deviations": [3, 1]})
    assert _ticks(integer_ticks(px.bar(data, x="deviations", y="cause", orientation="h")),
                  "xaxis") == (1, "d")  # fmt: skip
    ages = pl.DataFrame({"age_days": [3.5, 10.0, 40.2]})
    assert _ticks(integer_ticks(px.histogram(ages, x="age_days"))) == (1, "d")
    assert _ticks(integer_ticks(px.histogram(ages, x="age_days")), "xaxis") == (None, None)


def test_shares_fractions_dates_and_own_formats_are_left_alone() -> None:
    share = pl.DataFrame({"sponsor": ["A", "B"], "share": [1, 0]})
    assert _ticks(integer_ticks(px.bar(share, x="sponsor", y="share", range_y=(0, 1)))) == (
        None, None,
    )  # fmt: skip
    days = pl.DataFrame({"month": ["Jan", "Feb"], "median_days": [2.5, 3.0]})
    assert _ticks(integer_ticks(px.line(days, x="month", y="median_days"))) == (None, None)
    plan = pl.DataFrame({"task": ["Fill"], "start": [datetime(2026, 1, 1)],
                         "end": [datetime(2026, 1, 3)]})  # fmt: skip
    timeline = integer_ticks(px.timeline(plan, x_start="start", x_end="end", y="task"))
    assert _ticks(timeline, "xaxis") == (None, None)
    percent = px.bar(pl.DataFrame({"a": ["x"], "b": [1]}), x="a", y="b")
    percent.update_yaxes(tickformat=".0%")
    assert _ticks(integer_ticks(percent)) == (None, ".0%")


def _decoded(values) -> list[float]:
    """A trace's values as the browser receives them (Plotly sends numbers as typed arrays)."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).tolist()
    return list(values)


# Every page's charts, as drawn: a bar or histogram whose values are whole numbers ticks whole.
CHARTED = [spec for spec in PAGES if Path(spec.script).parent.name in ("sponsor", "cmo")]


@pytest.mark.parametrize("spec", CHARTED, ids=lambda spec: spec.url_path)
def test_every_pages_count_axes_tick_whole_numbers(spec, demo_warehouse, tmp_path) -> None:
    role = "sponsor_qa" if Path(spec.script).parent.name == "sponsor" else "cmo_quality"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTAL_DATA_DIR", str(tmp_path))
        app = render_as(role, Path(spec.script).name, demo_warehouse)
    for chart in app.get("plotly_chart"):
        figure = go.Figure(json.loads(chart.proto.spec))
        whole: dict[str, bool] = {}  # axis -> every bar or histogram on it counts
        for trace in figure.data:
            if trace.type not in ("bar", "histogram") or getattr(trace, "base", None) is not None:
                continue  # a timeline's bars span dates
            horizontal = trace.orientation == "h"
            axis = ("xaxis" if horizontal else "yaxis") + (
                (trace.xaxis if horizontal else trace.yaxis) or "x"
            )[1:]
            counts = trace.type == "histogram" or all(
                float(v) == int(v) for v in _decoded(trace.x if horizontal else trace.y)
            )
            whole[axis] = whole.get(axis, True) and counts
        for axis, counts in whole.items():
            layout = figure.layout[axis]
            if counts and not (layout.range and layout.range[1] <= 1):
                assert layout.tickformat in ("d", ",d"), (spec.url_path, axis)
