"""Record contracts of the CMO's system of record, declared once as data.

The same declarations create the demo plant's SQLite schema, validate every extracted row,
and document the warehouse. Each table also says how its rows reach sponsor partitions
(`route`; see ROUTES below), and a shared table which records carry it there (`reach`; see
Ref, Backref, Everyone and Both): etl.route reads these declarations and nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SPONSOR_ID_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9_-]{1,31}$")
# Partition for site-level rows that touch no sponsor; only CMO scopes read it.
SITE_PARTITION = "SITE"
RESERVED_SPONSOR_IDS = frozenset({SITE_PARTITION})

# Column types. Timestamps are ISO 8601 strings in the source ("2026-11-26T08:30:00"),
# dates "2026-11-26", booleans 0/1 (or true/false in CSV).
STR, INT, FLOAT, BOOL, DATE, DATETIME = "str", "int", "float", "bool", "date", "datetime"

BATCH_STATUSES = (
    "PLANNED", "DISPENSED", "IN_PROCESS", "MFG_COMPLETE", "QC_TESTING", "BR_REVIEW",
    "CMO_DISPOSITIONED", "SPONSOR_RELEASED", "REJECTED", "ON_HOLD",
)  # fmt: skip
BATCH_EVENT_TYPES = ("DISPENSE", "STEP", "IPC", "SAMPLE", "RESULT", "REVIEW", "SIGN")
# Event types that a second person must verify (four-eyes principle).
VERIFIED_EVENT_TYPES = ("DISPENSE", "STEP", "IPC", "REVIEW")
# DOMAIN.md convention: an in-process entry recorded over 1 h after it was performed is late.
LATE_ENTRY_MINUTES = 60
# DOMAIN.md KPI 7: a deviation is a recurrence when the one it recurs was raised within the
# prior 12 calendar months of it (on or after the same day 12 months before: a leap day
# between makes it 366 days), as a polars duration.
RECURRENCE_WINDOW = "12mo"
SEVERITIES = ("CRITICAL", "MAJOR", "MINOR")
DEVIATION_STATUSES = ("OPEN", "ASSESSMENT", "INVESTIGATION", "PENDING_QA", "CLOSED", "CANCELLED")
ROOT_CAUSES = (
    "EQUIPMENT", "HUMAN_ERROR", "MATERIAL", "METHOD", "ENVIRONMENT", "PROCESS", "UNKNOWN",
)  # fmt: skip
CAPA_STATUSES = ("PLAN", "IMPLEMENTING", "PENDING_EFFECTIVENESS", "CLOSED", "CANCELLED")
CAPA_SOURCES = ("DEVIATION", "OOS", "COMPLAINT", "AUDIT", "SELF_INSPECTION")
CHANGE_STATUSES = (
    "DRAFT", "ASSESSMENT", "SPONSOR_REVIEW", "APPROVED", "IMPLEMENTED", "EFFECTIVENESS",
    "CLOSED", "REJECTED",
)  # fmt: skip
CHANGE_TYPES = ("SOP", "EQUIPMENT", "PROCESS", "SUPPLIER", "ANALYTICAL_METHOD", "FACILITY")
OBLIGATIONS = ("NONE", "NOTIFY", "PRIOR_APPROVAL")
NOTIFIABLE_EVENTS = (
    "DEVIATION_CRITICAL", "DEVIATION_MAJOR", "DEVIATION_MINOR", "OOS_CONFIRMED",
    "COMPLAINT_CRITICAL",
)  # fmt: skip
TECH_TRANSFER_MILESTONES = (
    "KICKOFF", "GAP_RISK_ASSESSMENT", "BOM_SOURCING", "METHOD_TRANSFER", "MBR_APPROVED",
    "SOPS_UPDATED", "OPERATOR_TRAINING", "EQUIPMENT_QUALIFIED", "ENGINEERING_BATCH",
    "GMP_BATCH", "PPQ", "STABILITY_FILING",
)  # fmt: skip
# What a sponsor's signed decision means (portal.decisions), as the QMS records it.
DECISION_MEANINGS = ("APPROVED", "REJECTED", "ACKNOWLEDGED")
SIX_SYSTEMS = (
    "QUALITY", "FACILITIES_EQUIPMENT", "MATERIALS", "PRODUCTION", "PACKAGING_LABELING",
    "LABORATORY",
)  # fmt: skip


@dataclass(frozen=True)
class Column:
    name: str
    type: str = STR
    required: bool = False
    enum: tuple[str, ...] | None = None
    ref: str | None = None  # "table" whose key this column holds
    min_value: float | None = None
    doc: str = ""


@dataclass(frozen=True)
class Table:
    name: str
    key: str
    columns: tuple[Column, ...]
    route: str  # how rows reach sponsor partitions, one of ROUTES
    doc: str
    parent: str | None = None  # for route "via": the column whose referenced row decides
    # For route "fanout": the ways a row reaches sponsors; it goes to every sponsor any of
    # them reaches, and to SITE when none does.
    reach: tuple[Reach, ...] = ()
    extra: dict = field(default_factory=dict)
    # A source may lack an optional table (not yet kept by its system): it is then published
    # empty. Every other table must be in the source, with every column.
    optional: bool = False

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


ROUTES = {
    "direct": "the row's own sponsor_id column",
    "via": "the sponsor of the row that column `parent` references",
    "all": "every sponsor partition (CMO master data with nothing sponsor-specific)",
    "fanout": "every sponsor the records named in its `reach` touch; rows that touch no "
    "sponsor go to the SITE partition",
}

# A reach's `when` keeps it to the rows whose column holds that value, e.g. ("scope", "SITE").
When = tuple[str, str] | None


@dataclass(frozen=True)
class Ref:
    """Where the row named by this row's `column` goes (nowhere when the column is empty)."""

    column: str
    when: When = None


