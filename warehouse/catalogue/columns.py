"""Every column users read, declared once: label, one-line description, format, words for
each code, and whether it is a key column that stays in view.

A column's meaning is tied to the record it describes, not to its name: `status` of a batch
and `status` of a CAPA are two declarations with their own words. Code lists come from the
snapshot contract (warehouse.contract); only codes a query derives itself (a training never
taken, a project not started) are added here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from warehouse import contract
from warehouse.catalogue.measures import MEASURES
from warehouse.contract import (
    BATCH_EVENT_TYPES,
    BATCH_STATUSES,
    CAPA_SOURCES,
    CAPA_STATUSES,
    CHANGE_STATUSES,
    CHANGE_TYPES,
    DEVIATION_STATUSES,
    NOTIFIABLE_EVENTS,
    OBLIGATIONS,
    ROOT_CAUSES,
    SEVERITIES,
    TECH_TRANSFER_MILESTONES,
)

# How a value reads; pages, exports and the audit pack format by it.
FORMATS = {
    "text": "free text or a name",
    "id": "an identifier or record number",
    "code": "one of a fixed list of codes, shown in words",
    "date": "a calendar day (YYYY-MM-DD)",
    "datetime": "a moment to the minute (YYYY-MM-DD HH:MM)",
    "days": "a number of days",
    "weeks": "a number of weeks",
    "hours": "a number of hours",
    "count": "a number of records",
    "number": "a measured or version number",
    "flag": "yes or no",
}


@dataclass(frozen=True, eq=False)
class Column:
    """One column as users read it, wherever it is shown, exported or packed."""

    name: str  # the column's name in a query's rows
    label: str
    description: str
    format: str  # one of FORMATS
    words: dict[str, str] = field(default_factory=dict)  # code -> words (format "code")
    key: bool = False  # identifies the row: pinned first, stays in view when scrolling
    export_code: bool = False  # exports and the API also carry the raw code, as "<label> code"

    def word(self, code: str | None) -> str | None:
        """The words for `code` (the code itself when the column has no words for it)."""
        return None if code is None else self.words.get(code, code)

    @property
    def code_label(self) -> str:
        return f"{self.label} code"

    @property
    def ordered_words(self) -> list[str]:
        """The words of every code, in the contract's order of the codes (a chart's order)."""
        return list(self.words.values())


def words(codes: Iterable[str], **special: str) -> dict[str, str]:
    """Words for every code of a contract enum: `special` as given, any other code as a
    sentence ("ON_HOLD" -> "On hold"). Naming a code the enum lacks is an error."""
    codes = tuple(codes)
    unknown = sorted(set(special) - set(codes))
    if unknown:
        raise ValueError(f"words for codes the contract does not have: {unknown}")
    return {code: special.get(code) or code.replace("_", " ").capitalize() for code in codes}


def enum(table: str, column: str) -> tuple[str, ...]:
    """The contract's codes of `table.column`."""
    codes = contract.table(table).column(column).enum
    if codes is None:
        raise ValueError(f"{table}.{column} is not an enum of the contract")
    return codes


# Codes a query derives beyond the contract's.
# warehouse.queries.compliance: the kind of each broken clock, and each notifiable event's.
BREACH_KINDS = (
    "NOTIFICATION_LATE",
    "CHANGE_EFFECTIVE_BEFORE_APPROVAL",
    "CHANGE_EFFECTIVE_BEFORE_NOTIFICATION",
    "CHANGE_OBLIGATION_BELOW_AGREEMENT",
)
NOTIFIABLE_EVENT_KINDS = ("DEVIATION", "OOS", "COMPLAINT")
# warehouse.queries.batch_record: the kind of each review-by-exception finding.
BATCH_RECORD_EXCEPTION_KINDS = (
    "SUPPLIER_CONDITIONAL", "SUPPLIER_DISQUALIFIED", "CALIBRATION_FAILED_IN_USE",
    "CALIBRATION_OVERDUE_IN_USE", "QUALIFICATION_FAILED_IN_USE", "QUALIFICATION_INVALID_IN_USE",
    "LATE_ENTRY", "MISSING_VERIFIER", "SELF_VERIFICATION", "OUT_OF_ORDER", "TRAINING_GAP",
    "OUT_OF_SEQUENCE", "OUTSIDE_BATCH_WINDOW", "OOS_OPEN", "OOS_CONFIRMED", "OOS_INVALIDATED",
    "DISPOSITION_WITH_OPEN_DEVIATION", "DISPOSITION_WITH_OPEN_OOS", "QA_REVIEW_MISSING",
)  # fmt: skip
# warehouse.kpis.notification_outcomes (DOMAIN.md KPI 16).
NOTIFICATION_OUTCOMES = ("on time", "late", "not notified", "not yet due")
TRAINING_STATUSES = (*enum("training_record", "status"), "MISSING")
# warehouse.queries.deviations maps the contract's OOS outcome to these (none yet: open).
OOS_OUTCOMES = ("confirmed", "invalidated", "inconclusive", "open")

BATCH_STATUS_WORDS = words(
    BATCH_STATUSES,
    MFG_COMPLETE="Manufacturing complete",
    QC_TESTING="QC testing",
    BR_REVIEW="Batch record review",
    CMO_DISPOSITIONED="Dispositioned by CMO",
    SPONSOR_RELEASED="Released by sponsor",
)
CHANGE_TYPE_WORDS = words(CHANGE_TYPES, SOP="SOP")
MILESTONE_WORDS = words(
    TECH_TRANSFER_MILESTONES,
    KICKOFF="Kickoff & knowledge package",
    GAP_RISK_ASSESSMENT="Gap & risk assessment",
    BOM_SOURCING="BOM & sourcing",
    METHOD_TRANSFER="Analytical method transfer",
    MBR_APPROVED="MMR/MBR approved",
    SOPS_UPDATED="SOPs updated",
    GMP_BATCH="GMP batch",
    PPQ="Process performance qualification (PPQ)",
    STABILITY_FILING="Stability & filing",
)
EVENT_SUBJECT_WORDS = words(
    NOTIFIABLE_EVENTS,
    DEVIATION_CRITICAL="Critical deviation",
    DEVIATION_MAJOR="Major deviation",
    DEVIATION_MINOR="Minor deviation",
    OOS_CONFIRMED="Confirmed OOS",
    COMPLAINT_CRITICAL="Critical complaint",
)
OBLIGATION_WORDS = words(OBLIGATIONS, NONE="Record only", NOTIFY="Notification")
# A project's phase before it reached any milestone (warehouse.queries.tech_transfer).
PHASE_WORDS = MILESTONE_WORDS | {"NOT_STARTED": "Not started"}

# --- shared by many records -------------------------------------------------------------------

