"""One executed batch record, section by section in lifecycle order, and its review by
exception (ISPE; DOMAIN.md, Batch lifecycle): every data-integrity exception in one sentence.

Every query takes the batch id as a bound parameter and runs in the sponsor's confined scope,
so an id of another sponsor's batch simply matches no row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from warehouse import catalogue
from warehouse.filters import Filters
from warehouse.queries.batches import STATUS_WORDS
from warehouse.queries.equipment import unfit_reason
from warehouse.scope import Scope

# Supplier qualification statuses that make a consumed lot an exception of the record.
FLAGGED_SUPPLIER = ("CONDITIONAL", "DISQUALIFIED")
# A material lot from such a supplier (the materials table tints these rows).
FLAGGED_LOT = pl.col("supplier_status").is_in(FLAGGED_SUPPLIER)

BATCH_CHOICES_SQL = """
SELECT b.batch_id AS _batch, b.batch_id, b.batch_number, p.name AS product, b.status
FROM batch AS b
JOIN product AS p USING (product_id)
WHERE ((b.mfg_start IS NULL OR b.mfg_start::DATE BETWEEN $start AND $end)
       AND (len($products::VARCHAR[]) = 0 OR list_contains($products::VARCHAR[], b.product_id)))
   OR list_contains($include::VARCHAR[], b.batch_id)
