"""Every measure, declared once: each KPI of DOMAIN.md and the counts pages show (open,
overdue, late, exceptions), with its formula in words, source, period, completeness rule,
target and the one function that computes it.

The math lives in the function a measure names (warehouse.kpis for the KPIs); a page, the
cockpit, an export or the API asks here what a number means. Functions are named as
"module:function" so that warehouse.kpis can import this module without a cycle.

One row-level definition lives here as code, because the CAPA query, the KPIs and every count
of open or overdue CAPAs need it and it must not drift: which CAPA is open, how old and
whether overdue (`capa_open`, `capa_age_days`, `capa_overdue`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import polars as pl

from warehouse.contract import LATE_ENTRY_MINUTES

# A CAPA is done once CLOSED or CANCELLED; every other status of the contract is open.
CAPA_DONE_STATUSES = ("CLOSED", "CANCELLED")


def capa_open() -> pl.Expr:
    """The CAPA is open: not CLOSED or CANCELLED (DOMAIN.md, CAPA statuses)."""
    return ~pl.col("status").is_in(CAPA_DONE_STATUSES)


def capa_age_days(today: date) -> pl.Expr:
    """Age of a CAPA in days (DOMAIN.md KPI 10): today − the day it was opened."""
    return (pl.lit(today) - pl.col("opened_at").cast(pl.Date)).dt.total_days()


def capa_overdue(today: date) -> pl.Expr:
    """Overdue CAPA (DOMAIN.md KPI 10): open, and today past its current (extended) due date.

    Over CAPA rows with `status` and `current_due`; null when an open CAPA has no due date.
    """
    return capa_open() & (pl.col("current_due") < today)


@dataclass(frozen=True)
class Target:
    """The value a population should reach (at least or at most); conventions, not regulation."""

    value: float
    at_least: bool

    def met(self, actual: float) -> bool:
        return actual >= self.value if self.at_least else actual <= self.value


@dataclass(frozen=True)
class Measure:
    """What a number means: the text behind every tooltip, the cockpit's definitions and the
    API's documentation."""

    number: int | None  # DOMAIN.md KPI number; None for counts
    key: str
    name: str
    formula: str
    source: str
    period: str
    excludes: str
    unit: str  # "rate" (0–1), "per_lot", "per_million", "days" or "count"
    higher_is_better: bool
    function: str = ""  # "module:function": the one function that computes it
    completeness: str = ""  # which records must be complete for the value to be reliable
    target: Target | None = None

    @property
    def compute(self) -> Callable:
        module, name = self.function.split(":")
        return getattr(importlib.import_module(module), name)

    @property
    def help(self) -> str:
        """One tooltip: the formula, its source and its period."""
        return f"{self.formula} Source: {self.source}. Period: {self.period}."


NOT_APPLIED = "Not applied: a count of records as they stand."

