"""Shared equipment: which sponsors ran on each train, changeovers between sponsors and their
cleaning, and equipment used while not fit for use (its calibration or qualification overdue
or failed).

The cross-client picture: CMO staff only (site scope); no sponsor ever sees this page.
"""

import plotly.express as px
import polars as pl
import streamlit as st

from portal.context import site_scope
from portal.widgets import chart, dashboard_filters, empty_state, export_buttons, table
from warehouse.queries.shared_equipment import (
    changeovers,
    equipment_sharing,
    lapsed_in_use,
    train_occupancy,
)

st.title("Shared equipment")
scope = site_scope()
filters = dashboard_filters(scope, "shared_equipment", default_days=90)
occupancy = train_occupancy(scope, filters)
sharing = equipment_sharing(scope, filters)
switches = changeovers(scope, filters)
lapsed = lapsed_in_use(scope, filters)

if sharing.is_empty():
    empty_state("Equipment used by sponsors' batches in the period appears here, with the "
                "changeovers from one sponsor to another.")  # fmt: skip
    st.stop()

not_verified = switches.filter(~pl.col("cleaning_ok"))
cols = st.columns(4)
cols[0].metric("Equipment shared by 2+ sponsors", sharing.filter(pl.col("sponsors") > 1).height)
cols[1].metric("Changeovers between sponsors", switches.height)
cols[2].metric("Without verified cleaning in between", not_verified.height)
cols[3].metric("Uses while not fit for use", lapsed.height)

st.header("Sponsors per equipment train")
chart(scope, "shared_equipment:occupancy", occupancy, lambda data: px.bar(
    data, x="train", y="batches", color="sponsor",
    title="Batches started in the period, per train and sponsor"),
    dataset="lapsed_in_use", labels={"batches": "Batches"})  # fmt: skip
table(sharing, "equipment_sharing")

st.header("Changeovers between sponsors")
if not_verified.is_empty():
    st.success("Every changeover between sponsors had a passed cleaning verified between the "
               "two uses.")  # fmt: skip
else:
    st.error(f"{not_verified.height} changeover(s) between sponsors without a passed cleaning "
             "verified between the two uses.")  # fmt: skip
table(switches, "changeovers")
export_buttons(switches, "shared-equipment-changeovers", filters, scope, dataset="changeovers")

st.header("Equipment used while not fit for use")
st.caption(
    "Its latest calibration or qualification before the use was overdue or had "
    "failed, or there was none."
)
if lapsed.is_empty():
    st.success("No equipment was used while not fit for use in the period.")
else:
    table(lapsed, "lapsed_in_use")
    export_buttons(lapsed, "shared-equipment-lapsed", filters, scope, dataset="lapsed_in_use")
