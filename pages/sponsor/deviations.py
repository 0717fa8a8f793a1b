"""Deviations & OOS: this sponsor's deviations by class, status, age and root cause; OOS."""

import plotly.express as px
import streamlit as st

from portal.context import sponsor_scope
from portal.decision_panel import decision_panel
from portal.widgets import chart, dashboard_filters, empty_state, export_buttons, table
from warehouse import catalogue, clock
from warehouse.queries import deviations
from warehouse.queries.decisions import EVENT_KINDS

st.title("Deviations & OOS")
scope = sponsor_scope()
filters = dashboard_filters(scope, "deviations")
model = deviations.page_model(scope, filters, clock.today())

if model.deviations.is_empty():
    empty_state("Deviations that touch this sponsor's products, batches or equipment appear here.")
    acknowledged = decision_panel(scope, EVENT_KINDS, "deviations")
else:
    open_deviations = model.open_deviations
    cols = st.columns(4)
    cols[0].metric("Deviations in view", model.deviations.height)
    cols[1].metric("Open", open_deviations.numerator, help=open_deviations.tooltip())
    cols[2].metric("Open past current due", model.overdue_count)
    cols[3].metric("Recurrences", model.recurrences, help="Deviations that recur a "
                   "deviation of the prior 12 months, this sponsor's or another client's "
                   "(DOMAIN.md KPI 7).")  # fmt: skip
    acknowledged = decision_panel(scope, EVENT_KINDS, "deviations")

    listed = catalogue.dataset("deviations")
    order = {name: listed.column(name).ordered_words for name in ("classification", "status")}
    left, right = st.columns(2)
    with left:
        chart(scope, "deviations:class", model.by_class, lambda data: px.bar(
            data, x="classification", y="deviations", color="status",
            category_orders=order, title="By class and status"),
            dataset="deviations", labels={"deviations": "Deviations"})  # fmt: skip
    with right:
        chart(scope, "deviations:cause", model.by_cause, lambda data: px.bar(
            data, x="deviations", y="root_cause_category", orientation="h",
            title="By root-cause category"),
            dataset="deviations", labels={"deviations": "Deviations"})  # fmt: skip
    if not model.open_ones.is_empty():
        chart(scope, "deviations:age", model.open_ones, lambda data: px.histogram(
            data, x="age_days", color="classification", category_orders=order,
            title="Open deviations by age (days since awareness)"),
            dataset="deviations", labels={"count": "Open deviations"})  # fmt: skip

    table(model.deviations, "deviations")
    export_buttons(model.deviations, "deviations", filters, scope, dataset="deviations")

st.header("OOS investigations")
if model.oos.is_empty():
    empty_state("Out-of-specification investigations on this sponsor's batches appear here.")
else:
    cols = st.columns(len(model.oos_outcomes) + 1)
    outcome_column = catalogue.dataset("oos_investigations").column("outcome")
    for col, (outcome, count) in zip(cols, model.oos_outcomes.items(), strict=False):
        col.metric(outcome_column.word(outcome), count)
    rate = model.invalidated_oos_rate
    cols[-1].metric(rate.definition.name, rate.display(), help=rate.tooltip())
    chart(scope, "deviations:oos", model.oos_by_outcome, lambda data: px.bar(
        data, x="outcome", y="investigations", color="test_type",
        category_orders={"outcome": outcome_column.ordered_words},
        title="OOS outcomes by test type"),
        dataset="oos_investigations", labels={"investigations": "Investigations"})  # fmt: skip
    table(model.oos, "oos_investigations")
    export_buttons(model.oos, "oos", filters, scope, dataset="oos_investigations")
if not acknowledged.is_empty():
    export_buttons(acknowledged, "deviations_acknowledgements", filters, scope,
                   dataset="decisions")  # fmt: skip
