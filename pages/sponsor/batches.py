"""Batches: every batch started in the period, both dispositions, funnel and cycle time."""

import plotly.express as px
import streamlit as st
from streamlit.errors import StreamlitAPIException

from portal.context import sponsor_scope, voice
from portal.widgets import chart, dashboard_filters, empty_state, export_buttons, table
from warehouse import clock
from warehouse.queries import batches

RECORD_KEY = "batch_record:batch_id"  # read by pages/batch_record.py

st.title("Batches")
scope = sponsor_scope()
our = voice()  # 'your' to the sponsor's QA, 'the sponsor's' to anyone else
filters = dashboard_filters(scope, "batches")
model = batches.page_model(scope, filters, clock.today())

if model.batches.height == 0:
    empty_state(
        f"Batches of {our.your} products whose manufacture started in the period appear here."
    )
    st.stop()

funnel, trend = st.columns(2)
with funnel:
    st.subheader("Status funnel")
    chart(
        scope,
        "batches:funnel",
        model.funnel,
        lambda data: px.funnel(data, x="batches", y="status"),
        dataset="batch_status",
        key="batches:funnel",
    )
with trend:
    st.subheader(f"Disposition cycle time (median days, mfg end → {our.your} release)")
    if model.cycle_time.height:
        chart(scope, "batches:cycle-time", model.cycle_time, lambda data: px.line(
            data, x="month", y="median_days", markers=True, hover_data=["batches"]
        ), labels={"month": f"Month of {our.your} decision", "median_days": "Median days",
                   "batches": "Lots decided"}, key="batches:cycle-time")  # fmt: skip
    else:
        empty_state(f"The median days from end of manufacture to {our.your} release, per month.")

table(model.batches, "batches")
export_buttons(model.batches, "batches", filters, scope, dataset="batches")

numbers = model.batch_numbers
chosen = st.selectbox("Open batch record", list(numbers), index=None, format_func=numbers.get,
                      placeholder="Choose a batch")  # fmt: skip
if chosen is not None:
    st.session_state[RECORD_KEY] = chosen
    try:
        st.switch_page("pages/sponsor/batch_record.py")
    except StreamlitAPIException:
        st.caption("Open the Batch record page to see it.")
