"""Quality-agreement compliance: clocks kept per sponsor, and every clock that was broken.

CMO staff see every sponsor (site scope); a sponsor's users, and the BD demo, one sponsor.
"""

from datetime import datetime

import plotly.express as px
import polars as pl
import streamlit as st

from portal.context import current_principal, site_scope, sponsor_scope
from portal.users import CMO_ROLES
from portal.widgets import chart, dashboard_filters, empty_state, export_buttons
from warehouse import clock, kpis
from warehouse.queries.compliance import (
    agreement_terms,
    breaches,
    change_obligations,
    notifiable_events,
    sponsor_compliance,
)

BREACH_COLUMNS = {
    "sponsor_id": None, "sponsor": "Sponsor", "kind": "Breach", "record": "Record",
    "subject": "Agreement term", "clock": "Clock", "broken_by": "What happened",
    "record_key": "Key",
}  # fmt: skip

st.title("Quality-agreement compliance")
site_wide = current_principal().role in CMO_ROLES
scope = site_scope() if site_wide else sponsor_scope()
filters = dashboard_filters(scope, "compliance")
today = clock.today()
events = notifiable_events(scope, filters, today)
changes = change_obligations(scope, filters)
found = breaches(events, changes, datetime.now())

if events.is_empty() and changes.is_empty():
    empty_state("Deviations, confirmed OOS, critical complaints and changes that the quality "
                "agreement sets a clock for appear here.")  # fmt: skip
    st.stop()

timeliness = kpis.notification_timeliness(events, filters.start, filters.end, today)
prior = kpis.prior_approval_compliance(changes, filters.start, filters.end)
cols = st.columns(3)
cols[0].metric("Notified within the agreed time", timeliness.display(), help=timeliness.tooltip())
cols[1].metric("Prior approval before effective", prior.display(), help=prior.tooltip())
cols[2].metric("Breaches", found.height)

if found.is_empty():
    st.success("Every notification and change in view kept its quality agreement.")
else:
    st.error(f"{found.height} breach(es) of the quality agreement: notified late, a change "
             "effective before the notification or approval the agreement requires, or a change "
             "recorded as needing less than the agreement sets for its type.")  # fmt: skip
    st.dataframe(found, hide_index=True, column_config=BREACH_COLUMNS)
    export_buttons(found, "compliance-breaches", filters, scope)

st.subheader("Share kept within the agreement, per sponsor" if site_wide else "Share kept")
# Per-sponsor shares take ~45 ms a run over every sponsor: kept in the scope's memo.
summary = scope.memo(
    ("compliance-summary", filters, today),
    lambda: sponsor_compliance(events, changes, filters.start, filters.end, today),
)
measures = list(dict.fromkeys(summary["measure"]))
st.dataframe(
    summary.pivot("measure", index="sponsor", values="shown").select("sponsor", *measures),
    hide_index=True,
    column_config={"sponsor": "Sponsor"},
)
# Sponsors along the axis and one colour per measure: 50 sponsors stay readable, and the
# figure has a trace per measure rather than per sponsor (Streamlit re-encodes every trace
# on each rerun).
chart(scope, "compliance:share", summary.filter(pl.col("share").is_not_null()),
      lambda data: px.bar(
          data, x="sponsor", y="share", color="measure", barmode="group", range_y=(0, 1),
          hover_data=["kept", "counted"],
          title="Share of events and changes kept within the agreed clock"))  # fmt: skip

with st.expander("Agreed clocks and change obligations"):
    terms = agreement_terms(scope)
    clocks = terms.filter(pl.col("term_type") == "NOTIFICATION")
    st.dataframe(
        clocks.pivot("subject", index="sponsor", values="deadline_hours"),
        hide_index=True, column_config={"sponsor": "Sponsor"},
    )  # fmt: skip
    obligations = terms.filter(pl.col("term_type") == "CHANGE")
    st.dataframe(
        obligations.pivot("subject", index="sponsor", values="obligation"),
        hide_index=True, column_config={"sponsor": "Sponsor"},
    )  # fmt: skip

st.subheader("Notifiable events")
st.dataframe(
    events.drop("sponsor_id", "record_key"),
    hide_index=True,
    column_config={
        "sponsor": "Sponsor", "event": "Event", "subject": "Agreement term", "record": "Record",
        "title": "Title", "product": "Product",
        "occurred_at": st.column_config.DatetimeColumn("Clock started"),
        "clock_from": "Clock from", "deadline_hours": "Deadline (h)",
        "notified_at": st.column_config.DatetimeColumn("Notified"),
        "deadline_at": st.column_config.DatetimeColumn("Due"), "outcome": "Outcome",
    },
)  # fmt: skip
export_buttons(events, "compliance-events", filters, scope)
