"""CAPA aging: open CAPAs by age, overdue, on-time closure, extensions, effectiveness."""

import plotly.express as px
import polars as pl
import streamlit as st

from portal.context import sponsor_scope
from portal.widgets import chart, dashboard_filters, empty_state, export_buttons, table
from warehouse import catalogue, clock, kpis
from warehouse.queries.capa import capa_extensions, capas, effectiveness_checks


def _rate(result: kpis.KpiResult) -> str:
    if result.caveat or result.value is None:
        return result.display()
    return f"{result.value:.0%} ({result.numerator}/{result.denominator})"


st.title("CAPA aging")
scope = sponsor_scope()
filters = dashboard_filters(scope, "capa")
today = clock.today()
found = capas(scope, filters, today)

if found.is_empty():
    empty_state("CAPAs raised from this sponsor's deviations, OOS, complaints and findings "
                "appear here.")  # fmt: skip
    st.stop()

capa_numbers = found["capa_number"].to_list()
extensions = capa_extensions(scope, capa_numbers)
checks = effectiveness_checks(scope, capa_numbers)
effective = kpis.capa_effectiveness_rate(checks, filters.start, filters.end)
original = kpis.capa_on_time_closure(found, filters.start, filters.end, today, due="original_due")
current = kpis.capa_on_time_closure(found, filters.start, filters.end, today, due="current_due")
overdue = kpis.overdue_capas(found, today)
open_capas = catalogue.measure("open_capas")
cols = st.columns(5)
cols[0].metric(open_capas.name, kpis.open_capas(found, today).height, help=open_capas.help)
cols[1].metric(overdue.definition.name, overdue.numerator, help=overdue.tooltip())
for col, result in zip(cols[2:], (original, current, effective), strict=True):
    col.metric(result.definition.name, _rate(result), help=result.tooltip())

aging = catalogue.dataset("capa_aging")
states = {name: aging.column(name).label for name in ("overdue", "not_overdue")}
buckets = (
    kpis.capa_aging(found, today)
    .unpivot(index="bucket", variable_name="state", value_name="capas")
    .with_columns(pl.col("state").replace(states))
)
chart(scope, "capa:aging", buckets, lambda data: px.bar(
    data, x="bucket", y="capas", color="state", title="Open CAPAs by age (days)",
    category_orders={"bucket": list(kpis.AGE_BUCKETS), "state": list(states.values())},
    color_discrete_map={states["overdue"]: "#d62728", states["not_overdue"]: "#1f77b4"}),
    dataset="capa_aging", labels={"capas": "Open CAPAs", "state": ""})  # fmt: skip

table(found, "capas")
export_buttons(found, "capa", filters, scope, dataset="capas")

st.header("Due-date extensions")
if extensions.is_empty():
    empty_state("Extensions of the due dates of these CAPAs appear here, with their reasons.")
else:
    st.metric("Extensions", extensions.height)
    table(extensions, "capa_extensions")
    export_buttons(extensions, "capa-extensions", filters, scope, dataset="capa_extensions")

st.header("Effectiveness checks")
if checks.is_empty():
    empty_state("Effectiveness checks of these CAPAs appear here, with their results.")
else:
    table(checks, "capa_effectiveness")
    export_buttons(checks, "capa-effectiveness", filters, scope, dataset="capa_effectiveness")
