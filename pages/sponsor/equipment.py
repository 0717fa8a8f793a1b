"""Equipment & suppliers: qualification of what ran this sponsor's batches and what it used."""

import plotly.express as px
import streamlit as st

from portal.context import sponsor_scope
from portal.widgets import chart, dashboard_filters, empty_state, export_buttons, table
from warehouse import catalogue, clock
from warehouse.queries import equipment

st.title("Equipment & suppliers")
scope = sponsor_scope()
filters = dashboard_filters(scope, "equipment")
model = equipment.page_model(scope, filters, clock.today())

st.header("Equipment")
if model.equipment.is_empty():
    empty_state("Equipment that ran this sponsor's batches appears here with its "
                "qualification and calibration status.")  # fmt: skip
else:
    overdue = catalogue.measure("calibration_overdue")
    not_valid = catalogue.measure("equipment_uses_not_valid")
    cols = st.columns(3)
    cols[0].metric("Equipment used", model.equipment.height)
    cols[1].metric(overdue.name, model.calibration_overdue, help=overdue.help)
    cols[2].metric(not_valid.name, model.invalid_uses.height, help=not_valid.help)
    chart(
        scope,
        "equipment:status",
        model.status_chart,
        lambda data: px.bar(data, x="status", y="equipment", title="Equipment by status"),
        dataset="equipment",
        labels={"equipment": "Equipment"},
    )
    table(model.equipment, "equipment")
    export_buttons(model.equipment, "equipment", filters, scope, dataset="equipment")

if not model.invalid_uses.is_empty():
    st.subheader("Uses where calibration or qualification was not valid")
    table(model.invalid_uses, "equipment_invalid_uses")
    export_buttons(
        model.invalid_uses,
        "equipment-invalid-uses",
        filters,
        scope,
        dataset="equipment_invalid_uses",
    )

st.header("Suppliers")
if model.lots.is_empty():
    empty_state("Suppliers of the material lots this sponsor's batches consumed appear here.")
    st.stop()

if model.unapproved_suppliers:
    qualification = catalogue.dataset("suppliers").column("supplier_status")
    st.warning("Lots from suppliers that are not fully approved: "
               + ", ".join(f"{name} ({qualification.word(code)})"
                           for name, code in model.unapproved_suppliers))  # fmt: skip
table(model.suppliers, "suppliers")
st.subheader("Lots consumed")
table(model.lots, "material_lots")
export_buttons(model.lots, "supplier-lots", filters, scope, dataset="material_lots")
