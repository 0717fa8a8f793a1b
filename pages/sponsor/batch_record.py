"""Batch record: one executed batch, section by section, with its review by exception."""

import streamlit as st

from portal.context import sponsor_scope
from portal.widgets import dashboard_filters, empty_state, export_buttons
from warehouse.queries.batch_record import (
    batch_choices,
    batch_record,
    exception_table,
    review_by_exception,
)
from warehouse.queries.batches import STATUS_WORDS

RECORD_KEY = "batch_record:batch_id"  # written by pages/batches.py
FLAGGED_SUPPLIER = ("CONDITIONAL", "DISQUALIFIED")
DAY = "YYYY-MM-DD"
MINUTE = "YYYY-MM-DD HH:mm"

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

st.header(f"Batch {batch['batch_number']}")
st.caption(f"{batch['product']} · {batch['modality']} · campaign {batch['campaign'] or '—'} · "
           f"train {batch['equipment_train'] or '—'}")  # fmt: skip
cols = st.columns([2, 1, 1, 1])
cols[0].metric("Status", STATUS_WORDS[batch["status"]])
cols[1].metric("CMO decision", batch["cmo_decision"] or "pending",
               f"{batch['cmo_decided_at']:%Y-%m-%d}" if batch["cmo_decided_at"] else None,
               delta_color="off")  # fmt: skip
cols[2].metric("Your decision", batch["sponsor_decision"] or "pending",
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
    st.dataframe(exceptions, hide_index=True, column_config={
        "exception": st.column_config.TextColumn("Exception", width="large"),
        "kind": "Kind", "record": "Record",
    })  # fmt: skip
else:
    st.success("No data-integrity exception in this batch record.", icon=":material/check:")
export_buttons(exceptions, "batch_record", filters, scope)

st.subheader("Materials")
if record.materials.height:
    flagged = record.materials.filter(
        record.materials["supplier_status"].is_in(FLAGGED_SUPPLIER)
    )  # fmt: skip
    for lot in flagged.iter_rows(named=True):
        st.error(f"Supplier {lot['supplier']} is {lot['supplier_status']} "
                 f"(lot {lot['lot_id']}, {lot['material_name']}).")  # fmt: skip
    styled = record.materials.to_pandas().style.apply(
        lambda row: ["background-color: #fde2e1" if row["supplier_status"] in FLAGGED_SUPPLIER
                     else "" for _ in row], axis=1,
    )  # fmt: skip
    st.dataframe(styled, hide_index=True, column_config={
        "material_name": "Material", "lot_id": "Lot", "unit": "Unit",
        "quantity": st.column_config.NumberColumn("Qty", format="localized"),
        "release_status": "Lot status", "coa_received": "CoA received",
        "received_at": st.column_config.DatetimeColumn("Received", format=DAY),
        "supplier": "Supplier", "supplier_status": "Supplier status",
    })  # fmt: skip
else:
    empty_state("Material lots consumed by this batch (genealogy) appear here.")

st.subheader("Execution steps")
if record.steps.height:
    st.dataframe(record.steps, hide_index=True, column_order=(
        "seq", "step_name", "event_type", "performed_by", "performer", "performed_at",
        "recorded_at", "verified_by", "verifier", "verified_at", "minutes_late",
        "late_entry_reason", "flags", "event_id",
    ), column_config={
        "seq": "Seq", "step_name": "Step", "event_type": "Type",
        "performed_by": "Performed by", "performer": "Performer",
        "performed_at": st.column_config.DatetimeColumn("Performed", format=MINUTE),
        "recorded_at": st.column_config.DatetimeColumn("Recorded", format=MINUTE),
        "verified_by": "Verified by", "verifier": "Verifier",
        "verified_at": st.column_config.DatetimeColumn("Verified", format=MINUTE),
        "minutes_late": st.column_config.NumberColumn("Minutes late", format="%d"),
        "late_entry_reason": "Late-entry reason", "flags": "Flags", "event_id": "Event",
    })  # fmt: skip
else:
    empty_state("The executed steps, in-process controls and sign-offs appear here.")

st.subheader("In-process and QC results")
if record.tests.height:
    st.dataframe(record.tests, hide_index=True, column_config={
        "test_id": "Test", "test_type": "Type", "test_name": "Test name",
        "result_value": "Result", "spec_low": "Spec low", "spec_high": "Spec high",
        "unit": "Unit", "tested_at": st.column_config.DatetimeColumn("Tested", format=MINUTE),
        "is_oos": "OOS", "oos_id": "OOS investigation", "phase": "Phase",
        "outcome": "Outcome",
        "opened_at": st.column_config.DatetimeColumn("Opened", format=DAY),
        "closed_at": st.column_config.DatetimeColumn("Closed", format=DAY),
        "summary": st.column_config.TextColumn("Investigation summary", width="large"),
    })  # fmt: skip
else:
    empty_state("IPC and release test results, with any OOS investigation, appear here.")

st.subheader("Deviations and CAPAs")
if record.deviations.height:
    st.dataframe(record.deviations.drop("deviation_id"), hide_index=True, column_config={
        "deviation_number": "Deviation", "title": "Title", "classification": "Class",
        "status": "Status",
        "awareness_at": st.column_config.DatetimeColumn("Aware", format=DAY),
        "closed_at": st.column_config.DatetimeColumn("Closed", format=DAY),
    })  # fmt: skip
else:
    empty_state("Deviations linked to this batch appear here.")
if record.capas.height:
    st.dataframe(record.capas, hide_index=True, column_config={
        "capa_number": "CAPA", "title": "Title", "source_type": "Source", "status": "Status",
        "opened_at": st.column_config.DatetimeColumn("Opened", format=DAY),
        "current_due": st.column_config.DateColumn("Due"),
        "closed_at": st.column_config.DatetimeColumn("Closed", format=DAY),
        "effectiveness_result": "Effectiveness",
    })  # fmt: skip
else:
    empty_state("CAPAs raised from this batch's deviations or OOS investigations appear here.")

st.subheader("Equipment and changeover cleaning")
if record.equipment.height:
    st.dataframe(record.equipment, hide_index=True, column_config={
        "usage_id": "Usage", "equipment_id": "Equipment ID", "equipment": "Equipment",
        "equipment_type": "Type", "status": "Status now",
        "started_at": st.column_config.DatetimeColumn("Used from", format=MINUTE),
        "ended_at": st.column_config.DatetimeColumn("Used to", format=MINUTE),
        "calibration_valid_at_use": "Calibration valid at use",
        "qualification_valid_at_use": "Qualification valid at use",
        "latest_calibration_at": st.column_config.DatetimeColumn("Last calibration before use",
                                                                 format=MINUTE),
        "latest_calibration_result": "Calibration result",
        "latest_calibration_due": st.column_config.DateColumn("Calibration due"),
        "latest_qualification_at": st.column_config.DatetimeColumn(
            "Last qualification before use", format=MINUTE),
        "latest_qualification_result": "Qualification result",
        "latest_qualification_due": st.column_config.DateColumn("Qualification due"),
        "cleaning_verified_at": st.column_config.DatetimeColumn("Cleaning verified",
                                                                format=MINUTE),
        "cleaning_result": "Cleaning result",
        "previous_ended_at": st.column_config.DatetimeColumn("Previous use ended",
                                                             format=MINUTE),
        "previous_occupant": "Previous occupant",
    })  # fmt: skip
else:
    empty_state("Equipment used by this batch, with the cleaning before each use, appears here.")
