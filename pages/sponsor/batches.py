"""Batches: every batch started in the period, both dispositions, funnel and cycle time."""

import plotly.express as px
import streamlit as st
from streamlit.errors import StreamlitAPIException

from portal.context import sponsor_scope
from portal.widgets import chart, dashboard_filters, empty_state, export_buttons, table
from warehouse import clock, kpis
from warehouse.queries.batches import batch_list, status_funnel

RECORD_KEY = "batch_record:batch_id"  # read by pages/batch_record.py

st.title("Batches")
scope = sponsor_scope()
filters = dashboard_filters(scope, "batches")
batches = batch_list(scope, filters, clock.today())

if batches.height == 0:
    empty_state("Batches of your products whose manufacture started in the period appear here.")
    st.stop()

funnel, trend = st.columns(2)
with funnel:
    st.subheader("Status funnel")
    chart(
        scope,
        "batches:funnel",
        status_funnel(batches),
        lambda data: px.funnel(data, x="batches", y="status"),
        dataset="batch_status",
        key="batches:funnel",
    )
with trend:
    st.subheader("Disposition cycle time (median days, mfg end → your release)")
    months = kpis.cycle_time_trend(batches)
    if months.height:
        chart(scope, "batches:cycle-time", months, lambda data: px.line(
            data, x="month", y="median_days", markers=True, hover_data=["batches"]
        ), labels={"month": "Month of your decision", "median_days": "Median days",
                   "batches": "Lots decided"}, key="batches:cycle-time")  # fmt: skip
    else:
        empty_state("The median days from end of manufacture to your release, per month.")

table(batches, "batches")
export_buttons(batches, "batches", filters, scope, dataset="batches")

numbers = dict(zip(batches["batch_id"], batches["batch_number"], strict=True))
chosen = st.selectbox("Open batch record", list(numbers), index=None, format_func=numbers.get,
                      placeholder="Choose a batch")  # fmt: skip
if chosen is not None:
    st.session_state[RECORD_KEY] = chosen
    try:
        st.switch_page("pages/sponsor/batch_record.py")
    except StreamlitAPIException:
        st.caption("Open the Batch record page to see it.")