@dataclass(frozen=True)
class Backref:
    """Where each row of `table` goes whose `columns` (one or more) name this row."""

    table: str
    columns: tuple[str, ...]
    when: When = None


@dataclass(frozen=True)
class Everyone:
    """Every sponsor partition."""

    when: When = None


@dataclass(frozen=True)
class Both:
    """The sponsors that both reaches lead to, and no other."""

    first: Reach
    second: Reach
    when: When = None


Reach = Ref | Backref | Everyone | Both


def _k(name: str) -> Column:
    return Column(name, STR, required=True)


def _ref(name: str, table: str, required: bool = True) -> Column:
    return Column(name, STR, required=required, ref=table)


def _enum(name: str, values: tuple[str, ...], required: bool = True) -> Column:
    return Column(name, STR, required=required, enum=values)


UPDATED = Column("updated_at", DATETIME, required=True, doc="change watermark")

# fmt: off
TABLES: tuple[Table, ...] = (
    Table("sponsor", "sponsor_id", (
        _k("sponsor_id"), Column("name", required=True), Column("country"), UPDATED,
    ), "direct", "The CMO's clients; the sponsor registry."),
    Table("site", "site_id", (
        _k("site_id"), Column("name", required=True), Column("country"), UPDATED,
    ), "all", "Manufacturing sites of the CMO."),
    Table("quality_agreement", "agreement_id", (
        _k("agreement_id"), _ref("sponsor_id", "sponsor"), Column("version", INT, True),
        Column("effective_from", DATE, True), UPDATED,
    ), "direct", "One quality agreement per sponsor (current version)."),
    Table("agreement_term", "term_id", (
        _k("term_id"), _ref("agreement_id", "quality_agreement"),
        _enum("term_type", ("NOTIFICATION", "CHANGE")),
        _enum("subject", NOTIFIABLE_EVENTS + CHANGE_TYPES),
        Column("deadline_hours", INT, min_value=0, doc="NOTIFICATION terms: clock to notify"),
        _enum("obligation", OBLIGATIONS, required=False),
        UPDATED,
    ), "via", "Notification deadlines per event type and change obligations per change type.",
        parent="agreement_id"),
    Table("product", "product_id", (
        _k("product_id"), _ref("sponsor_id", "sponsor"), _ref("site_id", "site"),
        Column("name", required=True),
        _enum("modality", ("OSD", "BIOLOGIC", "STERILE_FILL_FINISH")),
        Column("dosage_form"), Column("markets", doc="semicolon-separated, e.g. US;EU;JP"),
        UPDATED,
    ), "direct", "Sponsor products made at the site."),
    Table("master_batch_record", "mbr_id", (
        _k("mbr_id"), _ref("product_id", "product"), Column("version", INT, True),
        _enum("status", ("DRAFT", "APPROVED", "SUPERSEDED")), Column("approved_at", DATETIME),
        UPDATED,
    ), "via", "Master batch record versions per product.", parent="product_id"),
    Table("sop", "sop_id", (
        _k("sop_id"), Column("sop_number", required=True), Column("title", required=True),
        Column("version", INT, True, min_value=1), Column("effective_from", DATE, True),
        _enum("scope", ("SITE", "PRODUCT")), UPDATED,
    ), "fanout", "Standard operating procedures; SITE scope to all, PRODUCT scope to the "
       "sponsors of products that use it.", reach=(
        Everyone(when=("scope", "SITE")),
        Backref("product_sop", ("sop_id",), when=("scope", "PRODUCT")),
    )),
    Table("product_sop", "product_sop_id", (
        _k("product_sop_id"), _ref("product_id", "product"), _ref("sop_id", "sop"), UPDATED,
    ), "via", "Which SOPs apply to a product.", parent="product_id"),
    Table("supplier", "supplier_id", (
        _k("supplier_id"), Column("name", required=True),
        _enum("status", ("APPROVED", "CONDITIONAL", "DISQUALIFIED")),
        Column("qualified_at", DATE), UPDATED,
    ), "fanout", "Material suppliers; to sponsors whose BOM or consumed lots name them.",
       reach=(Backref("bom_item", ("supplier_id",)), Backref("material_lot", ("supplier_id",)))),
    Table("bom_item", "bom_item_id", (
        _k("bom_item_id"), _ref("product_id", "product"), Column("material_name", required=True),
        _ref("supplier_id", "supplier"), Column("quantity", FLOAT, True, min_value=0),
        Column("unit", required=True), UPDATED,
    ), "via", "Bill of materials per product.", parent="product_id"),
    Table("material_lot", "lot_id", (
        _k("lot_id"), _ref("supplier_id", "supplier"), Column("material_name", required=True),
        Column("received_at", DATETIME, True),
        _enum("release_status", ("QUARANTINE", "RELEASED", "REJECTED")),
        Column("coa_received", BOOL, True), UPDATED,
    ), "fanout", "Received material lots; to sponsors whose batches consumed them.",
       reach=(Backref("material_consumption", ("lot_id",)),)),
    Table("equipment", "equipment_id", (
        _k("equipment_id"), _ref("site_id", "site"), Column("name", required=True),
        Column("equipment_type", required=True), Column("train"),
        _enum("status", ("QUALIFIED", "DUE", "OVERDUE", "OUT_OF_SERVICE")),
        Column("calibration_due", DATE), UPDATED,
    ), "fanout", "Equipment (often shared); to sponsors whose batches used it or whose "
       "deviations name it.", reach=(
        Backref("equipment_usage", ("equipment_id",)),
        Backref("deviation_link", ("equipment_id",)),
    )),
    Table("equipment_event", "equipment_event_id", (
        _k("equipment_event_id"), _ref("equipment_id", "equipment"),
        _enum("event_type", ("QUALIFICATION", "CALIBRATION", "MAINTENANCE")),
        Column("performed_at", DATETIME, True), Column("next_due", DATE),
        _enum("result", ("PASS", "FAIL")), UPDATED,
    ), "fanout", "Qualification / calibration / maintenance history; follows its equipment.",
       reach=(Ref("equipment_id"),)),
    Table("equipment_usage", "usage_id", (
        _k("usage_id"), _ref("equipment_id", "equipment"), _ref("batch_id", "batch"),
        Column("started_at", DATETIME, True), Column("ended_at", DATETIME),
        Column("cleaning_verified_at", DATETIME, doc="changeover cleaning before this use"),
        _ref("cleaning_verified_by", "operator", required=False),
        _enum("cleaning_result", ("PASS", "FAIL"), required=False), UPDATED,
    ), "via", "Equipment use by a batch with the changeover cleaning before it; published "
       "with the previous occupant redacted to SAME_SPONSOR / ANOTHER_CLIENT.",
        parent="batch_id"),
    Table("operator", "operator_id", (
        _k("operator_id"), Column("name", required=True), Column("role"), UPDATED,
    ), "fanout", "CMO operators; to sponsors whose batch events they performed or verified.",
       reach=(Backref("batch_event", ("performed_by", "verified_by")),)),
    Table("training_record", "training_id", (
        _k("training_id"), _ref("operator_id", "operator"), _ref("sop_id", "sop"),
        Column("sop_version", INT, True, min_value=1),
        _enum("status", ("CURRENT", "DUE", "OVERDUE")),
        Column("trained_at", DATE, True), Column("due_at", DATE), UPDATED,
    ), "fanout", "Training of an operator on an SOP version; to sponsors that see both the "
       "operator and the SOP.", reach=(Both(Ref("operator_id"), Ref("sop_id")),)),
    Table("batch", "batch_id", (
        _k("batch_id"), Column("batch_number", required=True), _ref("sponsor_id", "sponsor"),
        _ref("product_id", "product"), _ref("site_id", "site"), Column("campaign"),
        Column("equipment_train"), _enum("status", BATCH_STATUSES),
        Column("mfg_start", DATETIME), Column("mfg_end", DATETIME),
        _enum("cmo_decision", ("RELEASED", "REJECTED", "ON_HOLD"), required=False),
        _ref("cmo_decided_by", "operator", required=False), Column("cmo_decided_at", DATETIME),
        _enum("sponsor_decision", ("APPROVED", "REJECTED"), required=False),
        Column("sponsor_decided_at", DATETIME), Column("coa_issued_at", DATETIME),
        Column("units_produced", INT, min_value=0), Column("units_distributed", INT, min_value=0),
        Column("reworked", BOOL, True), UPDATED,
    ), "direct", "Batches; the batch's sponsor must own its product."),
    Table("batch_event", "event_id", (
        _k("event_id"), _ref("batch_id", "batch"), Column("seq", INT, True, min_value=0),
        Column("step_name", required=True), _enum("event_type", BATCH_EVENT_TYPES),
        _ref("performed_by", "operator"), Column("performed_at", DATETIME, True),
        Column("recorded_at", DATETIME, True), _ref("verified_by", "operator", required=False),
        Column("verified_at", DATETIME), Column("late_entry_reason"), UPDATED,
    ), "via", "Executed batch record entries.", parent="batch_id"),
    Table("material_consumption", "consumption_id", (
        _k("consumption_id"), _ref("batch_id", "batch"), _ref("lot_id", "material_lot"),
        Column("quantity", FLOAT, True, min_value=0), Column("unit", required=True), UPDATED,
    ), "via", "Material lots consumed by a batch (genealogy).", parent="batch_id"),
    Table("test_result", "test_id", (
        _k("test_id"), _ref("batch_id", "batch"),
        _enum("test_type", ("RELEASE", "LT_STABILITY", "IPC")),
        Column("test_name", required=True), Column("result_value", FLOAT),
        Column("spec_low", FLOAT), Column("spec_high", FLOAT), Column("unit"),
        Column("tested_at", DATETIME, True), Column("is_oos", BOOL, True), UPDATED,
    ), "via", "QC and in-process test results.", parent="batch_id"),
    Table("oos_investigation", "oos_id", (
        _k("oos_id"), _ref("test_id", "test_result"), _ref("batch_id", "batch"),
        _enum("phase", ("I", "II")),
        _enum("outcome", ("CONFIRMED", "INVALIDATED_LAB_ERROR", "INCONCLUSIVE"), required=False),
        Column("opened_at", DATETIME, True), Column("closed_at", DATETIME),
        Column("notified_at", DATETIME), Column("summary"), UPDATED,
    ), "via", "Out-of-specification investigations.", parent="batch_id"),
    Table("deviation", "deviation_id", (
        _k("deviation_id"), Column("deviation_number", required=True), _ref("site_id", "site"),
        Column("title", required=True), _enum("classification", SEVERITIES),
        _enum("status", DEVIATION_STATUSES), Column("awareness_at", DATETIME, True),
        Column("original_due", DATE, True), Column("current_due", DATE, True),
        Column("extension_count", INT, True, min_value=0),
        _enum("root_cause_category", ROOT_CAUSES, required=False),
        _ref("recurrence_of", "deviation", required=False), Column("closed_at", DATETIME),
        UPDATED,
    ), "fanout", "Deviations (site-level); to every sponsor with a deviation_link row. "
       "recurrence_of is kept only when that deviation is visible to the same sponsor; "
       "is_recurrence (derived from the whole site) is on every copy.",
       reach=(Backref("deviation_link", ("deviation_id",)),)),
    Table("deviation_link", "link_id", (
        _k("link_id"), _ref("deviation_id", "deviation"), _ref("sponsor_id", "sponsor"),
        _ref("product_id", "product", required=False), _ref("batch_id", "batch", required=False),
        _ref("equipment_id", "equipment", required=False),
        Column("notified_at", DATETIME, doc="when this sponsor was notified"), UPDATED,
    ), "direct", "What a deviation touches, one row per affected sponsor (and batch)."),
    Table("complaint", "complaint_id", (
        _k("complaint_id"), Column("complaint_number", required=True),
        _ref("product_id", "product"), _ref("batch_id", "batch", required=False),
        Column("received_at", DATETIME, True), Column("is_critical", BOOL, True),
        Column("confirmed", BOOL, True), Column("closed_at", DATETIME),
        Column("notified_at", DATETIME), UPDATED,
    ), "via", "Product quality complaints.", parent="product_id"),
    Table("self_inspection", "inspection_id", (
        _k("inspection_id"), _ref("site_id", "site"), _enum("area", SIX_SYSTEMS),
        Column("scheduled_at", DATE, True), Column("performed_at", DATE),
        Column("lead_auditor", required=True), UPDATED,
    ), "fanout", "Internal audit programme; to sponsors whose products have findings in it.",
       reach=(Backref("inspection_finding", ("inspection_id",)),)),
    Table("inspection_finding", "finding_id", (
        _k("finding_id"), _ref("inspection_id", "self_inspection"),
        _ref("product_id", "product", required=False), _enum("classification", SEVERITIES),
        Column("description", required=True), _enum("status", ("OPEN", "CLOSED")), UPDATED,
    ), "fanout", "Self-inspection findings; to the product's sponsor, else SITE.",
       reach=(Ref("product_id"),)),
    Table("capa", "capa_id", (
        _k("capa_id"), Column("capa_number", required=True), _enum("source_type", CAPA_SOURCES),
        _ref("deviation_id", "deviation", required=False),
        _ref("oos_id", "oos_investigation", required=False),
        _ref("complaint_id", "complaint", required=False),
        _ref("finding_id", "inspection_finding", required=False),
        Column("title", required=True), _enum("status", CAPA_STATUSES),
        Column("opened_at", DATETIME, True), Column("original_due", DATE, True),
        Column("current_due", DATE, True), Column("closed_at", DATETIME), UPDATED,
    ), "fanout", "CAPAs; to the sponsors of their source record, else SITE.", reach=(
        Ref("deviation_id", when=("source_type", "DEVIATION")),
        Ref("oos_id", when=("source_type", "OOS")),
        Ref("complaint_id", when=("source_type", "COMPLAINT")),
        Ref("finding_id", when=("source_type", "SELF_INSPECTION")),
    )),
    Table("capa_extension", "extension_id", (
        _k("extension_id"), _ref("capa_id", "capa"), Column("previous_due", DATE, True),
        Column("new_due", DATE, True), Column("reason", required=True),
        Column("approved_at", DATETIME, True), UPDATED,
    ), "fanout", "Due-date extensions of a CAPA; follow their CAPA.", reach=(Ref("capa_id"),)),
    Table("capa_effectiveness", "check_id", (
        _k("check_id"), _ref("capa_id", "capa"), Column("checked_at", DATETIME, True),
        _enum("result", ("EFFECTIVE", "NOT_EFFECTIVE")), UPDATED,
    ), "fanout", "Effectiveness checks of a CAPA; follow their CAPA.", reach=(Ref("capa_id"),)),
    Table("change_control", "change_id", (
        _k("change_id"), Column("change_number", required=True), _ref("site_id", "site"),
        Column("title", required=True), _enum("change_type", CHANGE_TYPES),
        _enum("risk_class", ("HIGH", "MEDIUM", "LOW")), _enum("status", CHANGE_STATUSES),
        Column("opened_at", DATETIME, True), Column("planned_effective", DATE),
        Column("actual_effective", DATE), UPDATED,
    ), "fanout", "Site-level change controls; to every sponsor with an impact row.",
       reach=(Backref("change_impact", ("change_id",)),)),
    Table("change_impact", "impact_id", (
        _k("impact_id"), _ref("change_id", "change_control"), _ref("sponsor_id", "sponsor"),
        _ref("product_id", "product", required=False), _enum("obligation", OBLIGATIONS),
        Column("notified_at", DATETIME),
        _enum("decision", ("PENDING", "APPROVED", "REJECTED"), required=False),
        Column("decided_at", DATETIME), UPDATED,
    ), "direct", "One row per affected sponsor/product with that sponsor's obligation."),
    Table("change_market", "change_market_id", (
        _k("change_market_id"), _ref("impact_id", "change_impact"),
        Column("market", required=True),
        _enum("reporting_category", ("PRIOR_APPROVAL", "NOTIFICATION", "RECORDED")), UPDATED,
    ), "via", "ICH Q12 reporting category per market of an impact.", parent="impact_id"),
    Table("decision_receipt", "decision_id", (
        Column("decision_id", STR, True, doc="the portal's decision id, e.g. DEC-000001"),
        _ref("impact_id", "change_impact"), _enum("meaning", DECISION_MEANINGS),
        Column("recorded_at", DATETIME, True, doc="when the QMS recorded the decision"),
        Column("recorded_by", doc="who or what recorded it in the QMS (e.g. the importer)"),
        UPDATED,
    ), "via", "A sponsor decision signed in the portal, as the CMO's QMS recorded it after "
       "importing the portal's outbox (python -m portal decisions export): one row per "
       "decision, keyed by the portal's decision id, naming the change impact it answers. "
       "Optional in the source (published empty when the QMS keeps none); follows its "
       "impact, so only that impact's sponsor sees it.", parent="impact_id", optional=True),
    Table("product_review", "review_id", (
        _k("review_id"), _ref("product_id", "product"), Column("review_year", INT, True),
        Column("original_due", DATE, True), Column("completed_at", DATE), UPDATED,
    ), "via", "Annual product quality reviews (APR/PQR).", parent="product_id"),
    Table("tech_transfer", "project_id", (
        _k("project_id"), _ref("product_id", "product"),
        Column("contract_signed_at", DATE, True),
        _enum("status", ("ACTIVE", "COMPLETED", "ON_HOLD")), UPDATED,
    ), "via", "Technology transfer projects per sponsor product.", parent="product_id"),
    Table("tt_milestone", "milestone_id", (
        _k("milestone_id"), _ref("project_id", "tech_transfer"),
        _enum("milestone", TECH_TRANSFER_MILESTONES), Column("seq", INT, True, min_value=0),
        Column("planned_at", DATE, True), Column("actual_at", DATE), UPDATED,
    ), "via", "Tech-transfer milestones, planned vs actual.", parent="project_id"),
)
# fmt: on

