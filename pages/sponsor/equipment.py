"""Equipment & suppliers: qualification of what ran this sponsor's batches and what it used."""

import plotly.express as px
import polars as pl
import streamlit as st

from portal.context import sponsor_scope
from portal.widgets import chart, dashboard_filters, empty_state, export_buttons, table
from warehouse import catalogue
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
    overdue = catalogue.measure("calibration_overdue")
    not_valid = catalogue.measure("equipment_uses_not_valid")
    cols = st.columns(3)
    cols[0].metric("Equipment used", equipment.height)
    cols[1].metric(overdue.name, int(equipment["calibration_overdue"].sum()), help=overdue.help)
    cols[2].metric(not_valid.name, bad_uses.height, help=not_valid.help)
    by_status = equipment.group_by("status").len("equipment").sort("status")
    chart(
        scope,
        "equipment:status",
        by_status,
        lambda data: px.bar(data, x="status", y="equipment", title="Equipment by status"),
        dataset="equipment",
        labels={"equipment": "Equipment"},
    )
    table(equipment, "equipment")
    export_buttons(equipment, "equipment", filters, scope, dataset="equipment")

if not bad_uses.is_empty():
    st.subheader("Uses where calibration or qualification was not valid")
    table(bad_uses, "equipment_invalid_uses")
    export_buttons(
        bad_uses, "equipment-invalid-uses", filters, scope, dataset="equipment_invalid_uses"
    )

st.header("Suppliers")
if lots.is_empty():
    empty_state("Suppliers of the material lots this sponsor's batches consumed appear here.")
    st.stop()

per_supplier = suppliers(lots)
flagged = per_supplier.filter(pl.col("supplier_status") != "APPROVED")
if not flagged.is_empty():
    qualification = catalogue.dataset("suppliers").column("supplier_status")
    st.warning("Lots from suppliers that are not fully approved: "
               + ", ".join(f"{name} ({qualification.word(code)})" for name, code in
                           flagged.select("supplier", "supplier_status").iter_rows()))  # fmt: skip
table(per_supplier, "suppliers")
st.subheader("Lots consumed")
table(lots, "material_lots")
export_buttons(lots, "supplier-lots", filters, scope, dataset="material_lots")
