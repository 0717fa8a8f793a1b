"""Batch record: one executed batch, section by section, with its review by exception."""

import polars as pl
import streamlit as st

from portal.context import sponsor_scope
from portal.widgets import dashboard_filters, empty_state, export_buttons, table
from warehouse import catalogue
from warehouse.queries.batch_record import (
    batch_choices,
    batch_record,
    exception_table,
    review_by_exception,
)
from warehouse.queries.batches import STATUS_WORDS

RECORD_KEY = "batch_record:batch_id"  # written by pages/batches.py
FLAGGED_SUPPLIER = ("CONDITIONAL", "DISQUALIFIED")

st.title("Batch record")
scope = sponsor_scope()
filters = dashboard_filters(scope, "batch_record")
# Hints from another page or a link are only candidates: the scope's own rows decide.
hints = tuple(h for h in (st.session_state.get(RECORD_KEY), st.query_params.get("batch")) if h)
choices = batch_choices(scope, filters, include=hints)
if choices.height == 0:
    empty_state("Batches of your products whose manufacture started in the period appear here.")
    st.stop()

labels = {
    row["batch_id"]: f"{row['batch_number']} — {row['product']} ({STATUS_WORDS[row['status']]})"
    for row in choices.iter_rows(named=True)
}
default = next((h for h in hints if h in labels), next(iter(labels)))
batch_id = st.selectbox("Batch", list(labels), index=list(labels).index(default),
                        format_func=labels.get)  # fmt: skip
st.session_state[RECORD_KEY] = batch_id
record = batch_record(scope, batch_id)
batch = record.header.row(0, named=True)
batches = catalogue.dataset("batches")
modality = catalogue.dataset("products").column("modality").word(batch["modality"])
cmo_decision = batches.column("cmo_decision").word(batch["cmo_decision"])
sponsor_decision = batches.column("sponsor_decision").word(batch["sponsor_decision"])

st.header(f"Batch {batch['batch_number']}")
st.caption(f"{batch['product']} · {modality} · campaign {batch['campaign'] or '—'} · "
           f"train {batch['equipment_train'] or '—'}")  # fmt: skip
cols = st.columns([2, 1, 1, 1])
cols[0].metric("Status", STATUS_WORDS[batch["status"]])
cols[1].metric("CMO decision", cmo_decision or "pending",
               f"{batch['cmo_decided_at']:%Y-%m-%d}" if batch["cmo_decided_at"] else None,
               delta_color="off")  # fmt: skip
cols[2].metric("Your decision", sponsor_decision or "pending",
               f"{batch['sponsor_decided_at']:%Y-%m-%d}" if batch["sponsor_decided_at"] else None,
               delta_color="off")  # fmt: skip
cols[3].metric(
    "Units produced", "—" if batch["units_produced"] is None else batch["units_produced"]
)
st.caption(
    f"Manufactured {batch['mfg_start'] or '—'} → {batch['mfg_end'] or '—'} · CoA issued "
    f"{batch['coa_issued_at'] or 'not yet'} · units distributed {batch['units_distributed'] or 0}"
)

st.subheader("Review by exception")
exceptions = exception_table(review_by_exception(record))
if exceptions.height:
    for sentence in exceptions["exception"]:
        st.warning(sentence, icon=":material/warning:")
    table(exceptions, "batch_record_exceptions")
else:
    st.success("No data-integrity exception in this batch record.", icon=":material/check:")
export_buttons(exceptions, "batch_record", filters, scope, dataset="batch_record_exceptions")

st.subheader("Materials")
if record.materials.height:
    flagged = pl.col("supplier_status").is_in(FLAGGED_SUPPLIER)
    supplier_status = catalogue.dataset("batch_record_materials").column("supplier_status")
    for lot in record.materials.filter(flagged).iter_rows(named=True):
        st.error(f"Supplier {lot['supplier']} is "
                 f"{supplier_status.word(lot['supplier_status']).lower()} "
                 f"(lot {lot['lot_id']}, {lot['material_name']}).")  # fmt: skip
    table(record.materials, "batch_record_materials", flag=flagged)
else:
    empty_state("Material lots consumed by this batch (genealogy) appear here.")

st.subheader("Execution steps")
if record.steps.height:
    table(record.steps, "batch_record_steps")
else:
    empty_state("The executed steps, in-process controls and sign-offs appear here.")

st.subheader("In-process and QC results")
if record.tests.height:
    table(record.tests, "batch_record_tests")
else:
    empty_state("IPC and release test results, with any OOS investigation, appear here.")

st.subheader("Deviations and CAPAs")
if record.deviations.height:
    table(record.deviations, "batch_record_deviations")
else:
    empty_state("Deviations linked to this batch appear here.")
if record.capas.height:
    table(record.capas, "batch_record_capas")
else:
    empty_state("CAPAs raised from this batch's deviations or OOS investigations appear here.")

st.subheader("Equipment and changeover cleaning")
if record.equipment.height:
    table(record.equipment, "batch_record_equipment")
else:
    empty_state("Equipment used by this batch, with the cleaning before each use, appears here.")
