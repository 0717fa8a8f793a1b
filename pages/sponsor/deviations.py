"""Deviations & OOS: this sponsor's deviations by class, status, age and root cause; OOS."""

import plotly.express as px
import polars as pl
import streamlit as st

from portal.context import sponsor_scope
from portal.widgets import chart, dashboard_filters, empty_state, export_buttons, table
from warehouse import catalogue, kpis
from warehouse.queries.deviations import OOS_OUTCOMES, deviations, oos_investigations

st.title("Deviations & OOS")
scope = sponsor_scope()
filters = dashboard_filters(scope, "deviations")
found = deviations(scope, filters)

if found.is_empty():
    empty_state("Deviations that touch this sponsor's products, batches or equipment appear here.")
else:
    open_ones = found.filter(pl.col("age_days").is_not_null())
    open_deviations = kpis.open_deviations(found)
    cols = st.columns(4)
    cols[0].metric("Deviations in view", found.height)
    cols[1].metric("Open", open_deviations.numerator, help=open_deviations.tooltip())
    cols[2].metric("Open past current due", int(found["overdue"].fill_null(False).sum()))
    cols[3].metric("Recurrences", kpis.recurrence_count(found), help="Deviations that recur a "
                   "deviation of the prior 12 months, this sponsor's or another client's "
                   "(DOMAIN.md KPI 7).")  # fmt: skip

    listed = catalogue.dataset("deviations")
    order = {name: listed.column(name).ordered_words for name in ("classification", "status")}
    left, right = st.columns(2)
    by_class = (
        found.group_by("classification", "status")
        .len("deviations")
        .sort("classification", "status")
    )
    with left:
        chart(scope, "deviations:class", by_class, lambda data: px.bar(
            data, x="classification", y="deviations", color="status",
            category_orders=order, title="By class and status"),
            dataset="deviations", labels={"deviations": "Deviations"})  # fmt: skip
    by_cause = found.with_columns(pl.col("root_cause_category").fill_null("Not yet assigned"))
    by_cause = (
        by_cause.group_by("root_cause_category")
        .len("deviations")
        .sort("deviations", "root_cause_category")
    )
    with right:
        chart(scope, "deviations:cause", by_cause, lambda data: px.bar(
            data, x="deviations", y="root_cause_category", orientation="h",
            title="By root-cause category"),
            dataset="deviations", labels={"deviations": "Deviations"})  # fmt: skip
    if not open_ones.is_empty():
        chart(scope, "deviations:age", open_ones, lambda data: px.histogram(
            data, x="age_days", color="classification", category_orders=order,
            title="Open deviations by age (days since awareness)"),
            dataset="deviations", labels={"count": "Open deviations"})  # fmt: skip

    table(found, "deviations")
    export_buttons(found, "deviations", filters, scope, dataset="deviations")

st.header("OOS investigations")
oos = oos_investigations(scope, filters)
if oos.is_empty():
    empty_state("Out-of-specification investigations on this sponsor's batches appear here.")
else:
    outcomes = dict(oos.group_by("outcome").len().iter_rows())
    cols = st.columns(len(OOS_OUTCOMES) + 1)
    outcome_column = catalogue.dataset("oos_investigations").column("outcome")
    for col, outcome in zip(cols, OOS_OUTCOMES, strict=False):
        col.metric(outcome_column.word(outcome), outcomes.get(outcome, 0))
    rate = kpis.invalidated_oos_rate(
        oos.with_columns(outcome=pl.col("outcome_code")), filters.start, filters.end
    )
    cols[-1].metric("Invalidated OOS rate", rate.display(), help=rate.tooltip())
    by_outcome = (
        oos.group_by("outcome", "test_type").len("investigations").sort("outcome", "test_type")
    )
    chart(scope, "deviations:oos", by_outcome, lambda data: px.bar(
        data, x="outcome", y="investigations", color="test_type",
        category_orders={"outcome": outcome_column.ordered_words},
        title="OOS outcomes by test type"),
        dataset="oos_investigations", labels={"investigations": "Investigations"})  # fmt: skip
    table(oos, "oos_investigations")
    export_buttons(oos, "oos", filters, scope, dataset="oos_investigations")