TITLE = Column("title", "Title", "The record's title as written in the CMO's quality system.",
               "text")  # fmt: skip
PRODUCT = Column("product", "Product", "Name of the sponsor product.", "text")
BATCH_NUMBER = Column(
    "batch_number", "Batch", "The batch (lot) number the CMO gave the batch.", "id", key=True
)
NOTIFIED_AT = Column(
    "notified_at", "Sponsor notified", "When the CMO notified the sponsor; blank: not yet.",
    "datetime",
)  # fmt: skip
CLOSED_AT = Column("closed_at", "Closed", "When the record was closed; blank while open.",
                   "datetime")  # fmt: skip
OPENED_AT = Column("opened_at", "Opened", "When the record was opened.", "datetime")
ORIGINAL_DUE = Column(
    "original_due", "Original due", "The due date set when the record was opened.", "date"
)
CURRENT_DUE = Column(
    "current_due", "Current due", "The due date after any approved extensions.", "date"
)
EXTENSION_COUNT = Column(
    "extension_count", "Extensions", "How many times the due date was extended.", "count"
)
AGE_DAYS = Column(
    "age_days", "Age (days)", "Days from opening (deviations: awareness) to today; blank once "
    "closed.", "days",
)  # fmt: skip
OPERATOR = Column("operator", "Operator", "The CMO operator's name.", "text", key=True)
PERFORMED_BY = Column("operator", "Performed by", "Name of the operator who performed the step.",
                      "text")  # fmt: skip
SEQ = Column("seq", "Step #", "Position of the step in the executed batch record.", "number")
STEP_NAME = Column("step_name", "Step", "Name of the batch-record step.", "text")
PERFORMED_AT = Column(
    "performed_at", "Performed", "When the operator says the step was performed.", "datetime"
)

# --- batches ------------------------------------------------------------------------------------

BATCH_STATUS = Column(
    "status", "Status", "Where the batch is in its lifecycle (DOMAIN.md, Batch lifecycle).",
    "code", BATCH_STATUS_WORDS, export_code=True,
)  # fmt: skip
MFG_START = Column("mfg_start", "Mfg start", "Day manufacture of the batch started.", "date")
MFG_END = Column("mfg_end", "Mfg end", "Day manufacture of the batch ended.", "date")
CMO_DECISION = Column(
    "cmo_decision", "CMO decision", "The CMO's QA disposition of its own operations' output.",
    "code", words(enum("batch", "cmo_decision")),
)  # fmt: skip
CMO_DECIDED_AT = Column(
    "cmo_decided_at", "CMO decided", "Day the CMO's QA dispositioned the batch.", "date"
)
SPONSOR_DECISION = Column(
    "sponsor_decision", "Sponsor decision", "The sponsor's final release decision on the batch.",
    "code", words(enum("batch", "sponsor_decision")),
)  # fmt: skip
SPONSOR_DECIDED_AT = Column(
    "sponsor_decided_at", "Sponsor decided", "Day the sponsor decided on the batch.", "date"
)
CYCLE_TIME_DAYS = Column(
    "cycle_time_days", "Cycle time (days)", "Sponsor decision − manufacturing end, in days "
    "(DOMAIN.md KPI 13).", "days",
)  # fmt: skip
AWAITING_RELEASE_DAYS = Column(
    "awaiting_release_days", "Awaiting release (days)", "Days since the CMO released the batch "
    "while it waits for the sponsor's decision; blank when not waiting.", "days",
)  # fmt: skip
STATUS_STAGE = Column(
    "status", "Status", "A lifecycle status (DOMAIN.md, Batch lifecycle).", "code",
    BATCH_STATUS_WORDS, key=True,
)  # fmt: skip
BATCHES_PER_STATUS = Column("batches", "Batches", "Batches in this status.", "count")

# --- CAPAs --------------------------------------------------------------------------------------

CAPA_NUMBER = Column("capa_number", "CAPA", "The CAPA's number in the CMO's quality system.",
                     "id", key=True)  # fmt: skip
CAPA_SOURCE = Column(
    "source_type", "Source", "The kind of record that raised the CAPA.", "code",
    words(CAPA_SOURCES, OOS="OOS", SELF_INSPECTION="Self-inspection"),
)  # fmt: skip
CAPA_SOURCE_RECORD = Column(
    "source_record", "Source record", "Number of the deviation, OOS batch, complaint or finding "
    "that raised the CAPA.", "id",
)  # fmt: skip
CAPA_STATUS = Column(
    "status", "Status", "Where the CAPA is in its lifecycle.", "code",
    words(CAPA_STATUSES, PENDING_EFFECTIVENESS="Pending effectiveness check"), export_code=True,
)  # fmt: skip
EFFECTIVENESS_WORDS = words(enum("capa_effectiveness", "result"))
CLOSED_ON_TIME_ORIGINAL = Column(
    "closed_on_time_original", "On time (original due)", "Closed by its original due date "
    "(DOMAIN.md KPI 9); blank while open.", "flag",
)  # fmt: skip
CLOSED_ON_TIME_CURRENT = Column(
    "closed_on_time_current", "On time (current due)", "Closed by its current (extended) due "
    "date (DOMAIN.md KPI 9); blank while open.", "flag",
)  # fmt: skip
EFFECTIVENESS_RESULT = Column(
    "effectiveness_result", "Effectiveness", "Result of the latest effectiveness check; blank "
    "before one is done.", "code", EFFECTIVENESS_WORDS,
)  # fmt: skip
CAPA_OVERDUE = Column(
    "overdue", "Overdue", "Open and today past its current due date (measure overdue_capas).",
    "flag",
)  # fmt: skip
DAYS_OVERDUE = Column(
    "days_overdue", "Days overdue", "Days today is past the current due date of an overdue CAPA.",
    "days",
)  # fmt: skip
PREVIOUS_DUE = Column("previous_due", "Previous due", "Due date before this extension.", "date")
NEW_DUE = Column("new_due", "New due", "Due date this extension set.", "date")
DAYS_ADDED = Column("days_added", "Days added", "New due − previous due, in days.", "days")
EXTENSION_REASON = Column("reason", "Reason", "Why the extension was approved.", "text")
APPROVED_AT = Column("approved_at", "Approved", "When the extension was approved.", "datetime")
CHECKED_AT = Column("checked_at", "Checked", "When the effectiveness check was done.", "datetime")
CHECK_RESULT = Column(
    "result", "Result", "Whether the CAPA was judged effective.", "code", EFFECTIVENESS_WORDS
)
AGE_BUCKET = Column(
    "bucket", "Age (days)", "Age band of open CAPAs (DOMAIN.md KPI 10).", "text", key=True
)
OVERDUE_IN_BUCKET = Column(
    "overdue", "Overdue", "Open CAPAs in the band past their current due date.", "count"
)
NOT_OVERDUE_IN_BUCKET = Column(
    "not_overdue", "Not overdue", "Open CAPAs in the band not yet past their current due date.",
    "count",
)  # fmt: skip

