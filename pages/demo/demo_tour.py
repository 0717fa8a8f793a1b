"""Guided demo tour of the synthetic demo plant: highlights a presenter steps through, then the
same shared vessel in the same week as two sponsors each see it.

Every scope here comes from portal.context.demo_scope: the demo warehouse root only, whatever
else is on disk or in the session, and each sponsor's side from its own confined scope.
"""

import plotly.express as px
import streamlit as st

from portal.context import DEMO_TOUR_ROLES, current_principal, demo_scope
from portal.widgets import chart, export_buttons, table
from warehouse import catalogue, clock, kpis, layout
from warehouse.filters import Filters
from warehouse.queries.common import sponsor_name
from warehouse.queries.demo_tour import (
    audit_step,
    capa_step,
    change_step,
    exception_step,
    vessel_step,
)
from warehouse.scope import snapshot_info, sponsor_ids

STEPS = (
    "Batch record exception",
    "CAPA aging",
    "Change awaiting approval",
    "Audit-ready view",
    "Same vessel, two sponsors",
)
STEP_KEY = "tour:step"
NOTES_KEY = "tour:notes"


def note(text: str) -> None:
    """A presenter's note: in the sidebar, and only while the presenter has notes on."""
    if st.session_state.get(NOTES_KEY):
        st.sidebar.info(text, icon=":material/record_voice_over:")


def move(by: int) -> None:
    current = STEPS.index(st.session_state.get(STEP_KEY, STEPS[0]))
    st.session_state[STEP_KEY] = STEPS[(current + by) % len(STEPS)]


# Run only inside a signed-in session, and only for business development: a page script
# reached without the router, or by another role, stops here before it reads anything.
if current_principal().role not in DEMO_TOUR_ROLES:
    st.error("The demo tour is for business development on the demo plant.")
    st.stop()
st.title("Guided demo tour")
st.caption("Synthetic demo plant: every sponsor, product and person here is fictional.")
root = layout.demo_warehouse()
info = snapshot_info(root)
sponsors = sponsor_ids(root)
if info is None or len(sponsors) < 2:
    st.info("The demo plant has not been published yet.")
    st.stop()

sponsor_a = st.sidebar.selectbox("Sponsor A", sponsors, key="tour:a")
sponsor_b = st.sidebar.selectbox("Sponsor B", sponsors, index=1, key="tour:b")
st.sidebar.toggle(
    "Presenter notes", key=NOTES_KEY,
    help="What to say at each step, here in the sidebar; off for the audience.",
)  # fmt: skip
scope_a = demo_scope(sponsor_a)
name_a = sponsor_name(scope_a)
today = clock.today()
year = Filters.last_days(365, today)

step = st.radio("Tour step", STEPS, key=STEP_KEY, horizontal=True)
back, forward = st.columns(2)
back.button("← Back", on_click=move, args=(-1,), width="stretch")
forward.button("Next →", on_click=move, args=(1,), width="stretch")
st.progress((STEPS.index(step) + 1) / len(STEPS), f"Step {STEPS.index(step) + 1} of {len(STEPS)}")

if step == "Batch record exception":
    st.header(f"Review by exception: a batch record of {name_a}")
    note("The sponsor reads only what needs a decision, in one sentence each.")
    shown = exception_step(scope_a)
    if shown is None:
        st.info("This sponsor's batch records carry no data-integrity exception.")
    else:
        st.subheader(f"Batch {shown.batch_number} — {shown.product}")
        cols = st.columns(3)
        cols[0].metric("Status", shown.status)
        cols[1].metric("Steps recorded", shown.steps_recorded)
        cols[2].metric("Exceptions", shown.exceptions.height)
        for sentence in shown.exceptions["exception"]:
            st.warning(sentence)
        table(shown.exceptions, "batch_record_exceptions")

elif step == "CAPA aging":
    st.header(f"CAPA aging for {name_a}")
    note("Overdue is judged against the current (extended) due date, and the "
               "original due date is never lost.")  # fmt: skip
    shown = capa_step(scope_a, year, today)
    states = [catalogue.dataset("capa_aging").column(n).label for n in ("overdue", "not_overdue")]
    chart(scope_a, "demo_tour:capa-aging", shown.aging_chart, lambda data: px.bar(
        data, x="bucket", y="capas", color="state", title="Open CAPAs by age (days)",
        category_orders={"bucket": list(kpis.AGE_BUCKETS), "state": states},
        color_discrete_map=dict(zip(states, ("#d62728", "#1f77b4"), strict=True))),
        dataset="capa_aging", labels={"capas": "Open CAPAs", "state": ""})  # fmt: skip
    overdue = catalogue.measure("overdue_capas")
    st.metric(overdue.name, shown.overdue.height, help=overdue.help)
    table(shown.overdue, "capas")

elif step == "Change awaiting approval":
    st.header(f"A change that needs {name_a}'s approval")
    note("Each sponsor sees only its own obligation from its own quality agreement.")
    shown = change_step(scope_a, year, today)
    if shown.change.is_empty():
        st.info("No prior-approval change affects this sponsor in the last year.")
    else:
        row = shown.change.row(0, named=True)
        if shown.awaiting:
            st.warning(f"{row['change_number']} awaits this sponsor's approval.")
        else:
            st.info(f"Nothing awaits approval now; the latest prior-approval change is "
                    f"{row['change_number']}.")  # fmt: skip
        st.subheader(f"{row['change_number']}: {row['title']}")
        cols = st.columns(3)
        cols[0].metric("Obligation", shown.obligation)
        cols[1].metric("Decision", shown.decision)
        cols[2].metric("Planned effective", str(row["planned_effective"]))
        table(shown.change, "change_controls")

elif step == "Audit-ready view":
    st.header(f"Audit-ready: {name_a}'s quality agreement, kept")
    note(f"Every figure comes from data snapshot {info.run_id} "
               f"({info.created_at:%Y-%m-%d %H:%M}), and every table exports with who, when "
               "and which snapshot.")  # fmt: skip
    shown = audit_step(scope_a, year, today, clock.now())
    cols = st.columns(min(shown.shares.height, 6) or 1)
    for col, row in zip(cols, shown.shares.iter_rows(named=True), strict=False):
        col.metric(row["measure"], row["shown"], help=row["tooltip"])
    if shown.breaches.is_empty():
        st.success("Every clock of the agreement was kept in the last year.")
    else:
        table(shown.breaches.drop("sponsor"), "compliance_breaches")
        export_buttons(shown.breaches, "demo-tour-breaches", year, scope_a,
                       dataset="compliance_breaches")  # fmt: skip
    table(shown.clocks, "agreed_clocks")
    table(shown.obligations, "agreed_obligations")

else:
    st.header("Same vessel, same week: what each sponsor sees")
    note("Each side is read through that sponsor's own confined scope; the other "
               "client is only ever 'another client'.")  # fmt: skip
    if sponsor_a == sponsor_b:
        st.warning("Pick two different sponsors in the sidebar.")
        st.stop()
    shown = vessel_step(scope_a, demo_scope(sponsor_b))
    if shown is None:
        st.info("These two sponsors never used the same equipment in the same week.")
        st.stop()
    st.subheader(f"{shown.equipment}, week of {shown.week}")
    for column, (name, uses) in zip(st.columns(2), shown.sides, strict=True):
        with column:
            st.markdown(f"**What {name} sees**")
            table(uses, "vessel_week")
