"""Small hand-made systems of record (SQLite or CSV) for bad-input ETL tests.

`base_plant()` is a tiny valid plant: two sponsors (ACME, BETA), each with a product, a
batch and the records around it, plus a shared tank and a site deviation touching both.
Tests mutate the returned rows, then write them with `write_sqlite` or `write_csv`.
"""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

from warehouse.contract import TABLES, sqlite_ddl

U = "2026-01-20T12:00:00"  # updated_at of every base row

Plant = dict[str, list[dict[str, object]]]


def _rows(table: str, *rows: dict[str, object]) -> list[dict[str, object]]:
    return [{**row, "updated_at": row.get("updated_at", U)} for row in rows]


def base_plant() -> Plant:
    """A fresh, fully valid plant; every table has at least one row."""
    plant: Plant = {t.name: [] for t in TABLES}
    plant["sponsor"] = _rows("sponsor", {"sponsor_id": "ACME", "name": "Acme Pharma"},
                             {"sponsor_id": "BETA", "name": "Beta Bio"})  # fmt: skip
    plant["site"] = _rows("site", {"site_id": "S1", "name": "Site One", "country": "IE"})
    for s, n in (("ACME", 1), ("BETA", 2)):
        plant["quality_agreement"] += _rows("", {
            "agreement_id": f"QA-{s}", "sponsor_id": s, "version": 1,
            "effective_from": "2025-01-01"})  # fmt: skip
        plant["agreement_term"] += _rows("", {
            "term_id": f"T-{s}", "agreement_id": f"QA-{s}", "term_type": "NOTIFICATION",
            "subject": "DEVIATION_MAJOR", "deadline_hours": 24})  # fmt: skip
        plant["product"] += _rows("", {
            "product_id": f"P-{s}", "sponsor_id": s, "site_id": "S1", "name": f"Drug{n}",
            "modality": "OSD", "markets": "US;EU"})  # fmt: skip
        plant["master_batch_record"] += _rows("", {
            "mbr_id": f"MBR-{s}", "product_id": f"P-{s}", "version": 1, "status": "APPROVED",
            "approved_at": "2025-06-01T10:00:00"})  # fmt: skip
        plant["sop"] += _rows("", {
            "sop_id": f"SOP-{s}", "sop_number": f"SOP-10{n}", "title": f"Process {n}",
            "version": 1, "effective_from": "2025-01-01", "scope": "PRODUCT"})  # fmt: skip
        plant["product_sop"] += _rows(
            "", {"product_sop_id": f"PS-{s}", "product_id": f"P-{s}", "sop_id": f"SOP-{s}"}
        )
        plant["supplier"] += _rows(
            "", {"supplier_id": f"SUP-{s}", "name": f"Supplier {n}", "status": "APPROVED"}
        )
        plant["bom_item"] += _rows("", {
            "bom_item_id": f"BOM-{s}", "product_id": f"P-{s}", "material_name": "API",
            "supplier_id": f"SUP-{s}", "quantity": 1.5, "unit": "kg"})  # fmt: skip
        plant["material_lot"] += _rows("", {
            "lot_id": f"LOT-{s}", "supplier_id": f"SUP-{s}", "material_name": "API",
            "received_at": "2025-12-01T08:00:00", "release_status": "RELEASED",
            "coa_received": 1})  # fmt: skip
        plant["operator"] += _rows("", {"operator_id": f"OP-{s}", "name": f"Operator {n}"})
        plant["training_record"] += _rows("", {
            "training_id": f"TR-{s}", "operator_id": f"OP-{s}", "sop_id": f"SOP-{s}",
            "sop_version": 1, "status": "CURRENT", "trained_at": "2025-01-10"})  # fmt: skip
        plant["batch"] += _rows("", {
            "batch_id": f"B-{s}", "batch_number": f"{s}-0001", "sponsor_id": s,
            "product_id": f"P-{s}", "site_id": "S1", "status": "SPONSOR_RELEASED",
            "mfg_start": f"2026-01-0{n}T06:00:00", "mfg_end": f"2026-01-0{n}T18:00:00",
            "cmo_decision": "RELEASED", "cmo_decided_by": "OP-QA",
            "cmo_decided_at": "2026-01-10T09:00:00", "sponsor_decision": "APPROVED",
            "sponsor_decided_at": "2026-01-12T09:00:00", "units_produced": 1000,
            "reworked": 0})  # fmt: skip
        plant["batch_event"] += _rows("", {
            "event_id": f"E-{s}-1", "batch_id": f"B-{s}", "seq": 1, "step_name": "Dispense",
            "event_type": "DISPENSE", "performed_by": f"OP-{s}",
            "performed_at": f"2026-01-0{n}T06:10:00", "recorded_at": f"2026-01-0{n}T06:12:00",
            "verified_by": "OP-QA", "verified_at": f"2026-01-0{n}T06:20:00"}, {
            "event_id": f"E-{s}-2", "batch_id": f"B-{s}", "seq": 2, "step_name": "Review",
            "event_type": "REVIEW", "performed_by": "OP-QA",
            "performed_at": "2026-01-09T09:00:00", "recorded_at": "2026-01-09T09:01:00",
            "verified_by": f"OP-{s}", "verified_at": "2026-01-09T10:00:00"})  # fmt: skip
        plant["material_consumption"] += _rows("", {
            "consumption_id": f"MC-{s}", "batch_id": f"B-{s}", "lot_id": f"LOT-{s}",
            "quantity": 10, "unit": "kg"})  # fmt: skip
        plant["test_result"] += _rows("", {
            "test_id": f"TEST-{s}", "batch_id": f"B-{s}", "test_type": "RELEASE",
            "test_name": "Assay", "result_value": 99.1, "spec_low": 95, "spec_high": 105,
            "tested_at": "2026-01-08T10:00:00", "is_oos": 0})  # fmt: skip
        plant["oos_investigation"] += _rows("", {
            "oos_id": f"OOS-{s}", "test_id": f"TEST-{s}", "batch_id": f"B-{s}", "phase": "I",
            "opened_at": "2026-01-08T11:00:00", "closed_at": "2026-01-09T11:00:00"})  # fmt: skip
        plant["deviation_link"] += _rows("", {
            "link_id": f"DL-{s}", "deviation_id": "DEV-1", "sponsor_id": s,
            "batch_id": f"B-{s}", "equipment_id": "EQ-TANK",
            "notified_at": "2026-01-05T12:00:00"})  # fmt: skip
        plant["complaint"] += _rows("", {
            "complaint_id": f"C-{s}", "complaint_number": f"C-{n}", "product_id": f"P-{s}",
            "batch_id": f"B-{s}", "received_at": "2026-01-15T10:00:00", "is_critical": 0,
            "confirmed": 1})  # fmt: skip
        plant["change_impact"] += _rows("", {
            "impact_id": f"CI-{s}", "change_id": "CC-1", "sponsor_id": s,
            "product_id": f"P-{s}", "obligation": "PRIOR_APPROVAL",
            "notified_at": "2026-01-03T10:00:00", "decision": "APPROVED",
            "decided_at": "2026-01-04T10:00:00"})  # fmt: skip
        plant["change_market"] += _rows("", {
            "change_market_id": f"CM-{s}", "impact_id": f"CI-{s}", "market": "US",
            "reporting_category": "NOTIFICATION"})  # fmt: skip
        plant["product_review"] += _rows("", {
            "review_id": f"PR-{s}", "product_id": f"P-{s}", "review_year": 2025,
            "original_due": "2026-03-31"})  # fmt: skip
        plant["tech_transfer"] += _rows("", {
            "project_id": f"TT-{s}", "product_id": f"P-{s}",
            "contract_signed_at": "2025-01-01", "status": "COMPLETED"})  # fmt: skip
        plant["tt_milestone"] += _rows("", {
            "milestone_id": f"MS-{s}", "project_id": f"TT-{s}", "milestone": "ENGINEERING_BATCH",
            "seq": 9, "planned_at": "2025-03-01", "actual_at": "2025-03-15"})  # fmt: skip
        plant["equipment_usage"] += _rows("", {
            "usage_id": f"U-{s}", "equipment_id": "EQ-TANK", "batch_id": f"B-{s}",
            "started_at": f"2026-01-0{n}T06:30:00", "ended_at": f"2026-01-0{n}T17:00:00",
            "cleaning_result": "PASS"})  # fmt: skip
        plant["inspection_finding"] += _rows(
            "",
            {
                "finding_id": f"F-{s}",
                "inspection_id": "SI-1",
                "product_id": f"P-{s}",
                "classification": "MINOR",
                "description": "Label check",
                "status": "OPEN",
            },
        )
    plant["operator"] += _rows("", {"operator_id": "OP-QA", "name": "QA Person", "role": "QA"})
    plant["equipment"] = _rows("", {
        "equipment_id": "EQ-TANK", "site_id": "S1", "name": "Tank 1", "equipment_type": "TANK",
        "status": "QUALIFIED", "calibration_due": "2026-06-01"})  # fmt: skip
    plant["equipment_event"] = _rows(
        "",
        {
            "equipment_event_id": "EE-1",
            "equipment_id": "EQ-TANK",
            "event_type": "CALIBRATION",
            "performed_at": "2025-12-01T08:00:00",
            "next_due": "2026-06-01",
            "result": "PASS",
        },
    )
    plant["deviation"] = _rows("", {
        "deviation_id": "DEV-1", "deviation_number": "DEV-2026-001", "site_id": "S1",
        "title": "Tank temperature excursion", "classification": "MAJOR", "status": "CLOSED",
        "awareness_at": "2026-01-05T08:00:00", "original_due": "2026-02-04",
        "current_due": "2026-02-04", "extension_count": 0,
        "closed_at": "2026-01-09T08:00:00"})  # fmt: skip
    plant["self_inspection"] = _rows("", {
        "inspection_id": "SI-1", "site_id": "S1", "area": "QUALITY",
        "scheduled_at": "2026-01-05", "lead_auditor": "Auditor"})  # fmt: skip
    plant["capa"] = _rows("", {
        "capa_id": "CAPA-1", "capa_number": "CAPA-001", "source_type": "DEVIATION",
        "deviation_id": "DEV-1", "title": "Fix tank", "status": "PLAN",
        "opened_at": "2026-01-06T08:00:00", "original_due": "2026-03-01",
        "current_due": "2026-03-01"})  # fmt: skip
    plant["capa_extension"] = _rows(
        "",
        {
            "extension_id": "CX-1",
            "capa_id": "CAPA-1",
            "previous_due": "2026-02-01",
            "new_due": "2026-03-01",
            "reason": "Parts",
            "approved_at": "2026-01-07T08:00:00",
        },
    )
    plant["capa_effectiveness"] = _rows("", {
        "check_id": "CE-1", "capa_id": "CAPA-1", "checked_at": "2026-01-19T08:00:00",
        "result": "EFFECTIVE"})  # fmt: skip
    plant["change_control"] = _rows("", {
        "change_id": "CC-1", "change_number": "CC-001", "site_id": "S1", "title": "New tank",
        "change_type": "EQUIPMENT", "risk_class": "MEDIUM", "status": "CLOSED",
        "opened_at": "2026-01-02T08:00:00", "actual_effective": "2026-01-05"})  # fmt: skip
    return plant


def write_sqlite(plant: Plant, path: Path, ddl: str | None = None) -> Path:
    """Write the plant into a new SQLite file with the contract schema (or `ddl`)."""
    connection = sqlite3.connect(path)
    with connection:
        connection.executescript(sqlite_ddl() if ddl is None else ddl)
        for table in TABLES:
            columns = table.column_names
            marks = ", ".join("?" for _ in columns)
            connection.executemany(
                f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})",
                [tuple(row.get(c) for c in columns) for row in plant[table.name]],
            )
    connection.close()
    return path


def write_csv(plant: Plant, folder: Path) -> Path:
    """Write the plant as one `<table>.csv` export per table, header row first."""
    folder.mkdir(parents=True, exist_ok=True)
    for table in TABLES:
        with (folder / f"{table.name}.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=table.column_names)
            writer.writeheader()
            for row in plant[table.name]:
                writer.writerow({c: row.get(c) for c in table.column_names})
    return folder