# --- deviations and OOS -------------------------------------------------------------------------

DEVIATION_NUMBER = Column(
    "deviation_number", "Deviation", "The deviation's number in the CMO's quality system.", "id",
    key=True,
)  # fmt: skip
CLASSIFICATION = Column(
    "classification", "Class", "Severity class of the deviation.", "code", words(SEVERITIES)
)
DEVIATION_STATUS = Column(
    "status", "Status", "Where the deviation is in its lifecycle.", "code",
    words(DEVIATION_STATUSES, PENDING_QA="Pending QA"),
)  # fmt: skip
AWARENESS_AT = Column(
    "awareness_at", "Awareness", "When the CMO became aware of the deviation; its clocks start "
    "here.", "datetime",
)  # fmt: skip
CLOSED_ON_TIME = Column(
    "closed_on_time", "Closed on time", "Closed by its original due date (DOMAIN.md KPI 8); "
    "blank while open.", "flag",
)  # fmt: skip
ROOT_CAUSE = Column(
    "root_cause_category", "Root cause", "Category of the root cause found by the investigation.",
    "code", words(ROOT_CAUSES),
)  # fmt: skip
RECURRENCE_OF = Column(
    "recurrence_of", "Recurrence of", "The earlier deviation this one recurs, or that it recurs "
    "one of another client (nothing of that deviation is shown).", "text",
)  # fmt: skip
IS_RECURRENCE = Column(
    "is_recurrence", "Recurs within 12 months", "Recurs a deviation raised in the 12 months "
    "before it, whoever that one touched (DOMAIN.md KPI 7).", "flag",
)  # fmt: skip
DEVIATION_OVERDUE = Column(
    "overdue", "Overdue", "Open and today past its current due date.", "flag"
)
DEVIATION_PRODUCTS = Column(
    "products", "Products", "This sponsor's products the deviation touches.", "text"
)
DEVIATION_BATCHES = Column(
    "batches", "Batches", "This sponsor's batches the deviation touches.", "text"
)
NOTIFIED_LATE = Column(
    "notified_late", "Notified late", "This sponsor was notified after the quality agreement's "
    "deadline.", "flag",
)  # fmt: skip
TEST_TYPE = Column(
    "test_type", "Test type", "Release, long-term stability or in-process test.", "code",
    words(enum("test_result", "test_type"), LT_STABILITY="Long-term stability",
          IPC="In-process control"),
)  # fmt: skip
TEST_NAME = Column("test_name", "Test", "Name of the test.", "text")
RESULT_VALUE = Column("result_value", "Result", "The measured result.", "number")
SPEC_LOW = Column("spec_low", "Spec low", "Lower specification limit.", "number")
SPEC_HIGH = Column("spec_high", "Spec high", "Upper specification limit.", "number")
UNIT = Column("unit", "Unit", "Unit of the result and limits.", "text")
OOS_PHASE = Column(
    "phase", "Phase", "Investigation phase: I (laboratory) or II (full-scale).", "code",
    words(enum("oos_investigation", "phase"), I="Phase I", II="Phase II"),
)  # fmt: skip
OOS_OUTCOME = Column(
    "outcome", "Outcome", "Conclusion of the OOS investigation; open while none yet.", "code",
    words(OOS_OUTCOMES, invalidated="Invalidated (laboratory error)"),
)  # fmt: skip
OOS_SUMMARY = Column(
    "summary", "Investigation summary", "The investigation's summary as recorded.", "text"
)

# --- change control -----------------------------------------------------------------------------

CHANGE_NUMBER = Column(
    "change_number", "Change", "The change control's number in the CMO's quality system.", "id",
    key=True,
)  # fmt: skip
CHANGE_TYPE = Column("change_type", "Change type", "What the change alters.", "code",
                     CHANGE_TYPE_WORDS)  # fmt: skip
RISK_CLASS = Column(
    "risk_class", "Risk", "ICH Q9 risk class of the change.", "code",
    words(enum("change_control", "risk_class")),
)  # fmt: skip
CHANGE_STATUS = Column(
    "status", "Status", "Where the change control is in its lifecycle.", "code",
    words(CHANGE_STATUSES, SPONSOR_REVIEW="Sponsor review", EFFECTIVENESS="Effectiveness check"),
)  # fmt: skip
OBLIGATION = Column(
    "obligation", "Obligation", "What the sponsor's quality agreement requires before the change "
    "goes effective.", "code", OBLIGATION_WORDS, export_code=True,
)  # fmt: skip
OBLIGATION_REQUIRED = Column(
    "obligation_required", "Obligation by agreement", "What the sponsor's quality agreement sets "
    "for this type of change; blank when it sets nothing.", "code", OBLIGATION_WORDS,
)  # fmt: skip
OBLIGATION_BELOW_AGREEMENT = Column(
    "obligation_below_agreement", "Weaker than agreement", "The change was recorded with a "
    "weaker obligation than the sponsor's quality agreement requires (a breach).", "flag",
)  # fmt: skip
IMPACT_DECISION = Column(
    "decision", "Sponsor decision", "The sponsor's decision on a change awaiting its approval.",
    "code", words(enum("change_impact", "decision")),
)  # fmt: skip
DECIDED_AT = Column("decided_at", "Decided", "When the sponsor decided.", "datetime")
PLANNED_EFFECTIVE = Column(
    "planned_effective", "Planned effective", "Day the change is planned to go effective.", "date"
)
ACTUAL_EFFECTIVE = Column(
    "actual_effective", "Actual effective", "Day the change went effective.", "date"
)
CHANGE_MARKETS = Column(
    "markets", "Reporting category per market", "ICH Q12 reporting category of the change in "
    "each market of the product.", "text",
)  # fmt: skip
AWAITING_SPONSOR = Column(
    "awaiting_sponsor", "Awaiting sponsor", "The change waits for this sponsor's approval or "
    "acknowledgement.", "flag",
)  # fmt: skip
DAYS_TO_PLANNED = Column(
    "days_to_planned", "Days to planned effective", "Days from today to the planned effective "
    "day.", "days",
)  # fmt: skip
VIOLATION = Column(
    "violation", "Violation", "The change went effective before the approval or notification "
    "the agreement requires, or after the sponsor rejected it.", "flag",
)  # fmt: skip
VIOLATION_REASON = Column("violation_reason", "Violation reason", "What the violation was.",
                          "text")  # fmt: skip
IMPACT_ID = Column("impact_id", "Impact ID", "Identifier of this sponsor's impact row.", "id")

# --- training -----------------------------------------------------------------------------------

