"""CAPA aging: open CAPAs by age, overdue, on-time closure, extensions, effectiveness."""

import plotly.express as px
import streamlit as st

from portal.context import sponsor_scope
from portal.widgets import chart, dashboard_filters, empty_state, export_buttons
from warehouse import clock, kpis
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
cols = st.columns(5)
cols[0].metric("Open CAPAs", int(found["age_days"].is_not_null().sum()))
cols[1].metric(
    "Overdue",
    overdue.numerator,
    help=overdue.tooltip(),
)
cols[2].metric("On time vs original due", _rate(original), help=original.tooltip())
cols[3].metric("On time vs current due", _rate(current), help=current.tooltip())
cols[4].metric("Effectiveness", _rate(effective), help=effective.tooltip())

buckets = kpis.capa_aging(found, today).unpivot(
    index="bucket", variable_name="state", value_name="capas"
)
chart(scope, "capa:aging", buckets, lambda data: px.bar(
    data, x="bucket", y="capas", color="state", title="Open CAPAs by age (days)",
    category_orders={"bucket": list(kpis.AGE_BUCKETS), "state": ["overdue", "not_overdue"]},
    color_discrete_map={"overdue": "#d62728", "not_overdue": "#1f77b4"}))  # fmt: skip

st.dataframe(
    found,
    hide_index=True,
    column_config={
        "capa_number": "CAPA", "title": "Title", "source_type": "Source",
        "source_record": "Source record", "status": "Status",
        "opened_at": st.column_config.DatetimeColumn("Opened"),
        "original_due": "Original due", "current_due": "Current due",
        "extension_count": "Extensions", "closed_at": st.column_config.DatetimeColumn("Closed"),
        "closed_on_time_original": "On time (original)",
        "closed_on_time_current": "On time (current)", "effectiveness_result": "Effectiveness",
        "age_days": "Age (days)", "overdue": "Overdue", "days_overdue": "Days overdue",
    },
)  # fmt: skip
export_buttons(found, "capa", filters, scope)

st.header("Due-date extensions")
if extensions.is_empty():
    empty_state("Extensions of the due dates of these CAPAs appear here, with their reasons.")
else:
    st.metric("Extensions", extensions.height)
    st.dataframe(
        extensions,
        hide_index=True,
        column_config={
            "capa_number": "CAPA", "previous_due": "Previous due", "new_due": "New due",
            "days_added": "Days added", "reason": "Reason",
            "approved_at": st.column_config.DatetimeColumn("Approved"),
        },
    )  # fmt: skip
    export_buttons(extensions, "capa-extensions", filters, scope)

st.header("Effectiveness checks")
if checks.is_empty():
    empty_state("Effectiveness checks of these CAPAs appear here, with their results.")
else:
    st.dataframe(
        checks,
        hide_index=True,
        column_config={
            "capa_number": "CAPA", "title": "Title",
            "checked_at": st.column_config.DatetimeColumn("Checked"), "result": "Result",
        },
    )  # fmt: skip
    export_buttons(checks, "capa-effectiveness", filters, scope)
