"""Overview: what needs this sponsor's attention today, readable without a click."""

import plotly.express as px
import streamlit as st
from streamlit.errors import StreamlitAPIException

from portal.context import sponsor_scope
from portal.widgets import chart, dashboard_filters, empty_state, export_buttons
from warehouse import clock
from warehouse.queries import overview

st.title("Overview")
scope = sponsor_scope()
filters = dashboard_filters(scope, "overview")
today = clock.today()
st.caption(
    f"Current state as of {today:%d %b %Y}; the product filter applies, the period does not."
)

in_flight = overview.batches_in_flight(scope, filters)
awaiting = overview.awaiting_release(scope, filters, today)
deviations = overview.open_deviations(scope, filters, today)
capas = overview.overdue_capas(scope, filters, today)
changes = overview.changes_awaiting_sponsor(scope, filters)
exceptions = overview.data_integrity_exceptions(scope, filters, today)


def see(script: str, label: str) -> None:
    """Link to a dashboard when the router registered it for this role, else name it."""
    try:
        st.page_link(script, label=label, icon=":material/arrow_forward:")
    except StreamlitAPIException:
        st.caption(f"Details: {label}")


cols = st.columns(5)
longest = f"longest {awaiting['days_waiting'].max()} days" if awaiting.height else None
cols[0].metric("Awaiting your release", awaiting.height, longest, delta_color="off")
cols[1].metric("Batches in flight", int(in_flight["batches"].sum()))
cols[2].metric("Open deviations", deviations.height)
cols[3].metric("Overdue CAPAs", capas.height)
cols[4].metric("Changes awaiting you", changes.height)
if exceptions.height:
    st.badge(f"{exceptions.height} data-integrity exceptions in the last "
             f"{overview.DI_WINDOW_DAYS} days", color="red", icon=":material/warning:")  # fmt: skip
else:
    st.badge(f"No data-integrity exceptions in the last {overview.DI_WINDOW_DAYS} days",
             color="green", icon=":material/check:")  # fmt: skip

left, right = st.columns(2)
with left:
    st.subheader("Batches awaiting your release")
    if awaiting.height:
        st.dataframe(awaiting, hide_index=True, column_config={
            "batch_number": "Batch", "product": "Product",
            "cmo_decided_at": st.column_config.DatetimeColumn("CMO released", format="YYYY-MM-DD"),
            "days_waiting": st.column_config.NumberColumn("Days waiting"),
        })  # fmt: skip
    else:
        empty_state("Batches the CMO has released and that wait for your decision appear here.")
    see("pages/sponsor/batches.py", "Batches")

    st.subheader("Batches in flight by stage")
    if in_flight.height:
        chart(scope, "overview:in-flight", in_flight,
              lambda data: px.bar(data, x="status", y="batches", labels={"status": "Stage"}),
              key="overview:in-flight")  # fmt: skip
    else:
        empty_state("Batches between planning and your release appear here by stage.")

with right:
    st.subheader("Open deviations by class")
    if deviations.height:
        by_class = deviations.group_by("classification").len("deviations").sort("classification")
        chart(scope, "overview:deviations", by_class, lambda data: px.bar(
            data, x="classification", y="deviations",
            category_orders={"classification": ["CRITICAL", "MAJOR", "MINOR"]},
        ), key="overview:deviations")  # fmt: skip
        st.dataframe(deviations.head(5), hide_index=True, column_config={
            "deviation_number": "Deviation", "title": "Title", "classification": "Class",
            "status": "Status",
            "awareness_at": st.column_config.DatetimeColumn("Aware", format="YYYY-MM-DD"),
            "age_days": st.column_config.NumberColumn("Age (days)"),
        })  # fmt: skip
    else:
        empty_state("Open deviations touching your products appear here by class.")
    see("pages/sponsor/deviations.py", "Deviations & OOS")

    st.subheader("Overdue CAPAs")
    if capas.height:
        st.dataframe(capas, hide_index=True, column_config={
            "capa_number": "CAPA", "title": "Title", "status": "Status",
            "current_due": st.column_config.DateColumn("Due"),
            "days_overdue": st.column_config.NumberColumn("Days overdue"),
        })  # fmt: skip
    else:
        empty_state("Open CAPAs past their current due date appear here.")
    see("pages/sponsor/capa.py", "CAPA aging")

st.subheader("Changes awaiting your approval or acknowledgement")
if changes.height:
    st.dataframe(changes, hide_index=True, column_config={
        "change_number": "Change", "title": "Title", "change_status": "Change status",
        "planned_effective": st.column_config.DateColumn("Planned effective"),
        "product": "Product", "obligation": "Obligation",
        "notified_at": st.column_config.DatetimeColumn("Notified", format="YYYY-MM-DD"),
        "awaiting": "Awaiting your",
    })  # fmt: skip
else:
    empty_state("Change controls that need your prior approval or acknowledgement appear here.")
see("pages/sponsor/change_control.py", "Change control")

st.subheader(f"Data-integrity exceptions, last {overview.DI_WINDOW_DAYS} days")
if exceptions.height:
    st.dataframe(exceptions, hide_index=True, column_config={
        "batch_number": "Batch", "seq": "Step", "step_name": "Step, equipment or change",
        "occurred_at": st.column_config.DatetimeColumn("When", format="YYYY-MM-DD HH:mm"),
        "exception": "Exception",
    })  # fmt: skip
    export_buttons(exceptions, "overview", filters, scope)
else:
    empty_state("Late entries, missing or self-verifications and dispositions with open "
                "deviations in your batch records, equipment used while not fit for use and "
                "changes that broke your quality agreement appear here.")  # fmt: skip
see("pages/sponsor/batch_record.py", "Batch record (review by exception)")