ROLE = Column("role", "Role", "The operator's role at the CMO.", "text")
SOP_NUMBER = Column("sop_number", "SOP", "Number of the standard operating procedure.", "id",
                    key=True)  # fmt: skip
SOP_TITLE = Column("sop_title", "SOP title", "Title of the SOP.", "text")
SOP_VERSION = Column("sop_version", "SOP version", "The SOP's current version.", "number")
TRAINED_VERSION = Column(
    "trained_version", "Trained on version", "SOP version of the operator's latest training; "
    "blank: never trained.", "number",
)  # fmt: skip
TRAINED_AT = Column("trained_at", "Trained", "Day of the operator's latest training.", "date")
DUE_AT = Column("due_at", "Retraining due", "Day the training must be renewed.", "date")
TRAINING_STATUS = Column(
    "status", "Training status", "Current, due within the retraining window, overdue, or never "
    "trained on the SOP.", "code",
    words(TRAINING_STATUSES, DUE="Due soon", MISSING="Not trained"),
)  # fmt: skip
EVENT_TYPE = Column(
    "event_type", "Event type", "Kind of batch-record entry.", "code",
    words(BATCH_EVENT_TYPES, IPC="In-process control", SIGN="Signature"),
)  # fmt: skip
EVENT_ID = Column("event_id", "Event ID", "Identifier of the batch-record entry.", "id")

# --- equipment, suppliers and materials ---------------------------------------------------------

EQUIPMENT = Column("equipment", "Equipment", "Name of the equipment.", "text", key=True)
EQUIPMENT_TYPE = Column("equipment_type", "Type", "Kind of equipment.", "text")
TRAIN = Column("train", "Train", "Equipment train the equipment belongs to.", "text")
EQUIPMENT_STATUS = Column(
    "status", "Status", "Qualification state of the equipment today.", "code",
    words(enum("equipment", "status"), DUE="Requalification due",
          OVERDUE="Requalification overdue"),
)  # fmt: skip
LAST_QUALIFICATION = Column(
    "last_qualification", "Last qualification", "Latest passed qualification.", "datetime"
)
LAST_CALIBRATION = Column(
    "last_calibration", "Last calibration", "Latest passed calibration.", "datetime"
)
CALIBRATION_DUE = Column(
    "calibration_due", "Calibration due", "Day the next calibration is due.", "date"
)
CALIBRATION_OVERDUE = Column(
    "calibration_overdue", "Calibration overdue", "Today past the calibration due day.", "flag"
)
USES = Column("uses", "Uses", "Uses of the equipment by these batches in the period.", "count")
USES_NOT_VALID = Column(
    "uses_not_valid", "Uses not valid", "Uses that started while calibration or qualification "
    "was not valid.", "count",
)  # fmt: skip
STARTED_AT = Column("started_at", "Started", "When the use of the equipment started.", "datetime")
CALIBRATION_VALID = Column(
    "calibration_valid_at_use", "Calibration valid", "Calibration was valid when the use "
    "started.", "flag",
)  # fmt: skip
QUALIFICATION_VALID = Column(
    "qualification_valid_at_use", "Qualification valid", "Qualification was valid when the use "
    "started.", "flag",
)  # fmt: skip
USAGE_ID = Column("usage_id", "Use ID", "Identifier of the equipment use.", "id")
SUPPLIER = Column("supplier", "Supplier", "Name of the material supplier.", "text", key=True)
SUPPLIER_STATUS = Column(
    "supplier_status", "Supplier qualification", "The supplier's qualification today.", "code",
    words(enum("supplier", "status"), CONDITIONAL="Conditionally approved"),
)  # fmt: skip
LOTS_CONSUMED = Column(
    "lots_consumed", "Lots consumed", "The supplier's lots these batches consumed.", "count"
)
MATERIALS = Column("materials", "Materials", "Materials of those lots.", "text")
LOT_ID = Column("lot_id", "Lot", "The material lot's identifier.", "id", key=True)
MATERIAL_NAME = Column("material_name", "Material", "Name of the material.", "text")
RECEIVED_AT = Column("received_at", "Received", "When the lot (or complaint) was received.",
                     "datetime")  # fmt: skip
RELEASE_STATUS = Column(
    "release_status", "Lot status", "QC release status of the lot.", "code",
    words(enum("material_lot", "release_status")),
)  # fmt: skip
COA_RECEIVED = Column(
    "coa_received", "CoA received", "The supplier's certificate of analysis was received.", "flag"
)
BATCHES_CONSUMING = Column("batches", "Batches", "These batches that consumed the lot.", "count")
BATCH_NUMBERS = Column("batch_numbers", "Batch numbers", "Numbers of those batches.", "text")

# --- tech transfer ------------------------------------------------------------------------------

PROJECT_ID = Column("project_id", "Project", "The transfer project's identifier.", "id", key=True)
MODALITY = Column(
    "modality", "Modality", "Kind of product.", "code",
    words(enum("product", "modality"), OSD="Oral solid dose",
          STERILE_FILL_FINISH="Sterile fill-finish"),
)  # fmt: skip
CONTRACT_SIGNED_AT = Column(
    "contract_signed_at", "Contract signed", "Day the transfer contract was signed.", "date"
)
PROJECT_STATUS = Column(
    "status", "Status", "State of the transfer project.", "code",
    words(enum("tech_transfer", "status")),
)  # fmt: skip
CURRENT_PHASE = Column(
    "current_phase", "Last milestone reached", "The latest milestone with an actual date.",
    "code", PHASE_WORDS,
)  # fmt: skip
NEXT_MILESTONE = Column(
    "next_milestone", "Next milestone", "The first milestone not reached yet.", "code",
    MILESTONE_WORDS,
)  # fmt: skip
NEXT_PLANNED = Column("next_planned", "Next planned", "Planned day of the next milestone.",
                      "date")  # fmt: skip
MILESTONES_LATE = Column(
    "milestones_late", "Milestones late", "Milestones not reached by their planned day.", "count"
)
PLANNED_WEEKS = Column(
    "planned_weeks_to_engineering_batch", "Planned weeks to engineering batch", "Weeks from "
    "contract to the planned engineering batch.", "weeks",
)  # fmt: skip
ACTUAL_WEEKS = Column(
    "weeks_to_engineering_batch", "Weeks to engineering batch", "Weeks from contract to the "
    "engineering batch; blank until it ran.", "weeks",
)  # fmt: skip
WITHIN_BENCHMARK = Column(
    "within_benchmark", "Within benchmark", "Engineering batch reached within the good-platform "
    "benchmark of DOMAIN.md (shown on the weeks chart).", "flag",
)  # fmt: skip
MILESTONE_SEQ = Column("seq", "Milestone #", "Position of the milestone in the project.",
                       "number")  # fmt: skip
