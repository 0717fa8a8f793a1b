"""Batch record: one executed batch, section by section, with its review by exception."""

import streamlit as st

from portal.context import sponsor_scope, voice
from portal.widgets import dashboard_filters, empty_state, export_buttons, table
from warehouse.queries import batch_record

RECORD_KEY = "batch_record:batch_id"  # written by pages/batches.py

st.title("Batch record")
scope = sponsor_scope()
our = voice()  # 'your' to the sponsor's QA, 'the sponsor's' to anyone else
filters = dashboard_filters(scope, "batch_record")
# Hints from another page or a link are only candidates: the scope's own rows decide.
hints = tuple(h for h in (st.session_state.get(RECORD_KEY), st.query_params.get("batch")) if h)
picker = batch_record.picker_model(scope, filters, hints)
if picker.default is None:
    empty_state(
        f"Batches of {our.your} products whose manufacture started in the period appear here."
    )
    st.stop()

options = list(picker.labels)
batch_id = st.selectbox("Batch", options, index=options.index(picker.default),
                        format_func=picker.labels.get)  # fmt: skip
st.session_state[RECORD_KEY] = batch_id
# The record depends on the pick above: its own model call, one per chosen batch.
model = batch_record.page_model(scope, batch_id)
batch, record = model.batch, model.record

st.header(f"Batch {batch['batch_number']}")
st.caption(f"{batch['product']} · {model.modality} · campaign {batch['campaign'] or '—'} · "
           f"train {batch['equipment_train'] or '—'}")  # fmt: skip
cols = st.columns([2, 1, 1, 1])
cols[0].metric("Status", model.status)
cols[1].metric("CMO decision", model.cmo_decision or "pending",
               f"{batch['cmo_decided_at']:%Y-%m-%d}" if batch["cmo_decided_at"] else None,
               delta_color="off")  # fmt: skip
cols[2].metric(f"{our.Your} decision", model.sponsor_decision or "pending",
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
if model.exceptions.height:
    for sentence in model.exceptions["exception"]:
        st.warning(sentence, icon=":material/warning:")
    table(model.exceptions, "batch_record_exceptions")
else:
    st.success("No data-integrity exception in this batch record.", icon=":material/check:")
export_buttons(model.exceptions, "batch_record", filters, scope, dataset="batch_record_exceptions")

st.subheader("Materials")
if record.materials.height:
    for alert in model.supplier_alerts:
        st.error(alert)
    table(record.materials, "batch_record_materials", flag=batch_record.FLAGGED_LOT)
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
