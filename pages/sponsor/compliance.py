"""Quality-agreement compliance: clocks kept per sponsor, and every clock that was broken.

CMO staff see every sponsor (site scope); a sponsor's users, and the BD demo, one sponsor.
"""

import plotly.express as px
import polars as pl
import streamlit as st

from portal.context import current_principal, site_scope, sponsor_scope
from portal.users import CMO_ROLES
from portal.widgets import chart, dashboard_filters, empty_state, export_buttons, table
from warehouse import clock, kpis
from warehouse.queries.compliance import (
    agreed_clocks,
    agreed_obligations,
    agreement_terms,
    breaches,
    change_obligations,
    notifiable_events,
    shares_by_sponsor,
    sponsor_compliance,
)

st.title("Quality-agreement compliance")
site_wide = current_principal().role in CMO_ROLES
scope = site_scope() if site_wide else sponsor_scope()
filters = dashboard_filters(scope, "compliance")
today = clock.today()
events = notifiable_events(scope, filters, today)
changes = change_obligations(scope, filters)
found = breaches(events, changes, clock.now())

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
    table(found, "compliance_breaches")
    export_buttons(found, "compliance-breaches", filters, scope, dataset="compliance_breaches")

st.subheader("Share kept within the agreement, per sponsor" if site_wide else "Share kept")
# Per-sponsor shares take ~45 ms a run over every sponsor: kept in the scope's memo.
summary = scope.memo(
    ("compliance-summary", filters, today),
    lambda: sponsor_compliance(events, changes, filters.start, filters.end, today),
)
table(shares_by_sponsor(summary), "compliance_shares")
# Sponsors along the axis and one colour per measure: 50 sponsors stay readable, and the
# figure has a trace per measure rather than per sponsor (Streamlit re-encodes every trace
# on each rerun).
chart(scope, "compliance:share", summary.filter(pl.col("share").is_not_null()),
      lambda data: px.bar(
          data, x="sponsor", y="share", color="measure", barmode="group", range_y=(0, 1),
          hover_data=["kept", "counted"],
          title="Share of events and changes kept within the agreed clock"),
      labels={"sponsor": "Sponsor", "share": "Share kept", "measure": "", "kept": "Kept",
              "counted": "Counted"})  # fmt: skip

with st.expander("Agreed clocks and change obligations"):
    terms = agreement_terms(scope)
    table(agreed_clocks(terms), "agreed_clocks")
    table(agreed_obligations(terms), "agreed_obligations")

st.subheader("Notifiable events")
table(events, "notifiable_events")
export_buttons(events, "compliance-events", filters, scope, dataset="notifiable_events")