MILESTONE = Column("milestone", "Milestone", "The tech-transfer milestone.", "code",
                   MILESTONE_WORDS)  # fmt: skip
PLANNED_AT = Column("planned_at", "Planned", "Planned day of the milestone.", "date")
ACTUAL_AT = Column("actual_at", "Actual", "Day the milestone was reached.", "date")
SLIP_DAYS = Column(
    "slip_days", "Slip (days)", "Actual (or, if late and not reached, today) − planned, in days.",
    "days",
)  # fmt: skip

# --- quality agreement, complaints, products, review by exception -----------------------------

AGREEMENT_ID = Column("agreement_id", "Agreement", "The quality agreement's identifier.", "id",
                      key=True)  # fmt: skip
AGREEMENT_VERSION = Column("version", "Version", "Version of the quality agreement.", "number")
EFFECTIVE_FROM = Column("effective_from", "Effective from", "Day this version took effect.",
                        "date")  # fmt: skip
TERM_TYPE = Column(
    "term_type", "Term", "A notification deadline or a change obligation.", "code",
    words(enum("agreement_term", "term_type"), NOTIFICATION="Notification deadline",
          CHANGE="Change obligation"),
)  # fmt: skip
TERM_SUBJECT = Column(
    "subject", "Subject", "The event or change type the term covers.", "code",
    EVENT_SUBJECT_WORDS | CHANGE_TYPE_WORDS,
)  # fmt: skip
DEADLINE_HOURS = Column(
    "deadline_hours", "Deadline (h)", "Hours the CMO has to notify the sponsor.", "hours"
)
TERM_OBLIGATION = Column(
    "obligation", "Obligation", "What the agreement requires for this change type.", "code",
    OBLIGATION_WORDS,
)  # fmt: skip
COMPLAINT_NUMBER = Column(
    "complaint_number", "Complaint", "The complaint's number in the CMO's quality system.", "id",
    key=True,
)  # fmt: skip
IS_CRITICAL = Column("is_critical", "Critical", "The complaint is critical.", "flag")
CONFIRMED = Column("confirmed", "Confirmed", "The complaint was confirmed.", "flag")
PRODUCT_ID = Column("product_id", "Product ID", "The product's identifier.", "id", key=True)
PRODUCT_NAME = Column("name", "Product", "Name of the product.", "text")
DOSAGE_FORM = Column("dosage_form", "Dosage form", "Dosage form of the product.", "text")
PRODUCT_MARKETS = Column("markets", "Markets", "Markets the product's labeling serves.", "text")
EXCEPTION_KIND = Column(
    "kind", "Kind", "Which data-integrity check found it.", "code",
    words(BATCH_RECORD_EXCEPTION_KINDS,
          SUPPLIER_CONDITIONAL="Supplier conditionally approved",
          SUPPLIER_DISQUALIFIED="Supplier disqualified",
          CALIBRATION_FAILED_IN_USE="Used after a failed calibration",
          CALIBRATION_OVERDUE_IN_USE="Used without a valid calibration",
          QUALIFICATION_FAILED_IN_USE="Used after a failed qualification",
          QUALIFICATION_INVALID_IN_USE="Used without a valid qualification",
          SELF_VERIFICATION="Self-verification",
          OUT_OF_ORDER="Verified before performed",
          OUT_OF_SEQUENCE="Performed before an earlier step",
          OUTSIDE_BATCH_WINDOW="Performed outside the batch",
          OOS_OPEN="OOS not concluded", OOS_CONFIRMED="Confirmed OOS",
          OOS_INVALIDATED="Invalidated OOS",
          DISPOSITION_WITH_OPEN_DEVIATION="Dispositioned with an open deviation",
          DISPOSITION_WITH_OPEN_OOS="Dispositioned with an open OOS",
          QA_REVIEW_MISSING="No QA review before disposition"),
    key=True, export_code=True,
)  # fmt: skip
EXCEPTION_RECORD = Column(
    "record", "Record", "Identifier of the entry, test, lot, use or deviation it points at.", "id"
)
EXCEPTION = Column("exception", "Finding", "The exception in one sentence.", "text")

# --- quality-agreement compliance -------------------------------------------------------------

SPONSOR = Column("sponsor", "Sponsor", "Name of the sponsor.", "text", key=True)
BREACH_KIND = Column(
    "kind", "Breach", "Which clock or obligation of the quality agreement was broken.", "code",
    words(BREACH_KINDS, NOTIFICATION_LATE="Notified late",
          CHANGE_EFFECTIVE_BEFORE_APPROVAL="Change effective before approval",
          CHANGE_EFFECTIVE_BEFORE_NOTIFICATION="Change effective before notification",
          CHANGE_OBLIGATION_BELOW_AGREEMENT="Change recorded below the agreement"),
    export_code=True,
)  # fmt: skip
BREACH_RECORD = Column(
    "record", "Record", "Number of the deviation, OOS investigation, complaint or change.", "id"
)
BREACH_TERM = Column(
    "subject", "Agreement term", "The notification clock or change obligation the agreement "
    "sets.", "code", EVENT_SUBJECT_WORDS | OBLIGATION_WORDS,
)  # fmt: skip
BREACH_CLOCK = Column("clock", "Clock", "The agreed clock or obligation, in words.", "text")
BROKEN_BY = Column("broken_by", "What happened", "How the clock or obligation was broken.",
                   "text")  # fmt: skip
RECORD_KEY = Column(
    "record_key", "Key", "Identifier of the deviation link, OOS, complaint or change impact.",
    "id",
)  # fmt: skip
NOTIFIABLE_EVENT = Column(
    "event", "Event", "Kind of notifiable event.", "code",
    words(NOTIFIABLE_EVENT_KINDS, OOS="Confirmed OOS", COMPLAINT="Critical complaint"),
)  # fmt: skip
EVENT_TERM = Column(
    "subject", "Agreement term", "The agreement's notification clock the event falls under.",
    "code", EVENT_SUBJECT_WORDS,
)  # fmt: skip
EVENT_RECORD = Column(
    "record", "Record", "Number of the deviation, OOS investigation or complaint.", "id"
)
CLOCK_STARTED = Column("occurred_at", "Clock started", "When the notification clock started.",
                       "datetime")  # fmt: skip
