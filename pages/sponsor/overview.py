"""Overview: what needs this sponsor's attention today, readable without a click."""

import plotly.express as px
import streamlit as st
from streamlit.errors import StreamlitAPIException

from portal.context import sponsor_scope, voice
from portal.decision_panel import answered_in_portal
from portal.widgets import chart, dashboard_filters, empty_state, export_buttons, table
from warehouse import catalogue, clock
from warehouse.queries import overview

st.title("Overview")
scope = sponsor_scope()
our = voice()  # 'your' to the sponsor's QA, 'the sponsor's' to anyone else
filters = dashboard_filters(scope, "overview")
today = clock.today()
st.caption(
    f"Current state as of {today:%d %b %Y}; the product filter applies, the period does not."
)
model = overview.page_model(scope, filters, today)


def see(script: str, label: str) -> None:
    """Link to a dashboard when the router registered it for this role, else name it."""
    try:
        st.page_link(script, label=label, icon=":material/arrow_forward:")
    except StreamlitAPIException:
        st.caption(f"Details: {label}")


cols = st.columns(5)
longest = f"longest {model.longest_wait} days" if model.awaiting.height else None
cols[0].metric(f"Awaiting {our.your} release", model.awaiting.height, longest, delta_color="off")
cols[1].metric("Batches in flight", model.in_flight_count)
for col, key, count in ((cols[2], "open_deviations", model.deviations.height),
                        (cols[3], "overdue_capas", model.overdue_capas.height)):  # fmt: skip
    measure = catalogue.measure(key)
    col.metric(measure.name, count, help=measure.help)
# Less what the sponsor already answered in the portal (the QMS records it overnight).
changes, answered = answered_in_portal(scope, model.changes)
cols[4].metric(f"Changes awaiting {our.you}", changes.height,
               help=f"{answered} more answered in the portal, not yet recorded in the CMO's QMS."
               if answered else None)  # fmt: skip
if model.exceptions.height:
    st.badge(f"{model.exceptions.height} data-integrity exceptions in the last "
             f"{overview.DI_WINDOW_DAYS} days", color="red", icon=":material/warning:")  # fmt: skip
else:
    st.badge(f"No data-integrity exceptions in the last {overview.DI_WINDOW_DAYS} days",
             color="green", icon=":material/check:")  # fmt: skip

# Full width: in half a page at 1280 px its last column (days waiting) was cut off.
st.subheader(f"Batches awaiting {our.your} release")
if model.awaiting.height:
    table(model.awaiting, "awaiting_release")
else:
    empty_state(f"Batches the CMO has released and that wait for {our.your} decision appear here.")
see("pages/sponsor/batches.py", "Batches")

left, right = st.columns(2)
with left:
    st.subheader("Batches in flight by stage")
    if model.in_flight.height:
        chart(scope, "overview:in-flight", model.in_flight,
              lambda data: px.bar(data, x="status", y="batches"), dataset="batch_status",
              key="overview:in-flight")  # fmt: skip
    else:
        empty_state(f"Batches between planning and {our.your} release appear here by stage.")

with right:
    st.subheader("Open deviations by class")
    if model.deviations.height:
        chart(scope, "overview:deviations", model.deviations_by_class, lambda data: px.bar(
            data, x="classification", y="deviations",
            category_orders={"classification": catalogue.dataset("open_deviations").column(
                "classification").ordered_words},
        ), dataset="open_deviations", labels={"deviations": "Open deviations"},
              key="overview:deviations")  # fmt: skip
    else:
        empty_state(f"Open deviations touching {our.your} products appear here by class.")

# The tables go full width under the charts: in half a page their titles were cut off.
if model.deviations.height:
    st.subheader("Open deviations")
    table(model.deviations.head(5), "open_deviations")
see("pages/sponsor/deviations.py", "Deviations & OOS")

st.subheader("Overdue CAPAs")
if model.overdue_capas.height:
    table(model.overdue_capas, "overdue_capas")
else:
    empty_state("Open CAPAs past their current due date appear here.")
see("pages/sponsor/capa.py", "CAPA aging")

st.subheader(f"Changes awaiting {our.your} approval or acknowledgement")
if changes.height:
    # Eight columns do not fit the page: what is asked, by when and of what first (a title
    # names its product); the rest is a click away.
    table(changes, "changes_awaiting_sponsor",
          first=("awaiting", "planned_effective", "title"))  # fmt: skip
else:
    empty_state(
        f"Change controls that need {our.your} prior approval or acknowledgement appear here."
    )
see("pages/sponsor/change_control.py", "Change control")

st.subheader(f"Data-integrity exceptions, last {overview.DI_WINDOW_DAYS} days")
if model.exceptions.height:
    table(model.exceptions, "data_integrity_exceptions")
    export_buttons(
        model.exceptions, "overview", filters, scope, dataset="data_integrity_exceptions"
    )
else:
    empty_state("Late entries, missing or self-verifications and dispositions with open "
                f"deviations in {our.your} batch records, equipment used while not fit for use and "
                f"changes that broke {our.your} quality agreement appear here.")  # fmt: skip
see("pages/sponsor/batch_record.py", "Batch record (review by exception)")