TABLES_BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}


def _check_reach(t: Table, reach: Reach) -> None:
    """A reach names real columns and tables, and a Ref or Backref really references."""
    if reach.when is not None:
        column, value = reach.when
        enum = t.column(column).enum if column in t.column_names else None
        if enum is None or value not in enum:
            raise ValueError(f"{t.name}: reach when {reach.when} is not a value of {column}")
    if isinstance(reach, Ref) and (
        reach.column not in t.column_names or t.column(reach.column).ref is None
    ):
        raise ValueError(f"{t.name}: reach Ref({reach.column}) names no table")
    if isinstance(reach, Backref):
        other = TABLES_BY_NAME.get(reach.table)
        if (
            other is None
            or not reach.columns
            or any(c not in other.column_names for c in reach.columns)
            or any(other.column(c).ref != t.name for c in reach.columns)
        ):
            raise ValueError(f"{t.name}: reach {reach} does not reference {t.name}")
    if isinstance(reach, Both):
        _check_reach(t, reach.first)
        _check_reach(t, reach.second)


def check_routes(tables: tuple[Table, ...]) -> None:
    """Raise ValueError unless every route and reach of `tables` is well declared."""
    for t in tables:
        if t.route not in ROUTES:
            raise ValueError(f"{t.name}: unknown route {t.route!r}")
        if (t.route == "via") != (t.parent is not None):
            raise ValueError(f"{t.name}: a via table and only it names its parent")
        if (t.route == "fanout") != bool(t.reach):
            raise ValueError(f"{t.name}: a fanout table and only it declares its reach")
        for reach in t.reach:
            _check_reach(t, reach)


