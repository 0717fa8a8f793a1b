"""CAPA aging: open CAPAs by age, overdue, on-time closure, extensions, effectiveness."""

import plotly.express as px
import streamlit as st

from portal.context import sponsor_scope
from portal.widgets import chart, dashboard_filters, empty_state, export_buttons, table
from warehouse import catalogue, clock, kpis
from warehouse.queries import capa


def _rate(result: kpis.KpiResult) -> str:
    if result.caveat or result.value is None:
        return result.display()
    return f"{result.value:.0%} ({result.numerator}/{result.denominator})"


st.title("CAPA aging")
scope = sponsor_scope()
filters = dashboard_filters(scope, "capa")
model = capa.page_model(scope, filters, clock.today())

if model.capas.is_empty():
    empty_state("CAPAs raised from this sponsor's deviations, OOS, complaints and findings "
                "appear here.")  # fmt: skip
    st.stop()

open_capas = catalogue.measure("open_capas")
# Two rows, so that each measure's full name fits above its value at 1280 px.
cols = [*st.columns(3), *st.columns(3)]
cols[0].metric(open_capas.name, model.open_count, help=open_capas.help)
cols[1].metric(model.overdue.definition.name, model.overdue.numerator,
               help=model.overdue.tooltip())  # fmt: skip
for col, result in zip(
    cols[3:], (model.on_time_original, model.on_time_current, model.effectiveness), strict=True
):
    col.metric(result.definition.name, _rate(result), help=result.tooltip())

overdue, not_overdue = (catalogue.dataset("capa_aging").column(name).label
                        for name in ("overdue", "not_overdue"))  # fmt: skip
chart(scope, "capa:aging", model.aging_chart, lambda data: px.bar(
    data, x="bucket", y="capas", color="state", title="Open CAPAs by age (days)",
    category_orders={"bucket": list(kpis.AGE_BUCKETS), "state": [overdue, not_overdue]},
    color_discrete_map={overdue: "#d62728", not_overdue: "#1f77b4"}),
    dataset="capa_aging", labels={"capas": "Open CAPAs", "state": ""})  # fmt: skip

table(
    model.capas,
    "capas",
    key="capa:capas",
    first=("status", "current_due", "days_overdue", "source_record", "title"),
)
export_buttons(model.capas, "capa", filters, scope, dataset="capas")

st.header("Due-date extensions")
if model.extensions.is_empty():
    empty_state("Extensions of the due dates of these CAPAs appear here, with their reasons.")
else:
    st.metric("Extensions", model.extensions.height)
    table(model.extensions, "capa_extensions")
    export_buttons(model.extensions, "capa-extensions", filters, scope, dataset="capa_extensions")

st.header("Effectiveness checks")
if model.checks.is_empty():
    empty_state("Effectiveness checks of these CAPAs appear here, with their results.")
else:
    table(model.checks, "capa_effectiveness")
    export_buttons(model.checks, "capa-effectiveness", filters, scope, dataset="capa_effectiveness")
