"""Quality-agreement compliance: clocks kept per sponsor, and every clock that was broken.

CMO staff see every sponsor (site scope); a sponsor's users, and the BD demo, one sponsor.
"""

import plotly.express as px
import streamlit as st

from portal.context import current_principal, site_scope, sponsor_scope
from portal.decision_panel import obligations_section
from portal.users import CMO_ROLES
from portal.widgets import chart, dashboard_filters, empty_state, export_buttons, table
from warehouse import clock, kpis
from warehouse.queries import compliance

st.title("Quality-agreement compliance")
site_wide = current_principal().role in CMO_ROLES
scope = site_scope() if site_wide else sponsor_scope()
filters = dashboard_filters(scope, "compliance", default_days=compliance.DEFAULT_DAYS)
model = compliance.page_model(scope, filters, clock.today(), clock.now())

if model.events.is_empty() and model.changes.is_empty():
    empty_state("Deviations, confirmed OOS, critical complaints and changes that the quality "
                "agreement sets a clock for appear here.")  # fmt: skip
    st.stop()

timeliness, prior = model.timeliness, model.prior_approval
cols = st.columns(3)
for col, result in zip(cols, (timeliness, prior), strict=False):
    col.metric(result.definition.name, result.display(), help=result.tooltip())
cols[2].metric("Breaches", model.breaches.height)

if model.breaches.is_empty():
    st.success("Every notification and change in view kept its quality agreement.")
else:
    st.error(f"{model.breaches.height} breach(es) of the quality agreement: notified late, a "
             "change effective before the notification or approval the agreement requires, or a "
             "change recorded as needing less than the agreement sets for its type.")  # fmt: skip
    table(model.breaches, "compliance_breaches")
    export_buttons(
        model.breaches, "compliance-breaches", filters, scope, dataset="compliance_breaches"
    )

st.subheader("Obligations on changes not yet met")
obligations_section(scope, filters, "compliance", site_wide)

st.subheader("Share kept within the agreement, per sponsor" if site_wide else "Share kept")
if site_wide:
    table(model.shares, "compliance_shares")
    # Sponsors along the axis and one colour per measure: 50 sponsors stay readable, and the
    # figure has a trace per measure rather than per sponsor (Streamlit re-encodes every trace
    # on each rerun).
    chart(scope, "compliance:share", model.share_chart,
          lambda data: px.bar(
              data, x="sponsor", y="share", color="measure", barmode="group", range_y=(0, 1),
              hover_data=["kept", "counted"],
              title="Share of events and changes kept within the agreed clock"),
          labels={"sponsor": "Sponsor", "share": "Share kept", "measure": "", "kept": "Kept",
                  "counted": "Counted"})  # fmt: skip
else:  # one sponsor: a number per clock reads better than a one-row table and a bar each
    kept = list(model.share_chart.iter_rows(named=True))
    for first in range(0, len(kept), 3):
        for col, row in zip(st.columns(3), kept[first : first + 3], strict=False):
            said = f"{row['kept']:g} of {row['counted']:g} kept within the agreed clock."
            col.metric(row["measure"], kpis.format_value(row["share"], "rate"), help=said)
    if not kept:
        st.caption("No notification or change in view had a clock to keep.")

with st.expander("Agreed clocks and change obligations"):
    table(model.agreed_clocks, "agreed_clocks")
    table(model.agreed_obligations, "agreed_obligations")

st.subheader("Notifiable events")
table(model.events, "notifiable_events")
export_buttons(model.events, "compliance-events", filters, scope, dataset="notifiable_events")
