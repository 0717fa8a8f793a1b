"""Equipment & suppliers: qualification of what ran this sponsor's batches and what it used."""

import plotly.express as px
import polars as pl
import streamlit as st

from portal.context import sponsor_scope
from portal.widgets import chart, dashboard_filters, empty_state, export_buttons
from warehouse.queries.equipment import equipment_status, invalid_uses, supplier_lots, suppliers

st.title("Equipment & suppliers")
scope = sponsor_scope()
filters = dashboard_filters(scope, "equipment")
equipment = equipment_status(scope, filters)
bad_uses = invalid_uses(scope, filters)
lots = supplier_lots(scope, filters)

st.header("Equipment")
if equipment.is_empty():
    empty_state("Equipment that ran this sponsor's batches appears here with its "
                "qualification and calibration status.")  # fmt: skip
else:
    cols = st.columns(3)
    cols[0].metric("Equipment used", equipment.height)
    cols[1].metric("Calibration overdue today", int(equipment["calibration_overdue"].sum()))
    cols[2].metric("Uses out of calibration / qualification", bad_uses.height)
    by_status = equipment.group_by("status").len("equipment").sort("status")
    chart(
        scope,
        "equipment:status",
        by_status,
        lambda data: px.bar(data, x="status", y="equipment", title="Equipment by status"),
    )
    st.dataframe(
        equipment,
        hide_index=True,
        column_config={
            "equipment": "Equipment", "equipment_type": "Type", "train": "Train",
            "status": "Status",
            "last_qualification": st.column_config.DatetimeColumn("Last qualification"),
            "last_calibration": st.column_config.DatetimeColumn("Last calibration"),
            "calibration_due": "Calibration due", "calibration_overdue": "Calibration overdue",
            "uses": "Uses", "uses_not_valid": "Uses not valid",
        },
    )  # fmt: skip
    export_buttons(equipment, "equipment", filters, scope)

if not bad_uses.is_empty():
    st.subheader("Uses where calibration or qualification was not valid")
    st.dataframe(
        bad_uses,
        hide_index=True,
        column_config={
            "equipment": "Equipment", "batch_number": "Batch", "product": "Product",
            "started_at": st.column_config.DatetimeColumn("Started"),
            "calibration_valid_at_use": "Calibration valid",
            "qualification_valid_at_use": "Qualification valid", "usage_id": "Use",
        },
    )  # fmt: skip
    export_buttons(bad_uses, "equipment-invalid-uses", filters, scope)

st.header("Suppliers")
if lots.is_empty():
    empty_state("Suppliers of the material lots this sponsor's batches consumed appear here.")
    st.stop()

per_supplier = suppliers(lots)
flagged = per_supplier.filter(pl.col("supplier_status") != "APPROVED")
if not flagged.is_empty():
    st.warning("Lots from suppliers that are not fully approved: "
               + ", ".join(f"{s} ({st_})" for s, st_ in flagged.select("supplier",
                           "supplier_status").iter_rows()))  # fmt: skip
st.dataframe(
    per_supplier,
    hide_index=True,
    column_config={
        "supplier": "Supplier", "supplier_status": "Qualification",
        "lots_consumed": "Lots consumed", "materials": "Materials",
    },
)  # fmt: skip
st.subheader("Lots consumed")
st.dataframe(
    lots,
    hide_index=True,
    column_config={
        "supplier": "Supplier", "supplier_status": "Qualification", "lot_id": "Lot",
        "material_name": "Material", "received_at": st.column_config.DatetimeColumn("Received"),
        "release_status": "Lot status", "coa_received": "CoA received", "batches": "Batches",
        "batch_numbers": "Batch numbers",
    },
)  # fmt: skip
export_buttons(lots, "supplier-lots", filters, scope)
