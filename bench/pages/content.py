"""What the two baselines show: one query, one table, one chart (the minimal page's content)."""

import plotly.express as px
import streamlit as st

from warehouse.scope import Scope


def minimal_content(scope: Scope, title: str) -> None:
    months = scope.frame(
        "bench minimal",
        "SELECT date_trunc('month', mfg_start) AS month, count(*) AS batches "
        "FROM batch GROUP BY ALL ORDER BY month",
    )
    st.title(title)
    st.dataframe(months, hide_index=True)
    st.plotly_chart(px.bar(months.to_pandas(), x="month", y="batches"))
