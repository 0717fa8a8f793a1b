"""CAPA aging: open CAPAs by age, overdue, on-time closure, extensions, effectiveness."""

import plotly.express as px
import streamlit as st

from portal.context import sponsor_scope
from portal.widgets import dashboard_filters, empty_state, export_buttons
from warehouse.queries.capa import (
    AGE_BUCKETS,
    aging,
    capa_extensions,
    capas,
    effectiveness_checks,
    effectiveness_rate,
    on_time_closure,
)


def _rate(counts: tuple[int, int]) -> str:
    on_time, due = counts
    return "—" if due == 0 else f"{on_time / due:.0%} ({on_time}/{due})"


st.title("CAPA aging")
scope = sponsor_scope()
filters = dashboard_filters(scope, "capa")
found = capas(scope, filters)

if found.is_empty():
    empty_state("CAPAs raised from this sponsor's deviations, OOS, complaints and findings "
                "appear here.")  # fmt: skip
    st.stop()

capa_numbers = found["capa_number"].to_list()
extensions = capa_extensions(scope, capa_numbers)
checks = effectiveness_checks(scope, capa_numbers)
effective = effectiveness_rate(checks)

kpi9 = "CAPA on-time closure (FDA 2022 example, DOMAIN.md KPI 9): closed by the due date ÷ due "
original = on_time_closure(found, "original_due", filters.start, filters.end)
current = on_time_closure(found, "current_due", filters.start, filters.end)
cols = st.columns(5)
cols[0].metric("Open CAPAs", int(found["age_days"].is_not_null().sum()))
cols[1].metric(
    "Overdue",
    int(found["overdue"].fill_null(False).sum()),
    help="Open and today past the current (extended) due date (DOMAIN.md KPI 10).",
)
cols[2].metric("On time vs original due", _rate(original), help=kpi9 + "in the period (original).")
cols[3].metric("On time vs current due", _rate(current), help=kpi9 + "in the period (extended).")
cols[4].metric(
    "Effectiveness",
    "—" if effective is None else f"{effective:.0%}",
    help="DOMAIN.md KPI 11: checks judged effective ÷ checks completed.",
)

buckets = aging(found).unpivot(index="bucket", variable_name="state", value_name="capas")
st.plotly_chart(
    px.bar(buckets, x="bucket", y="capas", color="state", title="Open CAPAs by age (days)",
           category_orders={"bucket": list(AGE_BUCKETS), "state": ["overdue", "not_overdue"]},
           color_discrete_map={"overdue": "#d62728", "not_overdue": "#1f77b4"}),
)  # fmt: skip

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