CLOCK_FROM = Column(
    "clock_from", "Clock from", "What starts the clock: awareness, investigation opened or "
    "receipt.", "text",
)  # fmt: skip
DEADLINE_AT = Column("deadline_at", "Due", "When the notification was due.", "datetime")
NOTIFICATION_OUTCOME = Column(
    "outcome", "Outcome", "Notified on time, late, not notified once due, or not yet due "
    "(DOMAIN.md KPI 16).", "code", words(NOTIFICATION_OUTCOMES),
)  # fmt: skip
# Shares kept per sponsor (warehouse.queries.compliance.sponsor_compliance), one column each.
COMPLIANCE_SHARES = tuple(
    Column(name, name, f"{what} (kept ÷ counted, or why the share is not reliable).", "text")
    for name, what in (
        ("Deviations", "Deviation notifications within the agreed clock"),
        ("Confirmed OOS", "Confirmed OOS notifications within the agreed clock"),
        ("Critical complaints", "Critical complaint notifications within the agreed clock"),
        ("All notifications (KPI 16)", "All notifications within the agreed clock"),
        ("Prior-approval changes (KPI 14)", "Prior-approval changes approved before effective"),
        ("Notified changes", "Notification changes notified before effective"),
    )
)
# Each sponsor's agreed clocks and change obligations, one column per term subject.
AGREED_CLOCKS = tuple(
    Column(code, word, f"Hours the CMO has to notify the sponsor of this event ({word}).", "hours")
    for code, word in EVENT_SUBJECT_WORDS.items()
)
AGREED_OBLIGATIONS = tuple(
    Column(code, f"{word} changes", f"What the agreement requires for this change type ({word}).",
           "code", OBLIGATION_WORDS)
    for code, word in CHANGE_TYPE_WORDS.items()
)  # fmt: skip

# --- overview: what needs the sponsor's attention today ---------------------------------------

DAYS_WAITING = Column(
    "days_waiting", "Days waiting", "Days since the CMO released the batch while it waits for "
    "the sponsor's decision.", "days",
)  # fmt: skip
CHANGE_STATUS_OF_IMPACT = Column(
    "change_status", "Change status", "Where the change control is in its lifecycle.", "code",
    CHANGE_STATUS.words,
)  # fmt: skip
AWAITING = Column(
    "awaiting", "Awaiting from the sponsor", "What the change waits for from the sponsor: "
    "approval or acknowledgement.", "text",
)  # fmt: skip
DI_SUBJECT = Column(
    "step_name", "Step, equipment or change", "The batch-record step, the disposition, the "
    "equipment used or the change the exception is about.", "text",
)  # fmt: skip
DI_OCCURRED_AT = Column("occurred_at", "When", "When the flagged entry, use or change happened.",
                        "datetime")  # fmt: skip

# --- one batch record, section by section (warehouse.queries.batch_record) --------------------

QUANTITY = Column("quantity", "Qty", "Quantity of the lot the batch consumed.", "number")
STEP_SEQ = Column(
    "seq", "Step #", "Position of the step in the executed batch record.", "number", key=True
)
STEP_PERFORMER_ID = Column(
    "performed_by", "Performed by", "Operator ID of who performed the step.", "id"
)
STEP_PERFORMER = Column("performer", "Performer", "Name of who performed the step.", "text")
RECORDED_AT = Column(
    "recorded_at", "Recorded", "When the step was entered in the record.", "datetime"
)
STEP_VERIFIER_ID = Column(
    "verified_by", "Verified by", "Operator ID of the second person who verified the step.", "id"
)
STEP_VERIFIER = Column(
    "verifier", "Verifier", "Name of the second person who verified the step.", "text"
)
VERIFIED_AT = Column("verified_at", "Verified", "When the step was verified.", "datetime")
MINUTES_LATE = Column(
    "minutes_late", "Minutes late", "Minutes from performing the step to recording it.", "count"
)
LATE_ENTRY_REASON = Column(
    "late_entry_reason", "Late-entry reason", "Why the entry was late, as given.", "text"
)
STEP_FLAGS = Column(
    "flags", "Flags", "The data-integrity exceptions of the step, in words.", "text"
)
TEST_ID = Column("test_id", "Test ID", "Identifier of the test result.", "id", key=True)
TESTED_AT = Column("tested_at", "Tested", "When the test was done.", "datetime")
IS_OOS = Column("is_oos", "OOS", "The result was out of specification.", "flag")
OOS_ID = Column("oos_id", "OOS investigation", "Identifier of the OOS investigation.", "id")
OOS_RESULT = Column(
    "outcome",
    "Outcome",
    "Conclusion of the OOS investigation; blank while open.",
    "code",
    words(
        enum("oos_investigation", "outcome"), INVALIDATED_LAB_ERROR="Invalidated (laboratory error)"
    ),
)
EQUIPMENT_ID = Column("equipment_id", "Equipment ID", "The equipment's identifier.", "id")
ENDED_AT = Column("ended_at", "Ended", "When the use of the equipment ended.", "datetime")
CHECK_RESULT_WORDS = words(enum("equipment_event", "result"))
LATEST_CALIBRATION_AT = Column(
    "latest_calibration_at",
    "Last calibration before use",
    "The latest calibration before the use started.",
    "datetime",
)
LATEST_CALIBRATION_RESULT = Column(
    "latest_calibration_result",
    "Calibration result",
    "Result of that calibration.",
    "code",
    CHECK_RESULT_WORDS,
)
LATEST_CALIBRATION_DUE = Column(
    "latest_calibration_due",
    "Calibration due",
    "Day the next calibration was due after that one.",
    "date",
)
LATEST_QUALIFICATION_AT = Column(
    "latest_qualification_at",
    "Last qualification before use",
    "The latest qualification before the use started.",
    "datetime",
)
LATEST_QUALIFICATION_RESULT = Column(
    "latest_qualification_result",
    "Qualification result",
    "Result of that qualification.",
    "code",
    CHECK_RESULT_WORDS,
)
LATEST_QUALIFICATION_DUE = Column(
    "latest_qualification_due",
    "Qualification due",
    "Day the next qualification was due after that one.",
    "date",
)
CLEANING_VERIFIED_AT = Column(
    "cleaning_verified_at",
    "Cleaning verified",
    "When the changeover cleaning before the use was verified.",
    "datetime",
)
CLEANING_RESULT = Column(
    "cleaning_result",
    "Cleaning result",
    "Result of that cleaning.",
    "code",
    words(enum("equipment_usage", "cleaning_result")),
)
PREVIOUS_ENDED_AT = Column(
    "previous_ended_at",
    "Previous use ended",
    "When the equipment's previous use ended.",
    "datetime",
)
PREVIOUS_OCCUPANT = Column(
    "previous_occupant",
    "Previous occupant",
    "Who used the equipment before: another client (never named) or a batch of this sponsor.",
    "text",
)

# --- shared equipment: the site's cross-client picture (warehouse.queries.shared_equipment) ----

SPONSOR_COUNT = Column("sponsors", "Sponsors", "Sponsors whose batches used the equipment in the "
                       "period.", "count")  # fmt: skip
