"""Shared equipment: which sponsors ran on each train, changeovers between sponsors and their
cleaning, and equipment used while not fit for use (its calibration or qualification overdue
or failed).

The cross-client picture: CMO staff only (site scope); no sponsor ever sees this page.
"""

import plotly.express as px
import streamlit as st

from portal.context import site_scope
from portal.widgets import chart, dashboard_filters, empty_state, export_buttons, table
from warehouse.queries import shared_equipment

st.title("Shared equipment")
scope = site_scope()
filters = dashboard_filters(scope, "shared_equipment", default_days=shared_equipment.DEFAULT_DAYS)
model = shared_equipment.page_model(scope, filters)

if model.sharing.is_empty():
    empty_state("Equipment used by sponsors' batches in the period appears here, with the "
                "changeovers from one sponsor to another.")  # fmt: skip
    st.stop()

cols = st.columns(4)
cols[0].metric("Equipment shared by 2+ sponsors", model.shared)
cols[1].metric("Changeovers between sponsors", model.changeovers.height)
cols[2].metric("Without verified cleaning in between", model.unverified_cleanings)
cols[3].metric("Uses while not fit for use", model.lapsed.height)

st.header("Sponsors per equipment train")
chart(scope, "shared_equipment:occupancy", model.occupancy, lambda data: px.bar(
    data, x="train", y="batches", color="sponsor",
    title="Batches started in the period, per train and sponsor"),
    dataset="lapsed_in_use", labels={"batches": "Batches"})  # fmt: skip
table(model.sharing, "equipment_sharing")

st.header("Changeovers between sponsors")
if model.unverified_cleanings == 0:
    st.success("Every changeover between sponsors had a passed cleaning verified between the "
               "two uses.")  # fmt: skip
else:
    st.error(f"{model.unverified_cleanings} changeover(s) between sponsors without a passed "
             "cleaning verified between the two uses.")  # fmt: skip
table(model.changeovers, "changeovers")
export_buttons(
    model.changeovers, "shared-equipment-changeovers", filters, scope, dataset="changeovers"
)

st.header("Equipment used while not fit for use")
st.caption(
    "Its latest calibration or qualification before the use was overdue or had "
    "failed, or there was none."
)
if model.lapsed.is_empty():
    st.success("No equipment was used while not fit for use in the period.")
else:
    table(model.lapsed, "lapsed_in_use")
    export_buttons(model.lapsed, "shared-equipment-lapsed", filters, scope, dataset="lapsed_in_use")
