"""The audit pack's sections: named queries over one sponsor's scope, in FDA's six-system order.

Each section is one frame (what becomes its CSV and Parquet file and its PDF table). Sections
reuse the dashboards' named queries (warehouse.queries); only records no dashboard shows yet
(quality agreement, complaints, product markets) have their SQL here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import polars as pl

from warehouse.contract import SIX_SYSTEMS
from warehouse.filters import Filters
from warehouse.queries import (
    batch_record,
    batches,
    capa,
    change_control,
    deviations,
    equipment,
    tech_transfer,
    training,
)
from warehouse.scope import Scope

SYSTEM_TITLES = {
    "QUALITY": "Quality system",
    "FACILITIES_EQUIPMENT": "Facilities & equipment",
    "MATERIALS": "Materials",
    "PRODUCTION": "Production",
    "PACKAGING_LABELING": "Packaging & labeling",
    "LABORATORY": "Laboratory controls",
}


@dataclass(frozen=True)
class Chart:
    """A bar chart of `frame`: one bar per `category` value, `series` stacked (name: colour)."""

    category: str
    series: dict[str, tuple[int, int, int]]


@dataclass(frozen=True)
class Section:
    """One section of the pack: its rows, where it sits, and how the PDF shows it."""

    key: str  # file stem, unique in the pack
    system: str  # one of SIX_SYSTEMS
    title: str
    about: str  # one sentence: which rows are in it
    frame: pl.DataFrame
    columns: dict[str, str] = field(default_factory=dict)  # PDF columns: name -> heading
    chart: Chart | None = None

    @property
    def folder(self) -> str:
        """`data/<nn>_<system>/`: the six systems as the pack's folder structure."""
        return f"data/{SIX_SYSTEMS.index(self.system) + 1:02d}_{self.system.lower()}"


SPONSOR_SQL = "SELECT sponsor_id, name FROM sponsor"

PRODUCTS_SQL = """
SELECT product_id, name, modality, dosage_form, markets
FROM product
WHERE len($products::VARCHAR[]) = 0 OR list_contains($products::VARCHAR[], product_id)
ORDER BY name, product_id
"""

AGREEMENT_SQL = """
SELECT a.agreement_id, a.version, a.effective_from, t.term_type, t.subject, t.deadline_hours,
       t.obligation, t.term_id
FROM quality_agreement AS a
JOIN agreement_term AS t USING (agreement_id)
ORDER BY a.agreement_id, t.term_type DESC, t.subject
"""

# A complaint is in view when received in the period or still open, for a chosen product.
COMPLAINTS_SQL = """
SELECT k.complaint_number, p.name AS product, b.batch_number, k.received_at, k.is_critical,
       k.confirmed, k.notified_at, k.closed_at, k.complaint_id
FROM complaint AS k
JOIN product AS p USING (product_id)
LEFT JOIN batch AS b ON b.batch_id = k.batch_id
WHERE (len($products::VARCHAR[]) = 0 OR list_contains($products::VARCHAR[], k.product_id))
  AND k.received_at::DATE <= $end
  AND (k.received_at::DATE >= $start OR k.closed_at IS NULL)
ORDER BY k.received_at, k.complaint_number
"""

RED, BLUE, GREY = (214, 39, 40), (31, 119, 180), (127, 127, 127)


def sponsor_name(scope: Scope) -> str:
    """The scope's sponsor as named in its registry row (its partition holds only that row)."""
    found = scope.frame("pack sponsor", SPONSOR_SQL)
    return found["name"][0] if found.height else str(scope.sponsor_id)


def products(scope: Scope, chosen: tuple[str, ...] = ()) -> pl.DataFrame:
    """Products of the scope (all, or the chosen ones) with dosage form and markets."""
    return scope.frame("pack products", PRODUCTS_SQL, {"products": list(chosen)})


def batch_exceptions(scope: Scope, batch_ids: list[str]) -> pl.DataFrame:
    """Review by exception of every given batch record, batch by batch in lifecycle order."""
    rows: list[dict[str, str]] = []
    for batch_id, record in batch_record.batch_records(scope, batch_ids).items():
        number = record.header["batch_number"][0]
        for found in batch_record.review_by_exception(record):
            rows.append({"batch_number": number, "kind": found.kind, "record": found.ref,
                         "exception": found.sentence, "batch_id": batch_id})  # fmt: skip
    schema = dict.fromkeys(("batch_number", "kind", "record", "exception", "batch_id"), pl.String)
    return pl.DataFrame(rows, schema=schema)