# fmt: off
_MEASURES = (
    Measure(
        1, "lot_acceptance_rate_fda", "Lot acceptance rate (FDA 2016)",
        "Lots finally released (approved by the sponsor) in the period ÷ lots started in the "
        "period; can exceed 100 % when fewer lots start than are released.",
        "FDA 2016 draft guidance Submission of Quality Metrics Data; DOMAIN.md KPI 1",
        "lots released and lots whose manufacture started in the period",
        "nothing: lots started and still in process, awaiting the sponsor or ON_HOLD stay in "
        "the denominator; completeness is the share of lots started with a final disposition "
        "(sponsor decision, or CMO rejection)", "rate", True,
        function="warehouse.kpis:lot_acceptance_rate_fda",
        completeness="Lots started in the period that have a final disposition (sponsor "
        "decision, or CMO rejection).",
        target=Target(0.98, at_least=True)),
    Measure(
        1, "lot_acceptance_rate_ispe", "Lot acceptance rate (ISPE pilot)",
        "Lots finally released (approved by the sponsor) in the period ÷ lots finally "
        "dispositioned (sponsor approved or rejected, or CMO rejected) in the period.",
        "ISPE Quality Metrics pilot; DOMAIN.md KPI 1",
        "lots finally dispositioned in the period",
        "lots in process, awaiting the sponsor, or ON_HOLD; completeness is the share of lots "
        "started in the period with a final disposition", "rate", True,
        function="warehouse.kpis:lot_acceptance_rate_ispe",
        completeness="Lots started in the period that have a final disposition (sponsor "
        "decision, or CMO rejection).",
        target=Target(0.98, at_least=True)),
    Measure(
        2, "complaint_rate", "Product quality complaint rate",
        "Quality complaints received ÷ units distributed of lots released, per million units.",
        "FDA 2016 draft guidance Submission of Quality Metrics Data; DOMAIN.md KPI 2",
        "complaints received and lots released by the sponsor in the period",
        "lots without units distributed (they lower completeness)", "per_million", False,
        function="warehouse.kpis:complaint_rate",
        completeness="Lots released in the period that record their units distributed."),
    Measure(
        3, "invalidated_oos_rate", "Invalidated OOS rate",
        "Release and long-term-stability OOS invalidated for a lab cause ÷ all such concluded "
        "OOS.",
        "FDA 2016 draft guidance Submission of Quality Metrics Data; DOMAIN.md KPI 3",
        "OOS investigations opened in the period",
        "IPC results; investigations without an outcome yet", "rate", False,
        function="warehouse.kpis:invalidated_oos_rate",
        completeness="Release and long-term-stability OOS investigations opened in the "
        "period that have an outcome."),
    Measure(
        4, "confirmed_oos_rate", "Confirmed OOS rate",
        "Confirmed release and long-term-stability OOS ÷ batches with a release or "
        "long-term-stability test (the same test types in both).",
        "ISPE Quality Metrics pilot (2013); DOMAIN.md KPI 4",
        "OOS opened and batches tested in the period", "IPC results and IPC tests", "rate", False,
        function="warehouse.kpis:confirmed_oos_rate",
        completeness="Release and long-term-stability OOS investigations opened in the "
        "period that have an outcome."),
    Measure(
        5, "right_first_time", "Right first time",
        "Lots made without a non-conformance (a linked deviation not cancelled, a confirmed "
        "OOS, rework or reprocessing, or a rejection by the CMO or the sponsor) ÷ lots "
        "produced.",
        "FDA 2022 Federal Register notice on quality metrics; DOMAIN.md KPI 5",
        "lots whose manufacture ended in the period", "lots still in manufacture", "rate", True,
        function="warehouse.kpis:right_first_time",
        completeness="Lots produced in the period that record whether they were reworked.",
        target=Target(0.80, at_least=True)),
    Measure(
        6, "deviation_rate", "Deviation rate",
        "Deviations raised ÷ lots produced.",
        "ISPE Quality Metrics pilot, wave 2; DOMAIN.md KPI 6",
        "deviations raised and lots whose manufacture ended in the period",
        "cancelled deviations", "per_lot", False,
        function="warehouse.kpis:deviation_rate",
        completeness="Always complete: deviations are counted by their (required) awareness "
        "date."),
    Measure(
        7, "recurring_deviation_rate", "Recurring deviation rate",
        "Deviations closed that recur a deviation raised in the 12 months before them ÷ "
        "deviations closed; every recurrence counts, whoever the earlier deviation touched "
        "(for a sponsor: a recurrence of another client's deviation too).",
        "ISPE Quality Metrics pilot; DOMAIN.md KPI 7", "deviations closed in the period",
        "closed deviations without a root cause (they lower completeness)", "rate", False,
        function="warehouse.kpis:recurring_deviation_rate",
        completeness="Deviations closed in the period that have a root-cause category."),
    Measure(
        8, "deviation_on_time_closure", "Deviation on-time closure",
        "Deviations closed by the original due date (awareness + 30 days) ÷ deviations closed.",
        "Industry convention; DOMAIN.md KPI 8", "deviations closed in the period",
        "cancelled and open deviations", "rate", True,
        function="warehouse.kpis:deviation_on_time_closure",
        completeness="Deviations closed in the period that have an original due date."),
    Measure(
        9, "capa_on_time_closure_original", "CAPA on-time closure (original due)",
        "CAPAs closed by the original due date ÷ CAPAs due in the period.",
        "FDA 2022 Federal Register notice (example metric); DOMAIN.md KPI 9",
        "CAPAs whose original due date is in the period, up to today", "cancelled CAPAs",
        "rate", True,
        function="warehouse.kpis:capa_on_time_closure",
        completeness="CAPAs due in the period that, when CLOSED, have a closing date."),
    Measure(
        9, "capa_on_time_closure_current", "CAPA on-time closure (current due)",
        "CAPAs closed by the current (extended) due date ÷ CAPAs due in the period.",
        "FDA 2022 Federal Register notice (example metric); DOMAIN.md KPI 9",
        "CAPAs whose current due date is in the period, up to today", "cancelled CAPAs",
        "rate", True,
        function="warehouse.kpis:capa_on_time_closure",
        completeness="CAPAs due in the period that, when CLOSED, have a closing date."),
    Measure(
        10, "overdue_capas", "Overdue CAPAs",
        "Open CAPAs whose current (extended) due date is before today; aging by 0–30 / 31–60 / "
        "61–90 / 91–180 / >180 days open.",
        "Industry convention; DOMAIN.md KPI 10", "state today (the period does not apply)",
        "closed and cancelled CAPAs", "count", False,
        function="warehouse.kpis:overdue_capas",
        completeness=NOT_APPLIED,
        target=Target(0, at_least=False)),
    Measure(
        11, "capa_effectiveness_rate", "CAPA effectiveness rate",
        "Effectiveness checks judged effective ÷ checks completed.",
        "DOMAIN.md KPI 11", "checks completed in the period", "checks without a result",
        "rate", True,
        function="warehouse.kpis:capa_effectiveness_rate",
        completeness="Effectiveness checks completed in the period that have a result."),
    Measure(
        12, "apr_on_time", "APR/PQR on time",
        "Product reviews completed by the original due date ÷ product reviews due.",
        "ISPE Quality Metrics pilot; DOMAIN.md KPI 12",
        "reviews whose original due date is in the period, up to today", "reviews not yet due",
        "rate", True,
        function="warehouse.kpis:apr_on_time",
        completeness="Always complete: reviews are counted by their (required) original due "
        "date."),
    Measure(
        13, "disposition_cycle_time", "Disposition cycle time (median)",
        "Sponsor release − manufacturing end, in days: median (p50) and p90.",
        "DOMAIN.md KPI 13", "lots the sponsor released in the period",
        "lots without a manufacturing end (they lower completeness)", "days", False,
        function="warehouse.kpis:disposition_cycle_time",
        completeness="Lots the sponsor released in the period that have a manufacturing end.",
        target=Target(14, at_least=False)),
    Measure(
        14, "prior_approval_compliance", "Prior-approval compliance",
        "Prior-approval changes approved (on or before the effective date) ÷ all prior-approval "
        "changes that went effective.",
        "FDA 2016 guidance Contract Manufacturing Arrangements for Drugs: Quality Agreements; "
        "DOMAIN.md KPI 14",
        "changes whose actual effective date is in the period",
        "changes not yet effective; changes with only NOTIFY/NONE impacts", "rate", True,
        function="warehouse.kpis:prior_approval_compliance",
        completeness="Prior-approval changes effective in the period whose approvals have a "
        "decision date."),
    Measure(
        15, "late_entry_rate", "Late-entry rate",
        f"Batch-record events recorded more than {LATE_ENTRY_MINUTES} min after they were "
        "performed ÷ events.",
        "ALCOA+ contemporaneous records (21 CFR Part 11, EU GMP Annex 11); DOMAIN.md KPI 15",
        "events performed in the period", "events without a recording time", "rate", False,
        function="warehouse.kpis:late_entry_rate",
        completeness="Events performed in the period that have a recording time."),
    Measure(
        16, "notification_timeliness", "Notification timeliness",
        "Events notified to the sponsor within the quality agreement's deadline ÷ notifiable "
        "events (deviations by class from awareness, confirmed OOS from opening, critical "
        "complaints from receipt).",
        "FDA 2016 guidance Contract Manufacturing Arrangements for Drugs: Quality Agreements "
        "(deadlines from each sponsor's agreement); DOMAIN.md KPI 16",
        "events whose clock started in the period",
        "events the agreement sets no deadline for; unnotified events still inside the deadline",
        "rate", True,
        function="warehouse.kpis:notification_timeliness",
        completeness="Notifiable events that have the time their clock started.",
        target=Target(0.95, at_least=True)),
    Measure(
        None, "open_deviations", "Open deviations",
        "Deviations not CLOSED or CANCELLED today, by class.",
        "Deviation records (QMS)", "state today (the period does not apply)",
        "closed and cancelled deviations", "count", False,
        function="warehouse.kpis:open_deviations",
        completeness=NOT_APPLIED),
    Measure(
        None, "open_critical_deviations", "Open critical deviations",
        "Deviations classified CRITICAL not CLOSED or CANCELLED today.",
        "Deviation records (QMS)", "state today (the period does not apply)",
        "closed and cancelled deviations; other classes", "count", False,
        function="warehouse.kpis:open_deviations",
        completeness=NOT_APPLIED,
        target=Target(0, at_least=False)),
    Measure(
        None, "open_major_deviations", "Open major deviations",
        "Deviations classified MAJOR not CLOSED or CANCELLED today.",
        "Deviation records (QMS)", "state today (the period does not apply)",
        "closed and cancelled deviations; other classes", "count", False,
        function="warehouse.kpis:open_deviations",
        completeness=NOT_APPLIED,
        target=Target(2, at_least=False)),
    Measure(
        None, "open_minor_deviations", "Open minor deviations",
        "Deviations classified MINOR not CLOSED or CANCELLED today.",
        "Deviation records (QMS)", "state today (the period does not apply)",
        "closed and cancelled deviations; other classes", "count", False,
        function="warehouse.kpis:open_deviations",
        completeness=NOT_APPLIED,
        target=Target(5, at_least=False)),
    Measure(
        None, "disposition_cycle_time_p90", "Disposition cycle time (p90)",
        "Sponsor release − manufacturing end, in days: the 90th percentile (9 lots in 10 "
        "were released within it).",
        "DOMAIN.md KPI 13", "lots the sponsor released in the period",
        "lots without a manufacturing end (they lower completeness)", "days", False,
        function="warehouse.kpis:disposition_cycle_time",
        completeness="Lots the sponsor released in the period that have a manufacturing end.",
        target=Target(21, at_least=False)),
    Measure(
        None, "pending_change_approvals", "Pending change approvals",
        "Prior-approval impacts of live changes still waiting for the sponsor's decision.",
        "Change control impact rows (QMS)", "state today (the period does not apply)",
        "rejected and closed changes; NOTIFY impacts", "count", False,
        function="warehouse.kpis:pending_change_approvals",
        completeness=NOT_APPLIED,
        target=Target(3, at_least=False)),
    Measure(
        None, "open_capas", "Open CAPAs",
        "CAPAs not CLOSED or CANCELLED today.",
        "CAPA records (QMS); DOMAIN.md KPI 10", "state today (the period does not apply)",
        "closed and cancelled CAPAs", "count", False,
        function="warehouse.kpis:open_capas", completeness=NOT_APPLIED),
    Measure(
        None, "late_notifications", "Late notifications",
        "Notifiable events notified after the quality agreement's deadline, or not notified "
        "once it passed (KPI 16 outcomes 'late' and 'not notified').",
        "FDA 2016 guidance Contract Manufacturing Arrangements for Drugs: Quality Agreements; "
        "DOMAIN.md KPI 16",
        "events whose clock started in the period",
        "events the agreement sets no deadline for; unnotified events still inside the deadline",
        "count", False,
        function="warehouse.kpis:notification_outcomes",
        completeness="Events without the time their clock started cannot be judged."),
    Measure(
        None, "batch_record_exceptions", "Batch-record exceptions",
        "Data-integrity exceptions of a batch record found by review by exception (sign-off "
        "gaps, self-verification, out of order, late entries, training gaps, equipment not fit "
        "for use, materials, open deviations or OOS at disposition).",
        "ISPE review by exception; DOMAIN.md, Batch lifecycle", "the batch record as it stands",
        "nothing", "count", False,
        function="warehouse.queries.batch_record:review_by_exception",
        completeness=NOT_APPLIED),
    Measure(
        None, "data_integrity_exceptions", "Data-integrity exceptions",
        "Batch-record entries and dispositions flagged as data-integrity exceptions lately.",
        "ALCOA+ (21 CFR Part 11, EU GMP Annex 11); DOMAIN.md, Batch lifecycle",
        "the last 30 days", "nothing", "count", False,
        function="warehouse.queries.overview:data_integrity_exceptions",
        completeness=NOT_APPLIED),
    Measure(
        None, "calibration_overdue", "Calibration overdue today",
        "Equipment that ran these batches whose calibration due day is before today.",
        "Equipment records (CMO); DOMAIN.md, Records and enums",
        "state today, of equipment used in the period", "equipment without a calibration due "
        "day", "count", False,
        function="warehouse.queries.equipment:equipment_status", completeness=NOT_APPLIED),
    Measure(
        None, "equipment_uses_not_valid", "Uses out of calibration / qualification",
        "Uses of equipment that started while its calibration or qualification was not valid.",
        "DOMAIN.md, Batch lifecycle (equipment not fit for use)", "uses started in the period",
        "nothing", "count", False,
        function="warehouse.queries.equipment:invalid_uses", completeness=NOT_APPLIED),
    Measure(
        None, "training_gaps", "Steps performed without current training",
        "Batch steps whose performer's training on the step's SOP version was not current at "
        "the time (never trained, expired, or completed only after the step).",
        "DOMAIN.md, Batch lifecycle (training gap)", "steps performed in the period",
        "nothing", "count", False,
        function="warehouse.queries.training:training_gaps", completeness=NOT_APPLIED),
    Measure(
        None, "milestones_late", "Milestones late",
        "Tech-transfer milestones not reached by their planned day.",
        "Tech-transfer plans (CMO); DOMAIN.md, Records and enums", "state today",
        "milestones reached", "count", False,
        function="warehouse.queries.tech_transfer:projects", completeness=NOT_APPLIED),
)
# fmt: on

MEASURES: dict[str, Measure] = {m.key: m for m in _MEASURES}
