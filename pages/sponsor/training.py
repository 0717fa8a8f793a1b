"""Training: operators on this sponsor's batches, their SOP status, and steps done untrained."""

import plotly.express as px
import polars as pl
import streamlit as st

from portal.context import sponsor_scope
from portal.widgets import chart, dashboard_filters, empty_state, export_buttons, table
from warehouse import catalogue
from warehouse.queries.training import (
    TRAINING_STATUSES,
    operator_training,
    status_counts,
    training_gaps,
)

# Status → position on the matrix colour scale (current green … missing grey).
STATUS_CODE = {"CURRENT": 0, "DUE": 1, "OVERDUE": 2, "MISSING": 3}

st.title("Training")
scope = sponsor_scope()
filters = dashboard_filters(scope, "training")
training = operator_training(scope, filters)
gaps = training_gaps(scope, filters)

st.header("Steps performed without current training")
if gaps.is_empty():
    empty_state("Batch steps performed by an operator whose training on the product's SOPs "
                "was not current would appear here.")  # fmt: skip
else:
    st.error(f"{gaps.height} batch step(s) were performed by an operator whose training "
             "was not current.")  # fmt: skip
    table(gaps, "training_gaps")
    export_buttons(gaps, "training-gaps", filters, scope, dataset="training_gaps")

st.header("Training matrix")
if training.is_empty():
    empty_state("Operators who worked on this sponsor's batches appear here with their "
                "status on the SOPs of its products.")  # fmt: skip
    st.stop()

counts = status_counts(training)
status = catalogue.dataset("training_matrix").column("status")
cols = st.columns(len(TRAINING_STATUSES) + 1)
cols[0].metric("Operators", training["operator"].n_unique())
for col, code in zip(cols[1:], TRAINING_STATUSES, strict=True):
    col.metric(status.word(code), counts[code])

matrix = training.with_columns(pl.col("status").replace_strict(STATUS_CODE).alias("code"))
chart(scope, "training:matrix", matrix, lambda data: px.density_heatmap(
    data, x="sop_number", y="operator", z="code", histfunc="max",
    color_continuous_scale=["#2ca02c", "#ffbf00", "#d62728", "#7f7f7f"],
    range_color=(0, 3), title="Operator × SOP (green current, amber due, red overdue, "
    "grey missing)",
).update_coloraxes(showscale=False), dataset="training_matrix")  # fmt: skip
table(training, "training_matrix")
export_buttons(training, "training", filters, scope, dataset="training_matrix")