def stable(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows in one total order (every column, nulls last), so files are byte-identical."""
    if frame.is_empty() or not frame.columns:
        return frame
    return frame.sort(frame.columns, nulls_last=True, maintain_order=True)


def collect(scope: Scope, filters: Filters, as_of: date) -> list[Section]:
    """Every section of a pack for the scope's sponsor, `as_of` the snapshot's date."""
    capas = capa.capas(scope, filters, as_of)
    capa_numbers = capas["capa_number"].to_list()
    batch_list = stable(batches.batch_list(scope, filters, as_of))
    lots = equipment.supplier_lots(scope, filters)
    projects = tech_transfer.projects(scope, filters, as_of)
    ordered_batches = batch_list.sort("batch_number", "batch_id")["batch_id"].to_list()
    return [
        Section("quality_agreement", "QUALITY", "Quality agreement",
                "Notification deadlines per event and this sponsor's obligation per change type.",
                stable(scope.frame("pack quality agreement", AGREEMENT_SQL)),
                {"version": "Version", "effective_from": "Effective from", "term_type": "Term",
                 "subject": "Subject", "deadline_hours": "Deadline (h)",
                 "obligation": "Obligation"}),
        Section("deviations", "QUALITY", "Deviations",
                "Deviations raised in the period or still open that touch these products.",
                stable(deviations.deviations(scope, filters, as_of)),
                {"deviation_number": "Deviation", "title": "Title",
                 "classification": "Class", "status": "Status", "awareness_at": "Aware",
                 "current_due": "Due", "extension_count": "Ext.", "closed_at": "Closed",
                 "root_cause_category": "Root cause", "batches": "Batches",
                 "notified_late": "Notified late"}),
        Section("capas", "QUALITY", "CAPAs",
                "CAPAs active or due in the period whose source touches these products.",
                stable(capas),
                {"capa_number": "CAPA", "title": "Title", "source_record": "Source",
                 "status": "Status", "opened_at": "Opened", "original_due": "Original due",
                 "current_due": "Current due", "extension_count": "Ext.",
                 "closed_at": "Closed", "effectiveness_result": "Effectiveness",
                 "overdue": "Overdue"}),
        Section("capa_aging", "QUALITY", "Open CAPA aging",
                "Open CAPAs by age in days (DOMAIN.md KPI 10), overdue against the current due.",
                capa.aging(capas), {"bucket": "Age (days)", "overdue": "Overdue",
                                    "not_overdue": "Not overdue"},
                Chart("bucket", {"overdue": RED, "not_overdue": BLUE})),
        Section("capa_extensions", "QUALITY", "CAPA due-date extensions",
                "Every extension of the CAPAs above, with its reason.",
                stable(capa.capa_extensions(scope, capa_numbers)),
                {"capa_number": "CAPA", "previous_due": "Previous due", "new_due": "New due",
                 "days_added": "Days added", "reason": "Reason", "approved_at": "Approved"}),
        Section("capa_effectiveness", "QUALITY", "CAPA effectiveness checks",
                "Effectiveness checks of the CAPAs above.",
                stable(capa.effectiveness_checks(scope, capa_numbers)),
                {"capa_number": "CAPA", "title": "Title", "checked_at": "Checked",
                 "result": "Result"}),
        Section("change_controls", "QUALITY", "Change controls",
                "Changes opened in the period or not yet effective, with this sponsor's "
                "obligation and its status.",
                stable(change_control.change_impacts(scope, filters, as_of)),
                {"change_number": "Change", "title": "Title", "change_type": "Type",
                 "status": "Status", "product": "Product", "obligation": "Obligation",
                 "notified_at": "Notified", "decision": "Decision", "decided_at": "Decided",
                 "actual_effective": "Effective", "violation_reason": "Violation"}),
        Section("complaints", "QUALITY", "Complaints",
                "Product quality complaints received in the period or still open.",
                stable(scope.frame("pack complaints", COMPLAINTS_SQL, filters.params())),
                {"complaint_number": "Complaint", "product": "Product",
                 "batch_number": "Batch", "received_at": "Received",
                 "is_critical": "Critical", "confirmed": "Confirmed",
                 "notified_at": "Notified", "closed_at": "Closed"}),
        Section("equipment", "FACILITIES_EQUIPMENT", "Equipment qualification and calibration",
                "Equipment that ran these batches in the period: status, last qualification "
                "and calibration, uses while not valid.",
                stable(equipment.equipment_status(scope, filters, as_of)),
                {"equipment": "Equipment", "equipment_type": "Type", "status": "Status",
                 "last_qualification": "Last qualification",
                 "last_calibration": "Last calibration", "calibration_due": "Calibration due",
                 "uses": "Uses", "uses_not_valid": "Uses not valid"}),
        Section("equipment_invalid_uses", "FACILITIES_EQUIPMENT",
                "Equipment used out of calibration or qualification",
                "Uses that started while the equipment's calibration or qualification had "
                "lapsed.",
                stable(equipment.invalid_uses(scope, filters)),
                {"equipment": "Equipment", "batch_number": "Batch", "product": "Product",
                 "started_at": "Started", "calibration_valid_at_use": "Calibration valid",
                 "qualification_valid_at_use": "Qualification valid", "usage_id": "Use"}),
        Section("suppliers", "MATERIALS", "Supplier qualification",
                "Suppliers of the material lots these batches consumed, worst status first.",
                equipment.suppliers(lots),
                {"supplier": "Supplier", "supplier_status": "Status",
                 "lots_consumed": "Lots", "materials": "Materials"}),
        Section("material_lots", "MATERIALS", "Material lots consumed",
                "Lots consumed by these batches, with their release and CoA status.",
                stable(lots),
                {"supplier": "Supplier", "supplier_status": "Supplier status",
                 "lot_id": "Lot", "material_name": "Material", "received_at": "Received",
                 "release_status": "Release", "coa_received": "CoA", "batches": "Batches"}),
        Section("batches", "PRODUCTION", "Batch records and disposition",
                "Batches whose manufacture started in the period, with both dispositions.",
                batch_list,
                {"batch_number": "Batch", "product": "Product", "status": "Status",
                 "mfg_start": "Mfg start", "mfg_end": "Mfg end", "cmo_decision": "CMO",
                 "cmo_decided_at": "CMO decided", "sponsor_decision": "Sponsor",
                 "sponsor_decided_at": "Sponsor decided", "cycle_time_days": "Cycle (d)"}),
        Section("batch_status", "PRODUCTION", "Batch status",
                "The batches above per lifecycle status.",
                batches.status_funnel(batch_list), {"status": "Status", "batches": "Batches"},
                Chart("status", {"batches": GREY})),
        Section("batch_exceptions", "PRODUCTION", "Review by exception: data-integrity findings",
                "Every exception of these batch records (ISPE review by exception), in "
                "lifecycle order per batch.",
                batch_exceptions(scope, ordered_batches),
                {"batch_number": "Batch", "kind": "Kind", "record": "Record",
                 "exception": "Finding"}),
        Section("training_matrix", "PRODUCTION", "Training matrix",
                "Operators who worked on these batches in the period, on the SOPs of the "
                "products they made.",
                stable(training.operator_training(scope, filters, as_of)),
                {"operator": "Operator", "role": "Role", "sop_number": "SOP",
                 "sop_title": "Title", "sop_version": "Version",
                 "trained_version": "Trained version", "trained_at": "Trained",
                 "due_at": "Due", "status": "Status"}),
        Section("training_gaps", "PRODUCTION", "Steps performed without current training",
                "Batch steps whose performer's training on the product's SOPs was not current.",
                stable(training.training_gaps(scope, filters)),
                {"batch_number": "Batch", "product": "Product", "seq": "Step",
                 "step_name": "Step name", "operator": "Operator",
                 "performed_at": "Performed", "event_id": "Event"}),
        Section("tech_transfer_projects", "PRODUCTION", "Technology transfer projects",
                "Transfer projects running in the period.",
                stable(projects),
                {"project_id": "Project", "product": "Product", "status": "Status",
                 "contract_signed_at": "Contract", "current_phase": "Phase",
                 "next_milestone": "Next", "next_planned": "Next planned",
                 "milestones_late": "Late"}),
        Section("tech_transfer_milestones", "PRODUCTION", "Technology transfer milestones",
                "Milestones of these projects, planned against actual.",
                stable(tech_transfer.milestones(
                    scope, projects["project_id"].to_list(), as_of)),
                {"project_id": "Project", "seq": "#", "milestone": "Milestone",
                 "planned_at": "Planned", "actual_at": "Actual", "slip_days": "Slip (d)"}),
        Section("products", "PACKAGING_LABELING", "Products, dosage forms and markets",
                "The products this pack covers and the markets their labeling serves. "
                "Packaging and labeling steps are part of the batch records (Production).",
                products(scope, filters.products),
                {"product_id": "Product", "name": "Name", "modality": "Modality",
                 "dosage_form": "Dosage form", "markets": "Markets"}),
        Section("oos_investigations", "LABORATORY", "OOS investigations",
                "Out-of-specification investigations opened in the period or still open.",
                stable(deviations.oos_investigations(scope, filters)),
                {"batch_number": "Batch", "product": "Product", "test_type": "Type",
                 "test_name": "Test", "result_value": "Result", "spec_low": "Low",
                 "spec_high": "High", "phase": "Phase", "outcome": "Outcome",
                 "opened_at": "Opened", "closed_at": "Closed", "summary": "Summary"}),
    ]  # fmt: skip
