"""Training: operators on this sponsor's batches, their SOP status, and steps done untrained."""

import plotly.express as px
import streamlit as st

from portal.context import sponsor_scope
from portal.widgets import chart, dashboard_filters, empty_state, export_buttons, table
from warehouse import catalogue, clock
from warehouse.queries import training

# Current, due, overdue, missing (the contract's order of the statuses).
STATUS_COLOURS = ("#2ca02c", "#ffbf00", "#d62728", "#7f7f7f")

st.title("Training")
scope = sponsor_scope()
filters = dashboard_filters(scope, "training")
model = training.page_model(scope, filters, clock.today())

st.header("Steps performed without current training")
if model.gaps.is_empty():
    empty_state("Batch steps performed by an operator whose training on the product's SOPs "
                "was not current would appear here.")  # fmt: skip
else:
    count = model.gaps.height
    steps = "1 batch step was" if count == 1 else f"{count} batch steps were"
    st.error(f"{steps} performed by an operator whose training was not current.")
    table(model.gaps, "training_gaps")
    export_buttons(model.gaps, "training-gaps", filters, scope, dataset="training_gaps")

st.header("Training matrix")
if model.training.is_empty():
    empty_state("Operators who worked on this sponsor's batches appear here with their "
                "status on the SOPs of its products.")  # fmt: skip
    st.stop()

status = catalogue.dataset("training_matrix").column("status")
cols = st.columns(len(model.status_counts) + 1)
cols[0].metric("Operators", model.operators)
for col, (code, count) in zip(cols[1:], model.status_counts.items(), strict=True):
    col.metric(status.word(code), count)

# One square per operator and SOP, coloured by status with a legend: red and amber need
# attention, grey is no training on record, green is current.
colours = dict(zip(status.ordered_words, STATUS_COLOURS, strict=True))
chart(scope, "training:matrix", model.training, lambda data: px.scatter(
    data, x="sop_number", y="operator", color="status", symbol_sequence=["square"],
    category_orders={"status": status.ordered_words}, color_discrete_map=colours,
    height=max(320, 26 * model.operators + 140),
).update_traces(marker={"size": 16}).update_layout(
    xaxis={"type": "category", "side": "top"}, yaxis={"type": "category", "autorange": "reversed"},
    legend={"orientation": "h", "y": -0.05},
), dataset="training_matrix", labels={"status": "Training status"})  # fmt: skip
table(model.training, "training_matrix")
export_buttons(model.training, "training", filters, scope, dataset="training_matrix")