SPONSOR_NAMES = Column("sponsor_names", "Sponsor names", "Names of those sponsors.", "text")
SITE_USES = Column("uses", "Uses", "Uses of the equipment in the period, all sponsors.", "count")
CROSS_SPONSOR_CHANGEOVERS = Column(
    "cross_sponsor_changeovers", "Changeovers between sponsors", "Uses that followed a use by "
    "another sponsor's batch.", "count",
)  # fmt: skip
USES_LAPSED = Column(
    "uses_lapsed", "Uses while not fit for use", "Uses that started while calibration or "
    "qualification was not valid.", "count",
)  # fmt: skip
FROM_SPONSOR = Column("from_sponsor", "From sponsor", "Sponsor of the previous use.", "text")
FROM_BATCH = Column("from_batch", "From batch", "Batch of the previous use.", "id")
FROM_ENDED_AT = Column("from_ended_at", "Previous use ended", "When the previous use ended.",
                       "datetime")  # fmt: skip
TO_SPONSOR = Column("to_sponsor", "To sponsor", "Sponsor of the next use.", "text")
TO_BATCH = Column("to_batch", "To batch", "Batch of the next use.", "id")
NEXT_STARTED_AT = Column("started_at", "Next use started", "When the next use started.",
                         "datetime")  # fmt: skip
CLEANING_VERIFIED_BY = Column("cleaning_verified_by", "Verified by", "Who verified the cleaning.",
                              "text")  # fmt: skip
CLEANING_OK = Column(
    "cleaning_ok", "Cleaning verified in between", "A passed cleaning was verified between the "
    "two uses.", "flag",
)  # fmt: skip
GAP_HOURS = Column("gap_hours", "Gap (h)", "Hours between the two uses.", "hours")
LAPSED = Column("lapsed", "Lapsed", "What was not valid at use: calibration, qualification or "
                "both.", "text")  # fmt: skip
CALIBRATION_DUE_BEFORE_USE = Column(
    "calibration_due_before_use", "Calibration was due", "Day the calibration before the use "
    "was due.", "date",
)  # fmt: skip
QUALIFICATION_DUE_BEFORE_USE = Column(
    "qualification_due_before_use", "Qualification was due", "Day the qualification before the "
    "use was due.", "date",
)  # fmt: skip
WHY_UNFIT = Column("why_unfit", "Why not fit for use", "Why the equipment was not fit for use, "
                   "in words.", "text")  # fmt: skip

# --- management cockpit -----------------------------------------------------------------------

SPONSOR_ID = Column("sponsor_id", "Sponsor", "The sponsor's identifier.", "id", key=True)
LOTS_STARTED = Column("lots_started", "Lots started", "Lots whose manufacture started in the "
                      "period.", "count")  # fmt: skip


LEAST_COMPLETE = Column(
    "least_complete", "Least complete", "The lowest data completeness among the row's rates "
    "and cycle times; under the cockpit's threshold a KPI shows why it is not reliable instead "
    "of a value.", "text",
)  # fmt: skip


TARGETS_MET = Column(
    "targets_met", "Targets met", "How many of the row's health measures meet their target, "
    "of those that could be judged (a measure that is not reliable or has no data is not "
    "judged).", "text",
)  # fmt: skip
NEEDS_ATTENTION = Column(
    "needs_attention", "Needs attention", "The health measures that miss their target, then "
    "those that are not reliable; every value is in the full table (every measure).", "text",
)  # fmt: skip


def measure_column(key: str) -> Column:
    """A column holding one measure as shown (its value, or why it is not reliable), labelled
    and described by the catalogue's measure."""
    declared = MEASURES[key]
    return Column(key, declared.name, f"{declared.formula} Source: {declared.source}.", "text")


KPI = Column("kpi", "KPI", "The KPI or count, with its DOMAIN.md number.", "text", key=True)
POPULATION = Column("population", "Population", "The whole site (Site) or one sponsor.", "id")
KPI_RESULT = Column(
    "result", "Value", "The value and its data completeness, or why it is not reliable.", "text"
)
KPI_FORMULA = Column("formula", "Formula and source", "How it is computed, and from which "
                     "guidance or convention.", "text")  # fmt: skip
MONTH = Column("month", "Month", "First day of the calendar month.", "date", key=True)
KPI_VALUE = Column("value", "Value", "The KPI in the month; blank when not reliable.", "number")
KPI_COMPLETENESS = Column("completeness", "Data completeness", "Share of the records the KPI "
                          "needs that are complete (0–1).", "number")  # fmt: skip

# --- the portal's own records: users and the access log (portal.users, portal.access_log) ----

# The portal's roles (portal.users.ROLES, and the data share's tokens) and access-log events
# (portal.access_log.EVENTS);
# tests/warehouse/test_catalogue.py checks these words cover exactly those codes.
ROLE_WORDS = {
    "sponsor_qa": "Sponsor QA", "auditor": "Auditor", "cmo_quality": "CMO quality",
    "cmo_management": "CMO management", "bd_demo": "Business development (demo plant)",
    "admin": "Administrator", "api": "Data-share token", "command_line": "Server command line",
}  # fmt: skip
ACCESS_EVENT_WORDS = {
    "SIGN_IN": "Signed in", "SIGN_IN_FAILED": "Sign-in failed", "SIGN_OUT": "Signed out",
    "LOCKED": "Locked out", "TIMEOUT": "Timed out", "PAGE_VIEW": "Viewed a page",
    "EXPORT": "Exported", "EXPIRED": "Access ended", "AUDIT_PACK": "Generated an audit pack",
    "DOWNLOAD": "Downloaded an audit pack", "TOKEN_CREATED": "Issued a data-share token",
    "TOKEN_REVOKED": "Revoked a data-share token", "API_REQUEST": "Called the data share",
    "FILE_FETCH": "Downloaded a shared file", "USER_CREATED": "Created an account",
    "USER_DISABLED": "Disabled an account", "USER_ENABLED": "Enabled an account",
    "PASSWORD_RESET": "Reset a password", "ACCESS_ENDED": "Ended an auditor's access",
    "DECISION_SIGNED": "Signed a decision", "SIGNATURE_FAILED": "Signature refused",
    "SIGNING_GRANTED": "Granted permission to sign",
    "SIGNING_WITHDRAWN": "Withdrew permission to sign",
}  # fmt: skip
USERNAME = Column("username", "Username", "The sign-in name.", "id", key=True)
USER_NAME = Column("display_name", "Name", "The person's full name.", "text")
USER_ROLE = Column("role", "Role", "What the user may see and do.", "code", ROLE_WORDS)
USER_SPONSOR = Column("sponsor_id", "Sponsor", "The sponsor a sponsor user or auditor belongs "
                      "to; blank for CMO staff.", "id")  # fmt: skip
