"""Guided demo tour of the synthetic demo plant: highlights a presenter steps through, then the
same shared vessel in the same week as two sponsors each see it.

Every scope here comes from portal.context.demo_scope: the demo warehouse root only, whatever
else is on disk or in the session, and each sponsor's side from its own confined scope.
"""

from collections.abc import Callable
from datetime import date, datetime, timedelta

import plotly.express as px
import plotly.graph_objects as go
import polars as pl
import streamlit as st

from portal.context import DEMO_TOUR_ROLES, current_principal, demo_scope
from portal.widgets import chart, export_buttons, table
from warehouse import catalogue, clock, kpis, layout
from warehouse.filters import Filters
from warehouse.queries.common import sponsor_name
from warehouse.queries.demo_tour import (
    AS_RECORDED,
    KEPT,
    MISSED,
    NEEDS_REVIEW,
    OWN_BATCH,
    TIMELINE_COLOURS,
    audit_step,
    capa_step,
    change_step,
    exception_step,
    tour_pair,
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
BEHIND = "The records behind this"  # the one place a step shows a raw table
# Red and orange need attention, blue and grey are neutral, green is good.
RED, BLUE, GREY, GREEN = "#d62728", "#1f77b4", "#9e9e9e", "#2ca02c"
MOST_SENTENCES = 5  # more overdue CAPAs than this are behind the expander
NOTES_KEY = "tour:notes"
PAIR_KEY = "tour:opening-pair"  # the sponsors the tour opens with, chosen once a session


def note(text: str) -> None:
    """A presenter's note: in the sidebar, and only while the presenter has notes on."""
    if st.session_state.get(NOTES_KEY):
        st.sidebar.info(text, icon=":material/record_voice_over:")


def sentences(said: list[str], more: str) -> None:
    """Up to MOST_SENTENCES findings, each in its own box, then how many more there are."""
    for sentence in said[:MOST_SENTENCES]:
        st.warning(sentence)
    if len(said) > MOST_SENTENCES:
        st.caption(f"And {len(said) - MOST_SENTENCES} more {more}, in the records below.")


def steps_chart(title: str) -> Callable[[pl.DataFrame], go.Figure]:
    def build(data: pl.DataFrame) -> go.Figure:
        figure = px.scatter(
            data, x="performed_at", y="step", color="state", text="note", hover_name="step_name",
            hover_data={"note": False, "state": False}, title=title,
            category_orders={"state": [NEEDS_REVIEW, AS_RECORDED]},
            color_discrete_map={NEEDS_REVIEW: RED, AS_RECORDED: GREY},
        )  # fmt: skip
        figure.update_traces(textposition="middle right", textfont_color=RED)
        figure.for_each_trace(lambda t: t.update(marker_size=14 if t.name == NEEDS_REVIEW else 7))
        return figure.update_yaxes(autorange="reversed")

    return build


def kept_chart(data: pl.DataFrame) -> go.Figure:
    figure = px.bar(
        data, x="share", y="measure", color="outcome", orientation="h", text="records",
        hover_data={"records": True, "share": ":.0%"},
        title="Each clock of the quality agreement, kept or missed over the last year",
        category_orders={"outcome": [KEPT, MISSED]},
        color_discrete_map={KEPT: GREEN, MISSED: RED},
    )  # fmt: skip
    figure.update_traces(texttemplate="%{text}", textposition="inside")
    return figure.update_xaxes(tickformat=".0%", range=(0, 1)).update_yaxes(autorange="reversed")


def timeline_chart(title: str, week: date) -> Callable[[pl.DataFrame], go.Figure]:
    """One lane of blocks over the week (a day either side, so both sides line up): own batches
    labelled by number above their block, another client's uses labelled below theirs."""

    def build(data: pl.DataFrame) -> go.Figure:
        figure = px.timeline(
            data, x_start="start", x_end="end", y="lane", color="block", custom_data=["detail"],
            title=title, category_orders={"block": list(TIMELINE_COLOURS)},
            color_discrete_map=TIMELINE_COLOURS,
        )  # fmt: skip
        figure.update_traces(hovertemplate="%{customdata[0]}<extra></extra>", width=0.4)
        for block in data.iter_rows(named=True):
            above = block["block"] == OWN_BATCH
            figure.add_annotation(
                x=block["start"] + (block["end"] - block["start"]) / 2, y=block["lane"],
                text=block["label"], showarrow=False, yshift=34 if above else -34,
                font_color=TIMELINE_COLOURS[block["block"]] if above else "#616161",
            )  # fmt: skip
        # The week and a day either side, widened to this side's own blocks: never to the
        # other side's, whose times are not this sponsor's to see.
        start = datetime.combine(week, datetime.min.time()) - timedelta(days=1)
        start = min(start, data["start"].min() or start) - timedelta(hours=6)
        end = max(start + timedelta(days=9), data["end"].max() or start) + timedelta(hours=6)
        figure.update_xaxes(range=(start, end), title_text="")
        return figure.update_layout(height=280, legend_title_text="", yaxis_title="")

    return build


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

names = {sponsor: sponsor_name(demo_scope(sponsor)) for sponsor in sponsors}
if PAIR_KEY not in st.session_state:
    # Open on two sponsors the finale can show on one vessel; the presenter may pick others.
    st.session_state[PAIR_KEY] = tour_pair({s: demo_scope(s) for s in sponsors})
first, second = (sponsors.index(s) for s in st.session_state[PAIR_KEY])
sponsor_a = st.sidebar.selectbox(
    "Sponsor A", sponsors, index=first, key="tour:a", format_func=names.get
)
sponsor_b = st.sidebar.selectbox(
    "Sponsor B", sponsors, index=second, key="tour:b", format_func=names.get
)
st.sidebar.toggle(
    "Presenter notes", key=NOTES_KEY,
    help="What to say at each step, here in the sidebar; off for the audience.",
)  # fmt: skip
scope_a = demo_scope(sponsor_a)
name_a = names[sponsor_a]
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
        st.stop()
    st.subheader(f"Batch {shown.batch_number}: {shown.product}")
    st.caption(f"Status: {shown.status}.")
    cols = st.columns(3)
    cols[0].metric("Steps recorded", shown.steps_recorded)
    cols[1].metric("Findings to review", shown.exceptions.height)
    cols[2].metric("Steps without a finding",
                   shown.steps.filter(pl.col("state") == AS_RECORDED).height)  # fmt: skip
    sentences(shown.exceptions["exception"].to_list(), "findings")
    chart(scope_a, "demo_tour:steps", shown.steps, steps_chart(shown.title), extra=shown.title,
          labels={"performed_at": "Performed", "step": "Step", "state": ""})  # fmt: skip
    with st.expander(BEHIND):
        table(shown.exceptions, "batch_record_exceptions")

elif step == "CAPA aging":
    st.header(f"CAPA aging for {name_a}")
    note("Overdue is judged against the current (extended) due date, and the "
               "original due date is never lost.")  # fmt: skip
    shown = capa_step(scope_a, year, today)
    overdue = catalogue.measure("overdue_capas")
    cols = st.columns(2)
    cols[0].metric("Open CAPAs", shown.open_count)
    cols[1].metric(overdue.name, shown.overdue.height, help=overdue.help)
    states = [catalogue.dataset("capa_aging").column(n).label for n in ("overdue", "not_overdue")]
    chart(scope_a, "demo_tour:capa-aging", shown.aging_chart, lambda data: px.bar(
        data, x="bucket", y="capas", color="state", title="Open CAPAs by age (days)",
        category_orders={"bucket": list(kpis.AGE_BUCKETS), "state": states},
        color_discrete_map=dict(zip(states, (RED, BLUE), strict=True))),
        dataset="capa_aging", labels={"capas": "Open CAPAs", "state": ""})  # fmt: skip
    if shown.overdue.is_empty():
        st.success("No open CAPA of this sponsor is past its due date.")
    else:
        sentences(shown.sentences, "overdue CAPAs")
        with st.expander(BEHIND):
            table(shown.overdue, "capas")

elif step == "Change awaiting approval":
    st.header(f"A change that needs {name_a}'s approval")
    note("Each sponsor sees only its own obligation from its own quality agreement.")
    shown = change_step(scope_a, year, today)
    if shown is None:
        st.info("No prior-approval change affects this sponsor in the last year.")
        st.stop()
    if shown.awaiting:
        st.warning(f"{shown.change_number} awaits this sponsor's approval.")
    else:
        st.info(f"Nothing awaits approval now; the latest prior-approval change is "
                f"{shown.change_number}.")  # fmt: skip
    with st.container(border=True):
        st.subheader(f"{shown.change_number}: {shown.title}")
        st.markdown(f"**What changes:** {shown.what}.  \n"
                    f"**What this sponsor's quality agreement requires:** "
                    f"{shown.obligation.lower()}.")  # fmt: skip
        cols = st.columns(3)
        cols[0].metric("Decision", shown.decision)
        cols[1].metric("Planned effective", str(shown.planned_effective or "Not planned"))
        if shown.effective is not None:
            cols[2].metric("Went effective", str(shown.effective))
        elif shown.days_left is not None:
            cols[2].metric("Days left", shown.days_left)

elif step == "Audit-ready view":
    st.header(f"Audit-ready: {name_a}'s quality agreement, kept")
    note(f"Every figure comes from data snapshot {info.run_id} "
               f"({info.created_at:%Y-%m-%d %H:%M}), and every table exports with who, when "
               "and which snapshot.")  # fmt: skip
    shown = audit_step(scope_a, year, today, clock.now())
    cols = st.columns(2)
    cols[0].metric("Notifications on time", shown.notifications_on_time)
    cols[1].metric("Breaches", shown.breaches.height)
    chart(scope_a, "demo_tour:kept", shown.kept_chart, kept_chart,
          labels={"share": "Share of records", "measure": "", "outcome": "",
                  "records": "Records"})  # fmt: skip
    if shown.nothing_due:
        st.caption("Nothing fell due in the last year for: "
                   + ", ".join(shown.nothing_due) + ".")  # fmt: skip
    if shown.breaches.is_empty():
        st.success("Every clock of the agreement was kept in the last year.")
    else:
        sentences(shown.sentences, "breaches")
    with st.expander(BEHIND):
        if not shown.breaches.is_empty():
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
    scopes = (scope_a, demo_scope(sponsor_b))
    shown = vessel_step(*scopes)
    if shown is None:
        st.info("These two sponsors never used the same equipment in the same week.")
        st.stop()
    st.subheader(f"{shown.equipment}, week of {shown.week:%d %B %Y}")
    st.caption("Blue: the sponsor's own batches. Grey: another client's use, which this "
               "sponsor sees only as having ended; who it was, what it made and when it began "
               "are not shown.")  # fmt: skip
    for scope, side in zip(scopes, shown.sides, strict=True):
        title = f"What {side.sponsor} sees"
        chart(scope, "demo_tour:vessel", side.timeline, timeline_chart(title, shown.week),
              extra=(title, shown.week), labels={"block": ""})  # fmt: skip
    with st.expander(BEHIND):
        for side in shown.sides:
            st.markdown(f"**{side.sponsor}**")
            table(side.uses, "vessel_week", key=f"vessel:{side.sponsor}")
