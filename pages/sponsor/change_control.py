"""Change control: changes affecting this sponsor with its own obligation, awaiting it first."""

import plotly.express as px
import polars as pl
import streamlit as st

from portal.context import sponsor_scope
from portal.widgets import chart, dashboard_filters, empty_state, export_buttons, table
from warehouse import catalogue
from warehouse.queries.change_control import below_agreement_sentences, change_impacts

st.title("Change control")
scope = sponsor_scope()
filters = dashboard_filters(scope, "change_control")
impacts = change_impacts(scope, filters)

if impacts.is_empty():
    empty_state("Site changes that affect this sponsor's products appear here, with the "
                "obligation from its quality agreement.")  # fmt: skip
    st.stop()

awaiting = impacts.filter(pl.col("awaiting_sponsor"))
violations = impacts.filter(pl.col("violation"))
cols = st.columns(3)
cols[0].metric("Changes in view", impacts["change_number"].n_unique())
cols[1].metric("Awaiting your approval or notification", awaiting.height)
cols[2].metric("Breaches of your quality agreement", violations.height)

if not awaiting.is_empty():
    st.warning(f"{awaiting.height} change impact(s) await this sponsor's approval or notification.")
    table(awaiting, "change_controls")
if not violations.is_empty():
    st.error(f"{violations.height} change impact(s) broke this sponsor's quality agreement: "
             "effective before the approval or notification it requires, or recorded with a "
             "weaker obligation than it sets.")  # fmt: skip
    for sentence in below_agreement_sentences(violations):
        st.error(sentence, icon=":material/gavel:")
    table(violations, "change_controls")

by_obligation = impacts.group_by("obligation", "status").len("impacts").sort("obligation", "status")
obligation = catalogue.dataset("change_controls").column("obligation")
chart(scope, "change_control:obligations", by_obligation, lambda data: px.bar(
    data, x="obligation", y="impacts", color="status",
    category_orders={"obligation": obligation.ordered_words},
    title="Impacts by your obligation and change status"),
    dataset="change_controls", labels={"impacts": "Change impacts"})  # fmt: skip

st.subheader("All changes affecting this sponsor")
table(impacts, "change_controls")
export_buttons(impacts, "change_control", filters, scope, dataset="change_controls")
