"""Baseline (a): the floor of Streamlit itself - one query, one table, one chart."""

import plotly.express as px
import streamlit as st

from portal.context import sponsor_scope

scope = sponsor_scope()
months = scope.frame(
    "bench minimal",
    "SELECT date_trunc('month', mfg_start) AS month, count(*) AS batches "
    "FROM batch GROUP BY ALL ORDER BY month",
)
st.title("Minimal page")
st.dataframe(months, hide_index=True)
st.plotly_chart(px.bar(months.to_pandas(), x="month", y="batches"))
