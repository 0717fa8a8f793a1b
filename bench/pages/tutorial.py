"""Baseline (b): the typical tutorial pattern - pandas reads all the Parquet of every
sponsor (cached), then each run filters to the signed-in sponsor in Python."""

from pathlib import Path

import pandas as pd
import plotly.express as px
import streamlit as st

from warehouse.layout import current_snapshot


@st.cache_data
def load(root: str) -> pd.DataFrame:
    """Every sponsor's batches and batch events, as a tutorial loads 'the data'."""
    snapshot = current_snapshot(Path(root))
    # Only the columns the page uses: every column of 10M events as Python strings took
    # more than 20 GB on the large preset and was killed.
    batches = pd.read_parquet(snapshot / "batch", columns=["batch_id", "mfg_start"])
    events = pd.read_parquet(
        snapshot / "batch_event", columns=["event_id", "batch_id", "di_exception", "sponsor_id"]
    )
    return events.merge(batches[["batch_id", "mfg_start"]], on="batch_id")


data = load(st.session_state["_warehouse_root"])
mine = data[data["sponsor_id"] == st.session_state["_principal"].sponsor_id]
per_batch = mine.groupby("batch_id", as_index=False).agg(
    events=("event_id", "count"), exceptions=("di_exception", "sum"), start=("mfg_start", "min")
)
st.title("Tutorial page")
st.dataframe(per_batch.sort_values("start").tail(50))
st.plotly_chart(
    px.bar(
        per_batch.groupby(per_batch["start"].dt.to_period("M").astype(str))
        .size()
        .reset_index(name="batches"),
        x="start",
        y="batches",
    )
)
