"""Guided demo tour of the synthetic demo plant: highlights a presenter steps through, then the
same shared vessel in the same week as two sponsors each see it.

Every scope here comes from portal.context.demo_scope: the demo warehouse root only, whatever
else is on disk or in the session, and each sponsor's side from its own confined scope.
"""

import plotly.express as px
import polars as pl
import streamlit as st

from portal.context import DEMO_TOUR_ROLES, current_principal, demo_scope
from portal.widgets import chart, export_buttons
from warehouse import catalogue, clock, kpis, layout
from warehouse.filters import Filters
from warehouse.queries import capa
from warehouse.queries.batch_record import batch_record, exception_table, review_by_exception
from warehouse.queries.capa import capas
from warehouse.queries.change_control import change_impacts
from warehouse.queries.compliance import (
    agreement_terms,
    breaches,
    change_obligations,
    notifiable_events,
    sponsor_compliance,
)
from warehouse.queries.demo_tour import (
    batch_with_exception,
    change_needing_approval,
    shared_vessel_week,
    sponsor_name,
    vessel_week,
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
    st.caption("Say: the sponsor reads only what needs a decision, in one sentence each.")
    batch_id = batch_with_exception(scope_a)
    if batch_id is None:
        st.info("This sponsor's batch records carry no data-integrity exception.")
    else:
        record = batch_record(scope_a, batch_id)
        header = record.header.row(0, named=True)
        st.subheader(f"Batch {header['batch_number']} — {header['product']}")
        cols = st.columns(3)
        cols[0].metric("Status", header["status"])
        cols[1].metric("Steps recorded", record.steps.height)
        found = exception_table(review_by_exception(record))
        cols[2].metric("Exceptions", found.height)
        for sentence in found["exception"]:
            st.warning(sentence)
        st.dataframe(found, hide_index=True)

elif step == "CAPA aging":
    st.header(f"CAPA aging for {name_a}")
    st.caption("Say: overdue is judged against the current (extended) due date, and the "
               "original due date is never lost.")  # fmt: skip
    frame = capas(scope_a, year, today)
    states = [catalogue.dataset("capa_aging").column(n).label for n in ("overdue", "not_overdue")]
    buckets = capa.aging_chart(frame, today)
    chart(scope_a, "demo_tour:capa-aging", buckets, lambda data: px.bar(
        data, x="bucket", y="capas", color="state", title="Open CAPAs by age (days)",
        category_orders={"bucket": list(kpis.AGE_BUCKETS), "state": states},
        color_discrete_map=dict(zip(states, ("#d62728", "#1f77b4"), strict=True))),
        dataset="capa_aging", labels={"capas": "Open CAPAs", "state": ""})  # fmt: skip
    overdue = frame.filter(pl.col("overdue").fill_null(False))
    st.metric("Overdue CAPAs", overdue.height)
    st.dataframe(
        overdue.select("capa_number", "title", "source_record", "status", "original_due",
                       "current_due", "extension_count", "days_overdue"),
        hide_index=True,
    )  # fmt: skip

elif step == "Change awaiting approval":
    st.header(f"A change that needs {name_a}'s approval")
    st.caption("Say: each sponsor sees only its own obligation from its own quality agreement.")
    change = change_needing_approval(change_impacts(scope_a, year, today))
    if change.is_empty():
        st.info("No prior-approval change affects this sponsor in the last year.")
    else:
        row = change.row(0, named=True)
        if row["awaiting_sponsor"]:
            st.warning(f"{row['change_number']} awaits this sponsor's approval.")
        else:
            st.info(f"Nothing awaits approval now; the latest prior-approval change is "
                    f"{row['change_number']}.")  # fmt: skip
        st.subheader(f"{row['change_number']}: {row['title']}")
        cols = st.columns(3)
        cols[0].metric("Obligation", row["obligation"])
        cols[1].metric("Decision", row["decision"] or "PENDING")
        cols[2].metric("Planned effective", str(row["planned_effective"]))
        st.dataframe(change.drop("impact_id"), hide_index=True)

elif step == "Audit-ready view":
    st.header(f"Audit-ready: {name_a}'s quality agreement, kept")
    st.caption(f"Say: every figure comes from data snapshot {info.run_id} "
               f"({info.created_at:%Y-%m-%d %H:%M}), and every table exports with who, when "
               "and which snapshot.")  # fmt: skip
    events = notifiable_events(scope_a, year, today)
    changes = change_obligations(scope_a, year)
    summary = sponsor_compliance(events, changes, year.start, year.end, today)
    cols = st.columns(min(summary.height, 6) or 1)
    for col, row in zip(cols, summary.iter_rows(named=True), strict=False):
        col.metric(row["measure"], row["shown"], help=row["tooltip"])
    found = breaches(events, changes, clock.now())
    if found.is_empty():
        st.success("Every clock of the agreement was kept in the last year.")
    else:
        st.dataframe(found.drop("sponsor_id", "sponsor"), hide_index=True)
        export_buttons(found, "demo-tour-breaches", year, scope_a)
    terms = agreement_terms(scope_a)
    st.dataframe(terms.drop("sponsor_id", "sponsor"), hide_index=True)

else:
    st.header("Same vessel, same week: what each sponsor sees")
    st.caption("Say: each side is read through that sponsor's own confined scope; the other "
               "client is only ever 'another client'.")  # fmt: skip
    if sponsor_a == sponsor_b:
        st.warning("Pick two different sponsors in the sidebar.")
        st.stop()
    scope_b = demo_scope(sponsor_b)
    shared = shared_vessel_week(scope_a, scope_b)
    if shared is None:
        st.info("These two sponsors never used the same equipment in the same week.")
        st.stop()
    st.subheader(f"{shared['equipment']}, week of {shared['week']}")
    for column, scope in zip(st.columns(2), (scope_a, scope_b), strict=True):
        with column:
            st.markdown(f"**What {sponsor_name(scope)} sees**")
            st.dataframe(vessel_week(scope, shared["equipment_id"], shared["week"]),
                         hide_index=True)  # fmt: skip
