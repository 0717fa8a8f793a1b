"""The shared table widget: the columns a table is read for fit the screen, the rest one click
away ("More columns"), key columns always first."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _capas() -> None:
    from datetime import date

    import polars as pl

    from portal.widgets import table

    rows = pl.DataFrame({
        "capa_number": ["CAPA-1"], "title": ["Prevent recurrence"], "status": ["OPEN"],
        "opened_at": [date(2026, 1, 5)], "current_due": [date(2026, 3, 1)],
        "days_overdue": [12], "source_record": ["DEV-1"],
    })  # fmt: skip
    table(rows, "capas", key="t", first=("current_due", "days_overdue"))


def test_first_columns_then_more_columns_on_request() -> None:
    app = AppTest.from_function(_capas).run()
    assert not app.exception
    assert list(app.dataframe[0].proto.column_order) == ["capa_number", "current_due",
                                                         "days_overdue"]  # fmt: skip
    more = app.toggle(key="t:more")
    assert more.label == "More columns" and "Title" in more.help and "Status" in more.help
    more.set_value(True).run()
    shown = list(app.dataframe[0].proto.column_order)
    assert shown[:3] == ["capa_number", "current_due", "days_overdue"]
    assert set(shown) == {"capa_number", "title", "status", "opened_at", "current_due",
                          "days_overdue", "source_record"}  # fmt: skip


def _one_bar() -> None:
    import plotly.express as px
    import polars as pl

    from portal.widgets import chart
    from warehouse.scope import Scope

    class Memo:  # the chart helper's only use of a scope: its memo
        def memo(self, key, build):
            return build()

    bars = pl.DataFrame({"outcome": ["Confirmed", "Inconclusive"], "n": [0, 3]})
    scope: Scope = Memo()  # type: ignore[assignment]
    chart(scope, "one", bars, lambda d: px.bar(d, x="outcome", y="n", title="OOS outcomes"))
    two = pl.DataFrame({"outcome": ["Confirmed", "Inconclusive"], "n": [2, 3]})
    chart(scope, "two", two, lambda d: px.bar(d, x="outcome", y="n", title="OOS outcomes"))


def test_a_chart_of_one_bar_is_a_metric() -> None:
    app = AppTest.from_function(_one_bar).run()
    assert not app.exception
    assert [(m.label, m.value) for m in app.metric] == [("OOS outcomes: Inconclusive", "3")]
    assert len(app.get("plotly_chart")) == 1  # two bars stay a chart