check_routes(TABLES)


def table(name: str) -> Table:
    return TABLES_BY_NAME[name]


_SQL_TYPES = {STR: "TEXT", INT: "INTEGER", FLOAT: "REAL", BOOL: "INTEGER", DATE: "TEXT",
              DATETIME: "TEXT"}  # fmt: skip


def sqlite_ddl(tables: tuple[Table, ...] = TABLES, *, if_not_exists: bool = False) -> str:
    """CREATE TABLE statements of the operational schema (the demo plant's SQLite source);
    of some tables only, and only where missing, to add an optional table to an older file.

    Keys and NOT NULL are deliberately not enforced: a real system of record can hold bad
    rows, and catching them is the validate stage's job, which tests exercise through this.
    """
    guard = " IF NOT EXISTS" if if_not_exists else ""
    statements = []
    for t in tables:
        cols = ",\n  ".join(f"{c.name} {_SQL_TYPES[c.type]}" for c in t.columns)
        statements.append(f"CREATE TABLE{guard} {t.name} (\n  {cols}\n);")
        statements.append(f"CREATE INDEX{guard} {t.name}_key ON {t.name}({t.key});")
        statements.append(f"CREATE INDEX{guard} {t.name}_updated_at ON {t.name}(updated_at);")
    return "\n".join(statements)


def is_safe_sponsor_id(value: object) -> bool:
    """True for an id that may name a sponsor partition (allow-list, not a path)."""
    return (
        isinstance(value, str)
        and SPONSOR_ID_PATTERN.fullmatch(value) is not None
        and value not in RESERVED_SPONSOR_IDS
    )
