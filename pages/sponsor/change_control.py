"""Change control: changes affecting this sponsor with its own obligation, awaiting it first."""

import plotly.express as px
import streamlit as st

from portal import decisions
from portal.context import sponsor_scope, voice
from portal.decision_panel import answered_in_portal, decision_panel
from portal.widgets import chart, dashboard_filters, empty_state, export_buttons, table
from warehouse import catalogue, clock
from warehouse.queries import change_control
from warehouse.queries.decisions import CHANGE_KINDS

st.title("Change control")
scope = sponsor_scope()
our = voice()  # 'your' to the sponsor's QA, 'the sponsor's' to anyone else
filters = dashboard_filters(scope, "change_control")
model = change_control.page_model(scope, filters, clock.today())

if model.impacts.is_empty():
    empty_state("Site changes that affect this sponsor's products appear here, with the "
                "obligation from its quality agreement.")  # fmt: skip
    st.stop()

# What the QMS shows as awaiting the sponsor, less what the sponsor already signed here.
signed = decisions.signed_for(scope, CHANGE_KINDS)
awaiting, answered = answered_in_portal(scope, model.awaiting, signed)
cols = st.columns(3)
cols[0].metric("Changes in view", model.change_count)
cols[1].metric(f"Awaiting {our.your} approval or notification", awaiting.height,
               help=f"{answered} more answered in the portal, not yet recorded in the CMO's QMS."
               if answered else None)  # fmt: skip
cols[2].metric(f"Breaches of {our.your} quality agreement", model.violations.height)

if not awaiting.is_empty():
    for sentence in change_control.awaiting_sentences(awaiting, our.your, our.you):
        st.warning(sentence, icon=":material/pending_actions:")
    table(
        awaiting,
        "change_controls",
        key="change_control:awaiting",
        first=("obligation", "planned_effective", "days_to_planned", "title", "product"),
    )
decision_panel(scope, CHANGE_KINDS, "change_control", signed)
if not signed.is_empty():
    export_buttons(signed, "change_control_decisions", filters, scope, dataset="decisions")

if not model.violations.is_empty():
    st.error(f"{model.violations.height} change impact(s) broke this sponsor's quality "
             "agreement: effective before the approval or notification it requires, or "
             "recorded with a weaker obligation than it sets.")  # fmt: skip
    for sentence in model.below_agreement:
        st.error(sentence, icon=":material/gavel:")
    table(
        model.violations,
        "change_controls",
        key="change_control:violations",
        first=("violation_reason", "obligation", "actual_effective", "title"),
    )

obligation = catalogue.dataset("change_controls").column("obligation")
chart(
    scope,
    "change_control:obligations",
    model.by_obligation,
    lambda data: px.bar(
        data,
        x="obligation",
        y="impacts",
        color="status",
        category_orders={"obligation": obligation.ordered_words},
        title=f"Impacts by {our.your} obligation and change status",
    ),
    dataset="change_controls",
    labels={"impacts": "Change impacts"},
    extra=our.your,
)  # fmt: skip  (the title's wording is the reader's: part of the key)

st.subheader("All changes affecting this sponsor")
table(
    model.impacts,
    "change_controls",
    key="change_control:all",
    first=("status", "obligation", "decision", "planned_effective", "title"),
)
export_buttons(model.impacts, "change_control", filters, scope, dataset="change_controls")
