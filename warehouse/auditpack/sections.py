"""The audit pack's sections: named queries over one sponsor's scope, in FDA's six-system order.

Each section is one catalogue dataset's frame (what becomes its CSV and Parquet file and its
PDF table); its title, about line, column headings and the words for codes are the
catalogue's. Sections reuse the dashboards' named queries (warehouse.queries); only records no
dashboard shows yet (quality agreement, complaints, product markets) have their SQL here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from warehouse import catalogue
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

    key: str  # the catalogue dataset it shows; its file stem, unique in the pack
    system: str  # one of SIX_SYSTEMS
    frame: pl.DataFrame
    columns: tuple[str, ...] = ()  # the PDF's columns, in order (all are in the data files)
    chart: Chart | None = None

    @property
    def model(self) -> catalogue.Dataset:
        return catalogue.dataset(self.key)

    @property
    def title(self) -> str:
        return self.model.title

    @property
    def about(self) -> str:
        """One sentence: which rows are in it."""
        return self.model.description

    @property
    def headings(self) -> list[str]:
        """The catalogue's labels of the PDF's columns."""
        return [self.model.column(name).label for name in self.pdf_columns]

    @property
    def pdf_columns(self) -> list[str]:
        return [name for name in self.columns if name in self.frame.columns]

    def in_words(self) -> pl.DataFrame:
        """The PDF's columns with codes in the catalogue's words."""
        return self.model.in_words(self.frame.select(self.pdf_columns))

    @property
    def folder(self) -> str:
        """`data/<nn>_<system>/`: the six systems as the pack's folder structure."""
        return f"data/{SIX_SYSTEMS.index(self.system) + 1:02d}_{self.system.lower()}"


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


def products(scope: Scope, chosen: tuple[str, ...] = ()) -> pl.DataFrame:
    """Products of the scope (all, or the chosen ones) with dosage form and markets."""
    return scope.frame("pack products", PRODUCTS_SQL, {"products": list(chosen)})


def quality_agreement(scope: Scope) -> pl.DataFrame:
    """The sponsor's quality agreement, one row per term."""
    return scope.frame("pack quality agreement", AGREEMENT_SQL)


def complaints(scope: Scope, filters: Filters) -> pl.DataFrame:
    """Complaints received in the period or still open, for the chosen products."""
    return scope.frame("pack complaints", COMPLAINTS_SQL, filters.params())


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
        Section("quality_agreement", "QUALITY", stable(quality_agreement(scope)),
                ("version", "effective_from", "term_type", "subject", "deadline_hours",
                 "obligation")),
        Section("deviations", "QUALITY", stable(deviations.deviations(scope, filters, as_of)),
                ("deviation_number", "title", "classification", "status", "awareness_at",
                 "current_due", "extension_count", "closed_at", "root_cause_category",
                 "batches", "notified_late")),
        Section("capas", "QUALITY", stable(capas),
                ("capa_number", "title", "source_record", "status", "opened_at", "original_due",
                 "current_due", "extension_count", "closed_at", "effectiveness_result",
                 "overdue")),
        Section("capa_aging", "QUALITY", capa.aging(capas),
                ("bucket", "overdue", "not_overdue"),
                Chart("bucket", {"overdue": RED, "not_overdue": BLUE})),
        Section("capa_extensions", "QUALITY",
                stable(capa.capa_extensions(scope, capa_numbers)),
                ("capa_number", "previous_due", "new_due", "days_added", "reason",
                 "approved_at")),
        Section("capa_effectiveness", "QUALITY",
                stable(capa.effectiveness_checks(scope, capa_numbers)),
                ("capa_number", "title", "checked_at", "result")),
        Section("change_controls", "QUALITY",
                stable(change_control.change_impacts(scope, filters, as_of)),
                ("change_number", "title", "change_type", "status", "product", "obligation",
                 "notified_at", "decision", "decided_at", "actual_effective",
                 "violation_reason")),
        Section("complaints", "QUALITY", stable(complaints(scope, filters)),
                ("complaint_number", "product", "batch_number", "received_at", "is_critical",
                 "confirmed", "notified_at", "closed_at")),
        Section("equipment", "FACILITIES_EQUIPMENT",
                stable(equipment.equipment_status(scope, filters, as_of)),
                ("equipment", "equipment_type", "status", "last_qualification",
                 "last_calibration", "calibration_due", "uses", "uses_not_valid")),
        Section("equipment_invalid_uses", "FACILITIES_EQUIPMENT",
                stable(equipment.invalid_uses(scope, filters)),
                ("equipment", "batch_number", "product", "started_at",
                 "calibration_valid_at_use", "qualification_valid_at_use", "usage_id")),
        Section("suppliers", "MATERIALS", equipment.suppliers(lots),
                ("supplier", "supplier_status", "lots_consumed", "materials")),
        Section("material_lots", "MATERIALS", stable(lots),
                ("supplier", "supplier_status", "lot_id", "material_name", "received_at",
                 "release_status", "coa_received", "batches")),
        Section("batches", "PRODUCTION", batch_list,
                ("batch_number", "product", "status", "mfg_start", "mfg_end", "cmo_decision",
                 "cmo_decided_at", "sponsor_decision", "sponsor_decided_at",
                 "cycle_time_days")),
        Section("batch_status", "PRODUCTION", batches.status_funnel(batch_list),
                ("status", "batches"), Chart("status", {"batches": GREY})),
        Section("batch_exceptions", "PRODUCTION", batch_exceptions(scope, ordered_batches),
                ("batch_number", "kind", "record", "exception")),
        Section("training_matrix", "PRODUCTION",
                stable(training.operator_training(scope, filters, as_of)),
                ("operator", "role", "sop_number", "sop_title", "sop_version",
                 "trained_version", "trained_at", "due_at", "status")),
        Section("training_gaps", "PRODUCTION", stable(training.training_gaps(scope, filters)),
                ("batch_number", "product", "seq", "step_name", "operator", "performed_at",
                 "event_id")),
        Section("tech_transfer_projects", "PRODUCTION", stable(projects),
                ("project_id", "product", "status", "contract_signed_at", "current_phase",
                 "next_milestone", "next_planned", "milestones_late")),
        Section("tech_transfer_milestones", "PRODUCTION",
                stable(tech_transfer.milestones(scope, projects["project_id"].to_list(), as_of)),
                ("project_id", "seq", "milestone", "planned_at", "actual_at", "slip_days")),
        Section("products", "PACKAGING_LABELING", products(scope, filters.products),
                ("product_id", "name", "modality", "dosage_form", "markets")),
        Section("oos_investigations", "LABORATORY",
                stable(deviations.oos_investigations(scope, filters)),
                ("batch_number", "product", "test_type", "test_name", "result_value",
                 "spec_low", "spec_high", "phase", "outcome", "opened_at", "closed_at",
                 "summary")),
    ]  # fmt: skip