VALID_FROM = Column("valid_from", "Valid from", "First moment the account may sign in (UTC).",
                    "datetime")  # fmt: skip
VALID_UNTIL = Column("valid_until", "Valid until", "Moment the account's access ends (UTC).",
                     "datetime")  # fmt: skip
DISABLED = Column("disabled", "Disabled", "The account may not sign in.", "flag")
LOGGED_AT = Column("at", "When (UTC)", "When it happened, in UTC.", "datetime", key=True)
ACCESS_EVENT = Column("event", "What", "What the user did.", "code", ACCESS_EVENT_WORDS)
LOGGED_PAGE = Column("page", "Page", "The portal page viewed or exported from.", "text")
LOGGED_FILTERS = Column("filters_json", "Filters", "The period and products chosen, as "
                        "recorded.", "text")  # fmt: skip
LOGGED_ROWS = Column("row_count", "Rows", "Rows exported or packed.", "count")
CONTENT_HASH = Column("content_hash", "Content hash", "SHA-256 of what was exported or "
                      "packed.", "id")  # fmt: skip
LOGGED_DETAIL = Column("detail", "Detail", "Anything else recorded with it.", "text")

# --- the data share's API tokens (portal.tokens) ----------------------------------------------

# Token states (portal.tokens.STATES); tests/warehouse/test_catalogue.py checks the cover.
TOKEN_STATE_WORDS = {"LIVE": "Live", "EXPIRED": "Expired", "REVOKED": "Revoked"}
TOKEN_ID = Column("token_id", "Token", "The token's identifier (never its secret), as the "
                  "access log names it.", "id", key=True)  # fmt: skip
TOKEN_SPONSOR = Column("sponsor_id", "Sponsor", "The sponsor whose tables the token reads.",
                       "id")  # fmt: skip
TOKEN_LABEL = Column("label", "Label", "Who uses the token, e.g. the sponsor's data team.",
                     "text")  # fmt: skip
TOKEN_STATE = Column("state", "State", "Live until its expiry day ends (UTC), unless revoked "
                     "first.", "code", TOKEN_STATE_WORDS)  # fmt: skip
TOKEN_CREATED_AT = Column("created_at", "Created (UTC)", "When the token was created, in UTC.",
                          "datetime")  # fmt: skip
TOKEN_CREATED_BY = Column("created_by", "Created by", "Username of whoever created the token.",
                          "text")  # fmt: skip
TOKEN_EXPIRES = Column("expires_on", "Expires", "Last day the token works; it stops at the end "
                       "of that day (UTC).", "date")  # fmt: skip
TOKEN_LAST_USED = Column("last_used_at", "Last used (UTC)", "Latest request the data share "
                         "answered with the token, to the minute; blank if never used.",
                         "datetime")  # fmt: skip
TOKEN_REVOKED_AT = Column("revoked_at", "Revoked (UTC)", "When the token was revoked, in UTC; "
                          "blank if it was not.", "datetime")  # fmt: skip
TOKEN_REVOKED_BY = Column("revoked_by", "Revoked by", "Username of whoever revoked the token.",
                          "text")  # fmt: skip

# --- sponsor decisions signed in the portal (portal.decisions) ------------------------------

# Meanings and kinds of record (warehouse.queries.decisions); test_catalogue checks the cover.
DECISION_MEANING_WORDS = {"APPROVED": "Approved", "REJECTED": "Rejected",
                          "ACKNOWLEDGED": "Acknowledged"}  # fmt: skip
DECISION_RECORD_WORDS = {"change_approval": "Change awaiting prior approval",
                         "change_notification": "Change notification",
                         "deviation_notification": "Deviation notification",
                         "oos_notification": "OOS notification"}  # fmt: skip
DECISION_ID = Column("decision_id", "Decision", "The portal's number for the signed decision, "
                     "as the CMO's QMS receives it.", "id", key=True)  # fmt: skip
DECIDED_RECORD = Column("record", "Record", "The change and product, deviation or OOS result "
                        "the decision is on.", "text")  # fmt: skip
DECISION_ON = Column("record_type", "Decision on", "What was decided: a change awaiting prior "
                     "approval, or a notification of a change, deviation or OOS result.", "code",
                     DECISION_RECORD_WORDS)  # fmt: skip
DECISION_MEANING = Column("meaning", "Meaning", "What the signature means (21 CFR 11.50).",
                          "code", DECISION_MEANING_WORDS)  # fmt: skip
SIGNER_NAME = Column("signer_name", "Signed by", "The signer's full name.", "text")
SIGNER = Column("signer", "Signer's username", "The signer's unique username.", "id")
SIGNED_AT = Column("signed_at_utc", "Signed (UTC)", "When the signature was applied, in UTC.",
                   "datetime")  # fmt: skip
SIGNER_ZONE = Column("signer_zone", "Signer's time zone", "The time zone of the signer's "
                     "browser; the signature shows the local time in it.", "text")  # fmt: skip
DECISION_REASON = Column("reason", "Reason", "Why: required for a rejection.", "text")
SUPERSEDES = Column("supersedes", "Replaces", "The earlier decision this one replaces; both "
                    "stay on record.", "id")  # fmt: skip
SIGNATURE = Column("signature", "Signature", "The signature as every surface shows it: name, "
                   "username, date and time, meaning, and what was signed.", "text")  # fmt: skip
SIGNED_CONTENT_HASH = Column("record_hash", "Content hash", "SHA-256 of exactly what the signer "
                             "was shown.", "id")  # fmt: skip
SIGNED_SNAPSHOT = Column("snapshot", "Snapshot", "The published data snapshot the signer read.",
                         "id")  # fmt: skip
CHAIN_HASH = Column("row_hash", "Chain hash", "SHA-256 over the decision and the one before "
                    "it: any later change to either breaks it.", "id")  # fmt: skip
QMS_RECORDED_AT = Column("qms_recorded_at", "Recorded in the QMS", "When the CMO's quality "
                         "system recorded the decision, as the nightly job read it back; blank "
                         "until then.", "datetime")  # fmt: skip
# Where a sponsor obligation on a change stands (portal.decision_panel.open_obligations).
OBLIGATION_STATE_WORDS = {
    "NOTICE_NOT_SENT": "Notification not sent yet",
    "AWAITING_SPONSOR": "Awaiting the sponsor's decision",
    "SIGNED_NOT_RECORDED": "Signed in the portal, not yet in the QMS",
    "QMS_OVERDUE": "Signed in the portal, not recorded in the QMS in time",
}
OBLIGATION_STATE = Column("state", "Where it stands", "Whether the sponsor's obligation awaits "
                          "the CMO's notification, the sponsor's signature, or the QMS's "
                          "record of a signature given in the portal.", "code",
                          OBLIGATION_STATE_WORDS)  # fmt: skip