ORDER BY b.mfg_start DESC NULLS FIRST, b.batch_number
"""


def batch_choices(scope: Scope, filters: Filters, include: tuple[str, ...] = ()) -> pl.DataFrame:
    """Batches to pick from: those matching the filters, plus any of `include` in this scope.

    `include` carries untrusted hints (a link, another page's choice); the scope decides.
    """
    params = {**filters.params(), "include": list(include)}
    return scope.frame("batch choices", BATCH_CHOICES_SQL, params)


HEADER_SQL = """
SELECT b.batch_id AS _batch, b.batch_id, b.batch_number, p.name AS product, p.modality, b.campaign,
       b.equipment_train, b.status, b.mfg_start, b.mfg_end,
       b.cmo_decision, b.cmo_decided_at, b.sponsor_decision, b.sponsor_decided_at,
       b.coa_issued_at, b.units_produced, b.units_distributed, b.reworked,
       b.cycle_time_days, b.awaiting_sponsor_release, b.disposed_with_open_deviation,
       b.qa_review_missing
FROM batch AS b
JOIN product AS p USING (product_id)
WHERE list_contains($batch_ids::VARCHAR[], b.batch_id)
"""

MATERIALS_SQL = """
SELECT c.batch_id AS _batch, m.material_name, m.lot_id, c.quantity, c.unit, m.release_status,
       m.coa_received,
       m.received_at, s.name AS supplier, s.status AS supplier_status
FROM material_consumption AS c
JOIN material_lot AS m USING (lot_id)
LEFT JOIN supplier AS s USING (supplier_id)
WHERE list_contains($batch_ids::VARCHAR[], c.batch_id)
ORDER BY m.material_name, m.lot_id
"""

STEPS_SQL = """
SELECT e.batch_id AS _batch, e.event_id, e.seq, e.step_name, e.event_type,
       e.performed_by, pf.name AS performer, e.performed_at, e.recorded_at,
       e.verified_by, vf.name AS verifier, e.verified_at,
       round(e.minutes_late) AS minutes_late, e.late_entry_reason,
       concat_ws(', ',
           CASE WHEN e.late_entry THEN 'late entry' END,
           CASE WHEN e.sign_off_gap THEN 'missing verifier' END,
           CASE WHEN e.self_verification THEN 'self-verification' END,
           CASE WHEN e.out_of_order THEN 'verified before performed' END,
           CASE WHEN e.training_gap THEN 'training gap' END,
           CASE WHEN e.out_of_sequence THEN 'performed before an earlier step' END,
           CASE WHEN e.outside_batch_window THEN 'performed outside the batch' END) AS flags,
       e.late_entry, e.sign_off_gap, e.self_verification, e.out_of_order, e.training_gap,
       e.out_of_sequence, e.outside_batch_window
FROM batch_event AS e
LEFT JOIN operator AS pf ON pf.operator_id = e.performed_by
LEFT JOIN operator AS vf ON vf.operator_id = e.verified_by
WHERE list_contains($batch_ids::VARCHAR[], e.batch_id)
ORDER BY e.seq, e.performed_at, e.event_id
"""

TESTS_SQL = """
SELECT t.batch_id AS _batch, t.test_id, t.test_type, t.test_name, t.result_value, t.spec_low,
       t.spec_high, t.unit,
       t.tested_at, t.is_oos, o.oos_id, o.phase, o.outcome, o.opened_at, o.closed_at,
       o.summary
FROM test_result AS t
LEFT JOIN oos_investigation AS o USING (test_id)
WHERE list_contains($batch_ids::VARCHAR[], t.batch_id)
ORDER BY CASE t.test_type WHEN 'IPC' THEN 0 ELSE 1 END, t.tested_at, t.test_id
"""

DEVIATIONS_SQL = """
SELECT DISTINCT l.batch_id AS _batch, d.deviation_id, d.deviation_number, d.title,
       d.classification, d.status,
       d.awareness_at, d.closed_at
FROM deviation_link AS l
JOIN deviation AS d USING (deviation_id)
WHERE list_contains($batch_ids::VARCHAR[], l.batch_id)
ORDER BY d.awareness_at, d.deviation_number
"""

CAPAS_SQL = """
WITH sources AS (
    SELECT DISTINCT batch_id, deviation_id, NULL AS oos_id FROM deviation_link
    WHERE list_contains($batch_ids::VARCHAR[], batch_id)
    UNION ALL
    SELECT batch_id, NULL, oos_id FROM oos_investigation
    WHERE list_contains($batch_ids::VARCHAR[], batch_id)
)
SELECT DISTINCT s.batch_id AS _batch, c.capa_number, c.title, c.source_type, c.status,
       c.opened_at, c.current_due, c.closed_at, c.effectiveness_result
FROM capa AS c
JOIN sources AS s ON c.deviation_id = s.deviation_id OR c.oos_id = s.oos_id
ORDER BY c.opened_at, c.capa_number
"""

# The previous occupant is already redacted by the ETL; only a batch of this same sponsor is
# ever named, and it is looked up in this scope's own batch table.
EQUIPMENT_SQL = """
SELECT u.batch_id AS _batch, u.usage_id, q.equipment_id, q.name AS equipment, q.equipment_type,
       q.status,
       u.started_at, u.ended_at, u.calibration_valid_at_use, u.qualification_valid_at_use,
       u.latest_calibration_at, u.latest_calibration_result, u.latest_calibration_due,
       u.latest_qualification_at, u.latest_qualification_result, u.latest_qualification_due,
       u.cleaning_verified_at, u.cleaning_result, u.previous_ended_at,
       CASE u.previous_occupant
           WHEN 'ANOTHER_CLIENT' THEN 'another client'
           WHEN 'SAME_SPONSOR' THEN 'this sponsor (batch ' || coalesce(pb.batch_number, '?') || ')'
       END AS previous_occupant
FROM equipment_usage AS u
JOIN equipment AS q USING (equipment_id)
LEFT JOIN batch AS pb ON pb.batch_id = u.previous_batch_id
WHERE list_contains($batch_ids::VARCHAR[], u.batch_id)
ORDER BY u.started_at, u.usage_id
"""


@dataclass(frozen=True)
class BatchRecord:
    """The sections of one executed batch record (each a frame; header has one row)."""

    header: pl.DataFrame
    materials: pl.DataFrame
    steps: pl.DataFrame
    tests: pl.DataFrame
    deviations: pl.DataFrame
    capas: pl.DataFrame
    equipment: pl.DataFrame


SECTIONS = {
    "header": ("batch record header", HEADER_SQL),
    "materials": ("batch record materials", MATERIALS_SQL),
    "steps": ("batch record steps", STEPS_SQL),
    "tests": ("batch record tests", TESTS_SQL),
    "deviations": ("batch record deviations", DEVIATIONS_SQL),
    "capas": ("batch record CAPAs", CAPAS_SQL),
    "equipment": ("batch record equipment", EQUIPMENT_SQL),
}


_Sections = dict[str, tuple[dict[str, pl.DataFrame], pl.DataFrame]]


def _sections(scope: Scope, batch_ids: list[str]) -> _Sections:
    """Per section: each batch's rows, and the empty frame for a batch without any."""
    params = {"batch_ids": list(batch_ids)}
    sections = {}
    for section, (name, sql) in SECTIONS.items():
        frame = scope.frame(name, sql, params)
        parts = frame.partition_by("_batch", as_dict=True, include_key=False, maintain_order=True)
        sections[section] = (
            {key[0]: part for key, part in parts.items()},
            frame.clear().drop("_batch"),
        )
    return sections


def _record(sections: _Sections, batch_id: str) -> BatchRecord:
    return BatchRecord(
        **{name: rows.get(batch_id, empty) for name, (rows, empty) in sections.items()}
    )


def batch_records(scope: Scope, batch_ids: list[str]) -> dict[str, BatchRecord]:
    """The records of `batch_ids` in one query per section; ids outside the scope are absent."""
    sections = _sections(scope, batch_ids)
    found = sections["header"][0]
    return {batch_id: _record(sections, batch_id) for batch_id in batch_ids if batch_id in found}


def batch_record(scope: Scope, batch_id: str) -> BatchRecord:
    """Every section of the batch record of `batch_id` (empty frames outside this scope)."""
    return _record(_sections(scope, [batch_id]), batch_id)


@dataclass(frozen=True)
class RecordException:
    """One review-by-exception finding: its kind, the record it points at, one sentence."""

    kind: str
    ref: str
    sentence: str


OOS_OUTCOME_WORDS = {
    "CONFIRMED": "confirmed",
    "INVALIDATED_LAB_ERROR": "invalidated for a laboratory error",
    "INCONCLUSIVE": "inconclusive",
}


def duration_text(minutes: float) -> str:
    """'3 h 40 min', '45 min', '2 d 1 h' — how a reviewer reads a delay."""
    total = round(minutes)
    days, rest = divmod(total, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment is not None else "an unknown time"


def _step(event: dict) -> str:
    return f"Step {event['seq']} '{event['step_name']}'"


def _operator(person_id: str | None, name: str | None) -> str:
    return f"{name} ({person_id})" if name else str(person_id)


def step_exceptions(event: dict, batch: dict | None = None) -> list[RecordException]:
    """The sentences for one batch_event row carrying the ETL's data-integrity flags (`batch`,
    the record's header row, says whether an entry outside the batch came before or after)."""
    found = []
    ref, step = event["event_id"], _step(event)
    if event.get("late_entry"):
        reason = event.get("late_entry_reason")
        why = f"reason given: {reason}" if reason else "no reason given"
        found.append(RecordException("LATE_ENTRY", ref, (
            f"{step} was recorded {duration_text(event['minutes_late'])} after it was "
            f"performed ({why})."
        )))  # fmt: skip
    if event.get("sign_off_gap"):
        found.append(RecordException("MISSING_VERIFIER", ref, (
            f"{step} ({event['event_type']}) has no second-person verification."
        )))  # fmt: skip
    if event.get("self_verification"):
        who = _operator(event["performed_by"], event.get("performer"))
        found.append(RecordException("SELF_VERIFICATION", ref, (
            f"{step} was verified by the person who performed it ({who})."
        )))  # fmt: skip
    if event.get("out_of_order"):
        found.append(RecordException("OUT_OF_ORDER", ref, (
            f"{step} was verified at {_when(event['verified_at'])}, before it was performed "
            f"at {_when(event['performed_at'])}."
        )))  # fmt: skip
    if event.get("training_gap"):
        who = _operator(event["performed_by"], event.get("performer"))
        found.append(RecordException("TRAINING_GAP", ref, (
            f"{step} was performed by {who}, whose training on this product's SOPs was "
            f"not current on {_when(event['performed_at'])[:10]}."
        )))  # fmt: skip
    if event.get("out_of_sequence"):
        found.append(RecordException("OUT_OF_SEQUENCE", ref, (
            f"{step} was performed at {_when(event['performed_at'])}, before a step that comes "
            f"earlier in the sequence was performed."
        )))  # fmt: skip
    if event.get("outside_batch_window"):
        found.append(RecordException("OUTSIDE_BATCH_WINDOW", ref, (
            f"{step} was performed at {_when(event['performed_at'])}, "
            f"{_outside(event['performed_at'], batch or {})}."
        )))  # fmt: skip
    return found


def _outside(performed: datetime, batch: dict) -> str:
    started, decided = batch.get("mfg_start"), batch.get("cmo_decided_at")
    if started is not None and performed < started:
        return f"before the batch started at {_when(started)}"
    if decided is not None and performed > decided:
        return f"after the batch was dispositioned at {_when(decided)}"
    return "before the batch started or after its disposition"


def review_by_exception(record: BatchRecord) -> list[RecordException]:
    """Every data-integrity exception of the batch record, in lifecycle order."""
    if record.header.height == 0:
        return []
    batch = record.header.row(0, named=True)
    found: list[RecordException] = []
    for lot in record.materials.iter_rows(named=True):
        if lot["supplier_status"] in FLAGGED_SUPPLIER:
            kind = f"SUPPLIER_{lot['supplier_status']}"
            found.append(RecordException(kind, lot["lot_id"], (
                f"Material '{lot['material_name']}' lot {lot['lot_id']} came from supplier "
                f"{lot['supplier']}, whose qualification status is "
                f"{lot['supplier_status'].lower()}."
            )))  # fmt: skip
    for usage in record.equipment.iter_rows(named=True):
        for what in ("calibration", "qualification"):
            if usage[f"{what}_valid_at_use"] is False:
                found.append(_unfit_use(usage, what))
    for event in record.steps.iter_rows(named=True):
        found += step_exceptions(event, batch)
    for test in record.tests.iter_rows(named=True):
        if test["is_oos"]:
            found.append(_oos_exception(test))
    found += _disposition_exceptions(batch, record)
    return found


def _unfit_use(usage: dict, what: str) -> RecordException:
    """Equipment used while its calibration or qualification was not valid (DOMAIN.md):
    overdue or never done, or the latest one before the use failed."""
    failed = usage.get(f"latest_{what}_result") not in (None, "PASS")
    kind = {
        ("calibration", True): "CALIBRATION_FAILED_IN_USE",
        ("calibration", False): "CALIBRATION_OVERDUE_IN_USE",
        ("qualification", True): "QUALIFICATION_FAILED_IN_USE",
        ("qualification", False): "QUALIFICATION_INVALID_IN_USE",
    }[(what, failed)]
    why = unfit_reason(usage, what)
    return RecordException(kind, usage["usage_id"], (
        f"{usage['equipment']} ({usage['equipment_id']}) was used from "
        f"{_when(usage['started_at'])} while its {what} was not valid"
        f"{f' ({why})' if why else ''}."
    ))  # fmt: skip


def exception_table(found: list[RecordException]) -> pl.DataFrame:
    """The review-by-exception findings as a table (what the panel shows and exports)."""
    return pl.DataFrame(
        {
            "exception": [f.sentence for f in found],
            "kind": [f.kind for f in found],
            "record": [f.ref for f in found],
        },
        schema={"exception": pl.String, "kind": pl.String, "record": pl.String},
    )


def _oos_exception(test: dict) -> RecordException:
    spec = f"{_num(test['spec_low'])}–{_num(test['spec_high'])} {test['unit'] or ''}".strip()
    result = f"{_num(test['result_value'])} {test['unit'] or ''}".strip()
    head = (
        f"{test['test_type']} test '{test['test_name']}' was out of specification "
        f"({result}; spec {spec})"
    )
    if test["oos_id"] is None:
        return RecordException("OOS_OPEN", test["test_id"], f"{head}; no investigation recorded.")
    outcome = OOS_OUTCOME_WORDS.get(test["outcome"], "still open")
    kind = {"CONFIRMED": "OOS_CONFIRMED", "INVALIDATED_LAB_ERROR": "OOS_INVALIDATED"}.get(
        test["outcome"], "OOS_OPEN"
    )
    summary = f" Summary: {test['summary']}" if test["summary"] else ""
    return RecordException(kind, test["oos_id"], (
        f"{head}; investigation {test['oos_id']} (phase {test['phase']}): {outcome}.{summary}"
    ))  # fmt: skip


def _disposition_exceptions(batch: dict, record: BatchRecord) -> list[RecordException]:
    decided = batch["cmo_decided_at"]
    if decided is None:
        return []
    found = []
    on = _when(decided)[:10]
    for dev in record.deviations.iter_rows(named=True):
        open_then = dev["awareness_at"] <= decided and (
            dev["closed_at"] is None or dev["closed_at"] > decided
        )
        if open_then and dev["status"] != "CANCELLED":
            found.append(RecordException("DISPOSITION_WITH_OPEN_DEVIATION", dev["deviation_id"], (
                f"Batch was dispositioned on {on} while deviation {dev['deviation_number']} "
                f"was still open."
            )))  # fmt: skip
    for test in record.tests.iter_rows(named=True):
        opened, closed = test["opened_at"], test["closed_at"]
        if opened is not None and opened <= decided and (closed is None or closed > decided):
            found.append(RecordException("DISPOSITION_WITH_OPEN_OOS", test["oos_id"], (
                f"Batch was dispositioned on {on} while OOS investigation {test['oos_id']} "
                f"was still open."
            )))  # fmt: skip
    if batch["qa_review_missing"]:
        found.append(RecordException("QA_REVIEW_MISSING", batch["batch_id"], (
            f"Batch was dispositioned on {on} without a QA review of the batch record before it."
        )))  # fmt: skip
    return found


def _num(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


@dataclass(frozen=True)
class BatchPicker:
    """The batch record page's picker: the batches to choose from and the one shown first."""

    labels: dict[str, str]  # batch_id -> "number — product (status in words)", newest first
    default: str | None  # the first hint in this scope, else the newest begun batch; None: none


def picker_model(scope: Scope, filters: Filters, hints: tuple[str, ...]) -> BatchPicker:
    """The picker's options: batches matching the filters plus any hinted batch of this scope,
    the first such hint chosen (hints are untrusted: the scope's own rows decide)."""
    choices = batch_choices(scope, filters, include=hints)
    labels = {
        row["batch_id"]: f"{row['batch_number']} — {row['product']} ({STATUS_WORDS[row['status']]})"
        for row in choices.iter_rows(named=True)
    }
    # A planned batch has no record yet: the newest batch whose manufacture began comes first.
    begun = (row["batch_id"] for row in choices.iter_rows(named=True) if row["status"] != "PLANNED")
    default = next((h for h in hints if h in labels), next(begun, next(iter(labels), None)))
    return BatchPicker(labels=labels, default=default)


@dataclass(frozen=True)
class BatchRecordPage:
    """Everything the batch record page shows of one batch, from one call."""

    record: BatchRecord  # every section (datasets "batch_record_*")
    batch: dict[str, Any]  # the header row
    status: str  # the batch's status in words
    modality: str | None  # the product's modality in words
    cmo_decision: str | None  # in words; None while pending
    sponsor_decision: str | None  # in words; None while pending
    exceptions: pl.DataFrame  # dataset "batch_record_exceptions"
    supplier_alerts: list[str]  # one sentence per lot from a FLAGGED_SUPPLIER supplier


def page_model(scope: Scope, batch_id: str) -> BatchRecordPage:
    """The batch record page's model for `batch_id` (a batch of this scope): its sections, the
    header's codes in words, its review by exception and the flagged suppliers' lots."""
    record = batch_record(scope, batch_id)
    batch = record.header.row(0, named=True)
    decisions = catalogue.dataset("batches")
    supplier_status = catalogue.dataset("batch_record_materials").column("supplier_status")
    return BatchRecordPage(
        record=record,
        batch=batch,
        status=STATUS_WORDS[batch["status"]],
        modality=catalogue.dataset("products").column("modality").word(batch["modality"]),
        cmo_decision=decisions.column("cmo_decision").word(batch["cmo_decision"]),
        sponsor_decision=decisions.column("sponsor_decision").word(batch["sponsor_decision"]),
        exceptions=exception_table(review_by_exception(record)),
        supplier_alerts=[
            f"Supplier {lot['supplier']} is {supplier_status.word(lot['supplier_status']).lower()} "
            f"(lot {lot['lot_id']}, {lot['material_name']})."
            for lot in record.materials.filter(FLAGGED_LOT).iter_rows(named=True)
        ],
    )
