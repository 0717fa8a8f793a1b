"""Every dataset a page, export or audit pack shows: the query that produces its rows and its
columns in display order, each a declaration of warehouse.catalogue.columns.

Queries are named as "module:function" rather than imported, so the catalogue stays plain
data that warehouse.kpis and the queries themselves can import without a cycle.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from warehouse.catalogue import columns as c
from warehouse.catalogue.columns import Column


class CatalogueError(LookupError):
    """A dataset, column or measure the catalogue does not declare."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Rows users read, as one query produces them, with every column declared."""

    name: str
    title: str
    description: str  # one sentence: which rows are in it
    query: str  # "module:function" that produces the rows
    columns: tuple[Column, ...]  # in display order
    hidden: tuple[str, ...] = ()  # returned for links between tables; never shown or exported

    @property
    def function(self) -> Callable[..., pl.DataFrame]:
        module, name = self.query.split(":")
        return getattr(importlib.import_module(module), name)

    def column(self, name: str) -> Column:
        found = next((col for col in self.columns if col.name == name), None)
        if found is None:
            raise CatalogueError(f"dataset {self.name!r} declares no column {name!r}")
        return found

    def shown(self, frame: pl.DataFrame) -> list[Column]:
        """The frame's columns as shown: key columns first, then in declared order.

        A column the dataset neither declares nor hides is an error, not a raw header.
        """
        undeclared = set(frame.columns) - {col.name for col in self.columns} - set(self.hidden)
        if undeclared:
            raise CatalogueError(f"dataset {self.name!r} does not declare {sorted(undeclared)}")
        present = [col for col in self.columns if col.name in frame.columns]
        return [col for col in present if col.key] + [col for col in present if not col.key]

    def for_api(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The shown columns under their names, codes in words, and beside every column that
        has words its machine code as "<name>_code" (the sponsor API's JSON and Parquet)."""
        exprs: list[pl.Expr] = []
        for col in self.shown(frame):
            exprs.append(_worded(col, frame))
            if col.words:
                exprs.append(pl.col(col.name).alias(f"{col.name}_code"))
        return frame.select(exprs)

    def in_words(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The shown columns, codes replaced by their words; column names unchanged."""
        return frame.select(_worded(col, frame) for col in self.shown(frame))

    def for_export(self, frame: pl.DataFrame) -> pl.DataFrame:
        """As `in_words`, headed by labels, with "<label> code" beside columns that keep it."""
        exprs: list[pl.Expr] = []
        for col in self.shown(frame):
            exprs.append(_worded(col, frame).alias(col.label))
            if col.export_code:
                exprs.append(pl.col(col.name).alias(col.code_label))
        return frame.select(exprs)

    def for_chart(self, frame: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, str]]:
        """A chart's data: codes of every column the dataset declares replaced by their words
        (other columns, such as counts a chart derives, unchanged), and the declared columns'
        labels by column name, for axis, legend and hover titles."""
        declared = {col.name: col for col in self.columns if col.name in frame.columns}
        worded = frame.with_columns(_worded(col, frame) for col in declared.values() if col.words)
        return worded, {name: col.label for name, col in declared.items()}


def _worded(col: Column, frame: pl.DataFrame) -> pl.Expr:
    if col.words and frame.schema[col.name] == pl.String:
        return pl.col(col.name).replace(col.words)
    return pl.col(col.name)


# fmt: off
DATASETS: tuple[Dataset, ...] = (
    Dataset(
        "quality_agreement", "Quality agreement",
        "Notification deadlines per event and this sponsor's obligation per change type.",
        "warehouse.auditpack.sections:quality_agreement",
        (c.AGREEMENT_ID, c.AGREEMENT_VERSION, c.EFFECTIVE_FROM, c.TERM_TYPE, c.TERM_SUBJECT,
         c.DEADLINE_HOURS, c.TERM_OBLIGATION),
        hidden=("term_id",)),
    Dataset(
        "deviations", "Deviations",
        "Deviations raised in the period or still open that touch these products.",
        "warehouse.queries.deviations:deviations",
        (c.DEVIATION_NUMBER, c.TITLE, c.CLASSIFICATION, c.DEVIATION_STATUS, c.AWARENESS_AT,
         c.ORIGINAL_DUE, c.CURRENT_DUE, c.EXTENSION_COUNT, c.CLOSED_AT, c.CLOSED_ON_TIME,
         c.ROOT_CAUSE, c.RECURRENCE_OF, c.IS_RECURRENCE, c.AGE_DAYS, c.DEVIATION_OVERDUE,
         c.DEVIATION_PRODUCTS, c.DEVIATION_BATCHES, c.NOTIFIED_LATE)),
    Dataset(
        "capas", "CAPAs",
        "CAPAs active or due in the period whose source touches these products.",
        "warehouse.queries.capa:capas",
        (c.CAPA_NUMBER, c.TITLE, c.CAPA_SOURCE, c.CAPA_SOURCE_RECORD, c.CAPA_STATUS, c.OPENED_AT,
         c.ORIGINAL_DUE, c.CURRENT_DUE, c.EXTENSION_COUNT, c.CLOSED_AT, c.CLOSED_ON_TIME_ORIGINAL,
         c.CLOSED_ON_TIME_CURRENT, c.EFFECTIVENESS_RESULT, c.AGE_DAYS, c.CAPA_OVERDUE,
         c.DAYS_OVERDUE)),
    Dataset(
        "capa_aging", "Open CAPA aging",
        "Open CAPAs by age in days (DOMAIN.md KPI 10), overdue against the current due.",
        "warehouse.queries.capa:aging",
        (c.AGE_BUCKET, c.OVERDUE_IN_BUCKET, c.NOT_OVERDUE_IN_BUCKET)),
    Dataset(
        "capa_extensions", "CAPA due-date extensions",
        "Every extension of the CAPAs above, with its reason.",
        "warehouse.queries.capa:capa_extensions",
        (c.CAPA_NUMBER, c.PREVIOUS_DUE, c.NEW_DUE, c.DAYS_ADDED, c.EXTENSION_REASON,
         c.APPROVED_AT)),
    Dataset(
        "capa_effectiveness", "CAPA effectiveness checks",
        "Effectiveness checks of the CAPAs above.",
        "warehouse.queries.capa:effectiveness_checks",
        (c.CAPA_NUMBER, c.TITLE, c.CHECKED_AT, c.CHECK_RESULT)),
    Dataset(
        "change_controls", "Change controls",
        "Changes opened in the period or not yet effective, with this sponsor's obligation and "
        "its status.",
        "warehouse.queries.change_control:change_impacts",
        (c.CHANGE_NUMBER, c.TITLE, c.CHANGE_TYPE, c.RISK_CLASS, c.CHANGE_STATUS, c.PRODUCT,
         c.OBLIGATION, c.OBLIGATION_REQUIRED, c.OBLIGATION_BELOW_AGREEMENT, c.NOTIFIED_AT,
         c.IMPACT_DECISION, c.DECIDED_AT, c.PLANNED_EFFECTIVE,
         c.ACTUAL_EFFECTIVE, c.CHANGE_MARKETS, c.AWAITING_SPONSOR, c.DAYS_TO_PLANNED,
         c.VIOLATION, c.VIOLATION_REASON, c.IMPACT_ID)),
    Dataset(
        "complaints", "Complaints",
        "Product quality complaints received in the period or still open.",
        "warehouse.auditpack.sections:complaints",
        (c.COMPLAINT_NUMBER, c.PRODUCT, c.BATCH_NUMBER, c.RECEIVED_AT, c.IS_CRITICAL,
         c.CONFIRMED, c.NOTIFIED_AT, c.CLOSED_AT),
        hidden=("complaint_id",)),
    Dataset(
        "equipment", "Equipment qualification and calibration",
        "Equipment that ran these batches in the period: status, last qualification and "
        "calibration, uses while not valid.",
        "warehouse.queries.equipment:equipment_status",
        (c.EQUIPMENT, c.EQUIPMENT_TYPE, c.TRAIN, c.EQUIPMENT_STATUS, c.LAST_QUALIFICATION,
         c.LAST_CALIBRATION, c.CALIBRATION_DUE, c.CALIBRATION_OVERDUE, c.USES,
         c.USES_NOT_VALID)),
    Dataset(
        "equipment_invalid_uses", "Equipment used out of calibration or qualification",
        "Uses that started while the equipment's calibration or qualification had lapsed.",
        "warehouse.queries.equipment:invalid_uses",
        (c.EQUIPMENT, c.BATCH_NUMBER, c.PRODUCT, c.STARTED_AT, c.CALIBRATION_VALID,
         c.QUALIFICATION_VALID, c.USAGE_ID)),
    Dataset(
        "suppliers", "Supplier qualification",
        "Suppliers of the material lots these batches consumed, worst status first.",
        "warehouse.queries.equipment:suppliers",
        (c.SUPPLIER, c.SUPPLIER_STATUS, c.LOTS_CONSUMED, c.MATERIALS)),
    Dataset(
        "material_lots", "Material lots consumed",
        "Lots consumed by these batches, with their release and CoA status.",
        "warehouse.queries.equipment:supplier_lots",
        (c.SUPPLIER, c.SUPPLIER_STATUS, c.LOT_ID, c.MATERIAL_NAME, c.RECEIVED_AT,
         c.RELEASE_STATUS, c.COA_RECEIVED, c.BATCHES_CONSUMING, c.BATCH_NUMBERS)),
    Dataset(
        "batches", "Batch records and disposition",
        "Batches whose manufacture started in the period, with both dispositions.",
        "warehouse.queries.batches:batch_list",
        (c.BATCH_NUMBER, c.PRODUCT, c.BATCH_STATUS, c.MFG_START, c.MFG_END, c.CMO_DECISION,
         c.CMO_DECIDED_AT, c.SPONSOR_DECISION, c.SPONSOR_DECIDED_AT, c.CYCLE_TIME_DAYS,
         c.AWAITING_RELEASE_DAYS),
        hidden=("batch_id",)),
    Dataset(
        "batch_status", "Batch status",
        "The batches above per lifecycle status.",
        "warehouse.queries.batches:status_funnel",
        (c.STATUS_STAGE, c.BATCHES_PER_STATUS)),
    Dataset(
        "batch_exceptions", "Review by exception: data-integrity findings",
        "Every exception of these batch records (ISPE review by exception), in lifecycle order "
        "per batch.",
        "warehouse.auditpack.sections:batch_exceptions",
        (c.BATCH_NUMBER, c.EXCEPTION_KIND, c.EXCEPTION_RECORD, c.EXCEPTION),
        hidden=("batch_id",)),
    Dataset(
        "training_matrix", "Training matrix",
        "Operators who worked on these batches in the period, on the SOPs of the products they "
        "made.",
        "warehouse.queries.training:operator_training",
        (c.OPERATOR, c.ROLE, c.SOP_NUMBER, c.SOP_TITLE, c.SOP_VERSION, c.TRAINED_VERSION,
         c.TRAINED_AT, c.DUE_AT, c.TRAINING_STATUS)),
    Dataset(
        "training_gaps", "Steps performed without current training",
        "Batch steps whose performer's training on the product's SOPs was not current.",
        "warehouse.queries.training:training_gaps",
        (c.BATCH_NUMBER, c.PRODUCT, c.SEQ, c.STEP_NAME, c.EVENT_TYPE, c.PERFORMED_BY,
         c.PERFORMED_AT, c.EVENT_ID)),
    Dataset(
        "tech_transfer_projects", "Technology transfer projects",
        "Transfer projects running in the period.",
        "warehouse.queries.tech_transfer:projects",
        (c.PROJECT_ID, c.PRODUCT, c.MODALITY, c.CONTRACT_SIGNED_AT, c.PROJECT_STATUS,
         c.CURRENT_PHASE, c.NEXT_MILESTONE, c.NEXT_PLANNED, c.MILESTONES_LATE, c.PLANNED_WEEKS,
         c.ACTUAL_WEEKS, c.WITHIN_BENCHMARK)),
    Dataset(
        "tech_transfer_milestones", "Technology transfer milestones",
        "Milestones of these projects, planned against actual.",
        "warehouse.queries.tech_transfer:milestones",
        (c.PROJECT_ID, c.PRODUCT, c.MILESTONE_SEQ, c.MILESTONE, c.PLANNED_AT, c.ACTUAL_AT,
         c.SLIP_DAYS),
        hidden=("planned_start", "actual_start")),
    Dataset(
        "products", "Products, dosage forms and markets",
        "The products this pack covers and the markets their labeling serves. Packaging and "
        "labeling steps are part of the batch records (Production).",
        "warehouse.auditpack.sections:products",
        (c.PRODUCT_ID, c.PRODUCT_NAME, c.MODALITY, c.DOSAGE_FORM, c.PRODUCT_MARKETS)),
    Dataset(
        "oos_investigations", "OOS investigations",
        "Out-of-specification investigations opened in the period or still open.",
        "warehouse.queries.deviations:oos_investigations",
        (c.BATCH_NUMBER, c.PRODUCT, c.TEST_TYPE, c.TEST_NAME, c.RESULT_VALUE, c.SPEC_LOW,
         c.SPEC_HIGH, c.UNIT, c.OOS_PHASE, c.OOS_OUTCOME, c.OPENED_AT, c.CLOSED_AT,
         c.NOTIFIED_AT, c.OOS_SUMMARY),
        hidden=("outcome_code",)),
    Dataset(
        "compliance_breaches", "Breaches of the quality agreement",
        "Every notification clock or change obligation broken in the period, per sponsor.",
        "warehouse.queries.compliance:breaches",
        (c.SPONSOR, c.BREACH_KIND, c.BREACH_RECORD, c.BREACH_TERM, c.BREACH_CLOCK, c.BROKEN_BY,
         c.RECORD_KEY),
        hidden=("sponsor_id",)),
    Dataset(
        "compliance_shares", "Share kept within the agreement",
        "Per sponsor, the share of notifications and changes kept within the agreed clock.",
        "warehouse.queries.compliance:shares_by_sponsor",
        (c.SPONSOR, *c.COMPLIANCE_SHARES)),
    Dataset(
        "agreed_clocks", "Agreed notification clocks",
        "Per sponsor, the hours its quality agreement gives the CMO to notify each event.",
        "warehouse.queries.compliance:agreed_clocks",
        (c.SPONSOR, *c.AGREED_CLOCKS)),
    Dataset(
        "agreed_obligations", "Agreed change obligations",
        "Per sponsor, what its quality agreement requires for each type of change.",
        "warehouse.queries.compliance:agreed_obligations",
        (c.SPONSOR, *c.AGREED_OBLIGATIONS)),
    Dataset(
        "notifiable_events", "Notifiable events",
        "Deviations, confirmed OOS and critical complaints whose notification clock started in "
        "the period, with their outcome.",
        "warehouse.queries.compliance:notifiable_events",
        (c.SPONSOR, c.NOTIFIABLE_EVENT, c.EVENT_TERM, c.EVENT_RECORD, c.TITLE, c.PRODUCT,
         c.CLOCK_STARTED, c.CLOCK_FROM, c.DEADLINE_HOURS, c.NOTIFIED_AT, c.DEADLINE_AT,
         c.NOTIFICATION_OUTCOME),
        hidden=("sponsor_id", "record_key")),
    Dataset(
        "awaiting_release", "Batches awaiting the sponsor's release",
        "Batches the CMO released that wait for this sponsor's decision, longest first.",
        "warehouse.queries.overview:awaiting_release",
        (c.BATCH_NUMBER, c.PRODUCT, c.CMO_DECIDED_AT, c.DAYS_WAITING)),
    Dataset(
        "open_deviations", "Open deviations",
        "Deviations open today that touch these products, most severe and newest first.",
        "warehouse.queries.overview:open_deviations",
        (c.DEVIATION_NUMBER, c.TITLE, c.CLASSIFICATION, c.DEVIATION_STATUS, c.AWARENESS_AT,
         c.AGE_DAYS)),
    Dataset(
        "overdue_capas", "Overdue CAPAs",
        "CAPAs open today past their current due date, most overdue first.",
        "warehouse.queries.overview:overdue_capas",
        (c.CAPA_NUMBER, c.TITLE, c.CAPA_STATUS, c.CURRENT_DUE, c.DAYS_OVERDUE)),
    Dataset(
        "changes_awaiting_sponsor", "Changes awaiting the sponsor",
        "Change impacts waiting for this sponsor's approval, or its acknowledgement of a change "
        "not yet effective.",
        "warehouse.queries.overview:changes_awaiting_sponsor",
        (c.CHANGE_NUMBER, c.TITLE, c.CHANGE_STATUS_OF_IMPACT, c.PLANNED_EFFECTIVE, c.PRODUCT,
         c.OBLIGATION, c.NOTIFIED_AT, c.AWAITING),
        hidden=("impact_id",)),
    Dataset(
        "data_integrity_exceptions", "Data-integrity exceptions",
        "Flagged batch-record entries and dispositions, equipment used while not fit for use and "
        "changes that broke the quality agreement, lately.",
        "warehouse.queries.overview:data_integrity_exceptions",
        (c.BATCH_NUMBER, c.SEQ, c.DI_SUBJECT, c.DI_OCCURRED_AT, c.EXCEPTION)),
    Dataset(
        "batch_record_exceptions", "Review by exception",
        "Every data-integrity exception of one batch record, in lifecycle order.",
        "warehouse.queries.batch_record:exception_table",
        (c.EXCEPTION, c.EXCEPTION_KIND, c.EXCEPTION_RECORD)),
    Dataset(
        "batch_record_materials", "Materials",
        "Material lots one batch consumed (genealogy), with their supplier.",
        "warehouse.queries.batch_record:batch_records",
        (c.MATERIAL_NAME, c.LOT_ID, c.QUANTITY, c.UNIT, c.RELEASE_STATUS, c.COA_RECEIVED,
         c.RECEIVED_AT, c.SUPPLIER, c.SUPPLIER_STATUS)),
    Dataset(
        "batch_record_steps", "Execution steps",
        "The executed steps, in-process controls and sign-offs of one batch.",
        "warehouse.queries.batch_record:batch_records",
        (c.STEP_SEQ, c.STEP_NAME, c.EVENT_TYPE, c.STEP_PERFORMER_ID, c.STEP_PERFORMER,
         c.PERFORMED_AT, c.RECORDED_AT, c.STEP_VERIFIER_ID, c.STEP_VERIFIER, c.VERIFIED_AT,
         c.MINUTES_LATE, c.LATE_ENTRY_REASON, c.STEP_FLAGS, c.EVENT_ID),
        hidden=("late_entry", "sign_off_gap", "self_verification", "out_of_order",
                "training_gap", "out_of_sequence", "outside_batch_window")),
    Dataset(
        "batch_record_tests", "In-process and QC results",
        "IPC and release test results of one batch, with any OOS investigation.",
        "warehouse.queries.batch_record:batch_records",
        (c.TEST_ID, c.TEST_TYPE, c.TEST_NAME, c.RESULT_VALUE, c.SPEC_LOW, c.SPEC_HIGH, c.UNIT,
         c.TESTED_AT, c.IS_OOS, c.OOS_ID, c.OOS_PHASE, c.OOS_RESULT, c.OPENED_AT, c.CLOSED_AT,
         c.OOS_SUMMARY)),
    Dataset(
        "batch_record_deviations", "Deviations of the batch",
        "Deviations linked to one batch.",
        "warehouse.queries.batch_record:batch_records",
        (c.DEVIATION_NUMBER, c.TITLE, c.CLASSIFICATION, c.DEVIATION_STATUS, c.AWARENESS_AT,
         c.CLOSED_AT),
        hidden=("deviation_id",)),
    Dataset(
        "batch_record_capas", "CAPAs of the batch",
        "CAPAs raised from one batch's deviations or OOS investigations.",
        "warehouse.queries.batch_record:batch_records",
        (c.CAPA_NUMBER, c.TITLE, c.CAPA_SOURCE, c.CAPA_STATUS, c.OPENED_AT, c.CURRENT_DUE,
         c.CLOSED_AT, c.EFFECTIVENESS_RESULT)),
    Dataset(
        "batch_record_equipment", "Equipment and changeover cleaning",
        "Equipment one batch used, its calibration and qualification at use and the cleaning "
        "before each use.",
        "warehouse.queries.batch_record:batch_records",
        (c.USAGE_ID, c.EQUIPMENT_ID, c.EQUIPMENT, c.EQUIPMENT_TYPE, c.EQUIPMENT_STATUS,
         c.STARTED_AT, c.ENDED_AT, c.CALIBRATION_VALID, c.QUALIFICATION_VALID,
         c.LATEST_CALIBRATION_AT, c.LATEST_CALIBRATION_RESULT, c.LATEST_CALIBRATION_DUE,
         c.LATEST_QUALIFICATION_AT, c.LATEST_QUALIFICATION_RESULT, c.LATEST_QUALIFICATION_DUE,
         c.CLEANING_VERIFIED_AT, c.CLEANING_RESULT, c.PREVIOUS_ENDED_AT, c.PREVIOUS_OCCUPANT)),
    Dataset(
        "equipment_sharing", "Sponsors per equipment",
        "Per equipment, how many sponsors' batches used it in the period and how often the "
        "occupant changed from one sponsor to another.",
        "warehouse.queries.shared_equipment:equipment_sharing",
        (c.EQUIPMENT, c.EQUIPMENT_ID, c.EQUIPMENT_TYPE, c.TRAIN, c.EQUIPMENT_STATUS,
         c.SPONSOR_COUNT, c.SPONSOR_NAMES, c.SITE_USES, c.CROSS_SPONSOR_CHANGEOVERS,
         c.USES_LAPSED)),
    Dataset(
        "changeovers", "Changeovers between sponsors",
        "Every changeover from one sponsor's batch to another's on the same equipment, with "
        "the cleaning verified before it.",
        "warehouse.queries.shared_equipment:changeovers",
        (c.EQUIPMENT, c.EQUIPMENT_ID, c.TRAIN, c.FROM_SPONSOR, c.FROM_BATCH, c.FROM_ENDED_AT,
         c.TO_SPONSOR, c.TO_BATCH, c.NEXT_STARTED_AT, c.CLEANING_VERIFIED_AT,
         c.CLEANING_VERIFIED_BY, c.CLEANING_RESULT, c.CLEANING_OK, c.GAP_HOURS, c.USAGE_ID),
        hidden=("from_sponsor_id", "to_sponsor_id")),
    Dataset(
        "lapsed_in_use", "Equipment used while not fit for use",
        "Uses that started while the equipment's calibration or qualification was overdue or "
        "had failed, with whose batch.",
        "warehouse.queries.shared_equipment:lapsed_in_use",
        (c.EQUIPMENT, c.EQUIPMENT_ID, c.TRAIN, c.SPONSOR, c.BATCH_NUMBER, c.STARTED_AT,
         c.ENDED_AT, c.LAPSED, c.CALIBRATION_DUE_BEFORE_USE, c.QUALIFICATION_DUE_BEFORE_USE,
         c.CALIBRATION_VALID, c.LATEST_CALIBRATION_AT, c.LATEST_CALIBRATION_RESULT,
         c.LATEST_CALIBRATION_DUE, c.QUALIFICATION_VALID, c.LATEST_QUALIFICATION_AT,
         c.LATEST_QUALIFICATION_RESULT, c.LATEST_QUALIFICATION_DUE, c.WHY_UNFIT, c.USAGE_ID),
        hidden=("sponsor_id",)),
    Dataset(
        "vessel_week", "One equipment in one week",
        "This sponsor's own uses of one equipment in one week, whoever came before each only as "
        "another client unless it was its own batch (the BD demo tour).",
        "warehouse.queries.demo_tour:vessel_week",
        (c.BATCH_NUMBER, c.PRODUCT, c.STARTED_AT, c.ENDED_AT, c.PREVIOUS_OCCUPANT,
         c.CLEANING_VERIFIED_AT, c.CLEANING_RESULT)),
    Dataset(
        "users", "Users",
        "Every account of the portal, with its role, sponsor and validity.",
        "portal.users:users_frame",
        (c.USERNAME, c.USER_NAME, c.USER_ROLE, c.USER_SPONSOR, c.VALID_FROM, c.VALID_UNTIL,
         c.DISABLED)),
    Dataset(
        "access_log", "Access log",
        "Sign-ins, page views, exports and audit packs, newest first.",
        "portal.access_log:entries_frame",
        (c.LOGGED_AT, c.USERNAME, c.USER_ROLE, c.USER_SPONSOR, c.ACCESS_EVENT, c.LOGGED_PAGE,
         c.LOGGED_FILTERS, c.LOGGED_ROWS, c.CONTENT_HASH, c.LOGGED_DETAIL),
        hidden=("id",)),
    Dataset(
        "api_tokens", "Data-share tokens",
        "Tokens of the sponsor data share, live or not, by sponsor, label and age; never their "
        "secrets.",
        "portal.tokens:tokens_frame",
        (c.TOKEN_ID, c.TOKEN_SPONSOR, c.TOKEN_LABEL, c.TOKEN_STATE, c.TOKEN_EXPIRES,
         c.TOKEN_LAST_USED, c.TOKEN_CREATED_AT, c.TOKEN_CREATED_BY, c.TOKEN_REVOKED_AT,
         c.TOKEN_REVOKED_BY)),
    Dataset(
        "decisions", "Decisions signed in the portal",
        "The sponsor's decisions on changes, each an electronic signature, oldest first; a "
        "decision that replaces another names it.",
        "portal.decisions:decisions_frame",
        (c.DECISION_ID, c.DECIDED_RECORD, c.DECISION_ON, c.DECISION_MEANING, c.SIGNER_NAME,
         c.SIGNED_AT, c.QMS_RECORDED_AT, c.DECISION_REASON, c.SUPERSEDES, c.SIGNATURE,
         c.SIGNER, c.SIGNER_ZONE, c.SIGNED_CONTENT_HASH, c.SIGNED_SNAPSHOT, c.CHAIN_HASH),
        hidden=("record_id", "sponsor_id")),
    Dataset(
        "open_change_obligations", "Sponsor obligations on changes not yet met",
        "Changes not yet effective whose sponsor obligation is open, and decisions signed in "
        "the portal that the QMS has not recorded yet, with who signed what and when.",
        "portal.decision_panel:open_obligations",
        (c.SPONSOR_ID, c.CHANGE_NUMBER, c.PRODUCT, c.OBLIGATION, c.PLANNED_EFFECTIVE,
         c.OBLIGATION_STATE, c.SIGNER_NAME, c.SIGNED_AT, c.SIGNATURE, c.QMS_RECORDED_AT,
         c.TITLE),
        hidden=("impact_id",)),
    Dataset(
        "sponsor_health", "Sponsor health",
        "Per sponsor, the cockpit's health measures over the period (open deviations, overdue "
        "CAPAs and pending approvals as of today), each against its target.",
        "warehouse.queries.cockpit:health_table",
        (c.SPONSOR_ID, c.LOTS_STARTED, *(c.measure_column(key) for key in (
            "lot_acceptance_rate_fda", "lot_acceptance_rate_ispe", "right_first_time",
            "open_critical_deviations", "open_major_deviations", "open_minor_deviations",
            "overdue_capas", "pending_change_approvals", "notification_timeliness",
            "disposition_cycle_time", "disposition_cycle_time_p90")), c.LEAST_COMPLETE)),
    Dataset(
        "sponsor_health_glance", "Sponsor health at a glance",
        "Per sponsor, how many health measures meet their target and which need attention.",
        "warehouse.queries.cockpit:health_glance",
        (c.SPONSOR_ID, c.LOTS_STARTED, c.TARGETS_MET, c.NEEDS_ATTENTION, c.LEAST_COMPLETE)),
    Dataset(
        "kpi_comparison", "KPIs side by side",
        "Every cockpit KPI for the whole site and for each sponsor, with its data completeness.",
        "warehouse.queries.cockpit:kpi_comparison",
        (c.KPI, c.POPULATION, c.KPI_RESULT, c.KPI_FORMULA)),
    Dataset(
        "kpi_trend", "KPI by month",
        "One KPI per calendar month of the period for the site and each sponsor.",
        "warehouse.queries.cockpit:monthly_trend",
        (c.MONTH, c.POPULATION, c.KPI_VALUE, c.KPI_COMPLETENESS)),
)
# fmt: on

DATASETS_BY_NAME: dict[str, Dataset] = {d.name: d for d in DATASETS}

# Datasets a sponsor's IT reads through the data share's REST API (/api/v1): the sponsor's
# own rows, each produced from its confined scope by a query taking (scope[, filters[,
# today]]). CMO-wide views (shared equipment, the cockpit) and portal records are not here.
SPONSOR_API_DATASETS: tuple[str, ...] = (
    "batches", "deviations", "oos_investigations", "capas", "change_controls", "complaints",
    "equipment", "equipment_invalid_uses", "material_lots", "training_matrix", "training_gaps",
    "tech_transfer_projects", "notifiable_events", "quality_agreement", "awaiting_release",
    "open_deviations", "overdue_capas", "changes_awaiting_sponsor",
)  # fmt: skip


def dataset(name: str) -> Dataset:
    """The catalogue's dataset `name`."""
    try:
        return DATASETS_BY_NAME[name]
    except KeyError:
        raise CatalogueError(f"no dataset {name!r} in the catalogue") from None
