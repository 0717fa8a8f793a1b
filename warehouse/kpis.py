"""The KPI library: one pure function per KPI of DOMAIN.md (numbers 1–16), over polars frames.

Every page that shows a KPI calls the function here, for one sponsor or for the whole site:
the inputs are the same published columns either way (a sponsor's frame or the site's, with
each record once). A function returns a `KpiResult`: the value with its numerator and
denominator, and the data completeness of its population — the share of records that carry
the fields the formula needs. Records that lack them are left out of both numerator and
denominator, and a KPI whose completeness is under the threshold is flagged not reliable
rather than shown as a number. Periods are inclusive calendar dates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import polars as pl

from warehouse.catalogue.measures import (
    MEASURES,
    Measure,
    capa_age_days,
    capa_open,
    capa_overdue,
)
from warehouse.contract import LATE_ENTRY_MINUTES, SEVERITIES

# Below this share of complete records a KPI is shown as "not reliable" (configurable per call).
COMPLETENESS_THRESHOLD = 0.8


@dataclass(frozen=True)
class KpiResult:
    """One KPI computed over one population (a sponsor's or the site's records).

    For a ratio, value = numerator ÷ denominator. For a median or a count, numerator is the
    number of records measured or counted and denominator the population it comes from.
    """

    key: str
    value: float | None  # None when the denominator is empty
    numerator: float
    denominator: float
    completeness: float | None  # None when the population is empty
    reliable: bool
    lacking: str  # what an incomplete record lacks, e.g. "lots lack a final disposition"
    extra: dict[str, float | None] = field(default_factory=dict)

    @property
    def definition(self) -> Measure:
        return KPI_DEFINITIONS[self.key]

    @property
    def source(self) -> str:
        return self.definition.source

    @property
    def formula(self) -> str:
        return self.definition.formula

    @property
    def caveat(self) -> str | None:
        """'not reliable: 41 % of lots lack a disposition date', or None when reliable."""
        if self.reliable or self.completeness is None:
            return None
        return f"not reliable: {percent(1 - self.completeness)} of {self.lacking}"

    def display(self) -> str:
        """The value as a page shows it: a number, '—' for no data, or the caveat."""
        if self.caveat:
            return self.caveat
        return format_value(self.value, self.definition.unit)

    def tooltip(self) -> str:
        d = self.definition
        completeness = "—" if self.completeness is None else percent(self.completeness)
        return (
            f"{d.formula} Source: {d.source}. Period: {d.period}. Excludes: {d.excludes}. "
            f"{fmt_number(self.numerator)} ÷ {fmt_number(self.denominator)}; data completeness "
            f"{completeness}."
        )


def percent(share: float) -> str:
    return f"{share * 100:.0f} %"


def fmt_number(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "rate":
        return f"{value * 100:.1f} %"
    if unit == "days":
        return f"{value:.1f} d"
    if unit == "per_lot":
        return f"{value:.2f} per lot"
    if unit == "per_million":
        return f"{value:.1f} per million units"
    return f"{value:g}"


def _result(
    key: str,
    numerator: float,
    denominator: float,
    *,
    complete: int,
    population: int,
    lacking: str,
    min_completeness: float,
    value: float | None = None,
    ratio: bool = True,
    extra: dict[str, float | None] | None = None,
) -> KpiResult:
    """A KPI with its completeness; for a ratio, value = numerator ÷ denominator."""
    completeness = complete / population if population else None
    if ratio and denominator:
        value = numerator / denominator
    return KpiResult(
        key=key,
        value=value,
        numerator=numerator,
        denominator=denominator,
        completeness=completeness,
        reliable=completeness is not None and completeness >= min_completeness,
        lacking=lacking,
        extra=extra or {},
    )


def _on(column: str, start: date, end: date) -> pl.Expr:
    """The record's date (a timestamp's calendar day) falls in the inclusive period."""
    return pl.col(column).cast(pl.Date).is_between(start, end)


# --- 14. Prior-approval compliance -----------------------------------------------------------


def prior_approval_outcomes(impacts: pl.DataFrame, start: date, end: date) -> pl.DataFrame:
    """Prior-approval changes that went effective in the period, one row per change.

    `impacts`: change_impact rows joined to their change (change_id, obligation, decision,
    decided_at, actual_effective). A change complies when every PRIOR_APPROVAL impact in the
    frame was APPROVED on or before the effective date; it cannot be judged (complete=False)
    when an approved impact lacks its decision date.
    """
    prior = impacts.filter(
        (pl.col("obligation") == "PRIOR_APPROVAL")
        & pl.col("actual_effective").is_not_null()
        & _on("actual_effective", start, end)
    )
    approved = pl.col("decision") == "APPROVED"
    in_time = approved & (pl.col("decided_at").dt.date() <= pl.col("actual_effective"))
    return (
        prior.with_columns(
            (~(approved & pl.col("decided_at").is_null())).alias("__complete"),
            in_time.fill_null(False).alias("__in_time"),
        )
        .group_by("change_id")
        .agg(
            pl.col("actual_effective").first(),
            pl.col("__complete").all().alias("complete"),
            pl.col("__in_time").all().alias("approved_before_effective"),
            pl.len().alias("prior_approval_impacts"),
        )
        .sort("actual_effective", "change_id")
    )


def prior_approval_compliance(
    impacts: pl.DataFrame,
    start: date,
    end: date,
    *,
    min_completeness: float = COMPLETENESS_THRESHOLD,
) -> KpiResult:
    """KPI 14: prior-approval changes approved before going effective ÷ all such changes
    that went effective in the period."""
    changes = prior_approval_outcomes(impacts, start, end)
    judged = changes.filter(pl.col("complete"))
    return _result(
        "prior_approval_compliance",
        judged["approved_before_effective"].sum(),
        judged.height,
        complete=judged.height,
        population=changes.height,
        lacking="prior-approval changes lack the sponsor's decision date",
        min_completeness=min_completeness,
    )


# --- 16. Notification timeliness per quality agreement ---------------------------------------

NOTIFICATION_OUTCOMES = ("on time", "late", "not notified", "not yet due")


def notification_outcomes(
    notifications: pl.DataFrame, start: date, end: date, today: date
) -> pl.DataFrame:
    """Notifiable events whose clock started in the period, each with its deadline and outcome.

    `notifications`: one row per event and notified sponsor (subject from NOTIFIABLE_EVENTS,
    occurred_at when the clock starts, notified_at, deadline_hours from that sponsor's quality
    agreement; no deadline = not notifiable under the agreement, left out). Outcome: "on time"
    (notified by the deadline), "late", "not notified" (deadline passed before `today`), or
    "not yet due" (not notified, deadline still running; not counted).
    """
    deadline = pl.col("occurred_at") + pl.duration(hours=pl.col("deadline_hours"))
    notified = pl.col("notified_at")
    return (
        notifications.filter(
            pl.col("deadline_hours").is_not_null()
            & (pl.col("occurred_at").is_null() | _on("occurred_at", start, end))
        )
        .with_columns(deadline.alias("deadline_at"))
        .with_columns(
            pl.when(pl.col("occurred_at").is_null())
            .then(None)
            .when(notified.is_not_null() & (notified <= pl.col("deadline_at")))
            .then(pl.lit("on time"))
            .when(notified.is_not_null())
            .then(pl.lit("late"))
            .when(pl.col("deadline_at").dt.date() < today)
            .then(pl.lit("not notified"))
            .otherwise(pl.lit("not yet due"))
            .alias("outcome")
        )
    )


def notification_timeliness(
    notifications: pl.DataFrame,
    start: date,
    end: date,
    today: date,
    *,
    min_completeness: float = COMPLETENESS_THRESHOLD,
) -> KpiResult:
    """KPI 16: events notified to the sponsor within the agreed deadline ÷ notifiable events
    (those whose deadline has passed, or that were notified)."""
    events = notification_outcomes(notifications, start, end, today)
    counted = events.filter(pl.col("outcome").is_in(["on time", "late", "not notified"]))
    return _result(
        "notification_timeliness",
        counted.filter(pl.col("outcome") == "on time").height,
        counted.height,
        complete=events.filter(pl.col("occurred_at").is_not_null()).height,
        population=events.height,
        lacking="notifiable events lack the time their clock started",
        min_completeness=min_completeness,
    )


# --- 1. Lot acceptance rate ------------------------------------------------------------------


def final_dispositions(batches: pl.DataFrame) -> pl.DataFrame:
    """The batches with `final_decision` (RELEASED or REJECTED) and `final_decided_at`, both null
    while the lot has no dated final disposition.

    The decisions with their dates are the record (status only summarises them, and a period
    needs a date). The sponsor gives final release by its quality agreement, so a lot is
    finally released only when the sponsor APPROVED it: a CMO RELEASED lot still awaits the
    sponsor, ON_HOLD decides nothing. It is finally rejected when the sponsor rejects it, or
    when the CMO does (such a lot never reaches the sponsor).
    """
    by_sponsor = pl.col("sponsor_decision").is_not_null()
    by_cmo = (pl.col("cmo_decision") == "REJECTED").fill_null(False)
    decided_at = (
        pl.when(by_sponsor)
        .then(pl.col("sponsor_decided_at"))
        .when(by_cmo)
        .then(pl.col("cmo_decided_at"))
    )
    decision = (
        pl.when(pl.col("sponsor_decision") == "APPROVED")
        .then(pl.lit("RELEASED"))
        .otherwise(pl.lit("REJECTED"))
    )
    return batches.with_columns(
        pl.when(decided_at.is_not_null()).then(decision).alias("final_decision"),
        decided_at.alias("final_decided_at"),
    )


def lots_started(batches: pl.DataFrame, start: date, end: date) -> pl.DataFrame:
    """Lots whose manufacture started in the period (the FDA denominator)."""
    return batches.filter(_on("mfg_start", start, end))


def _lot_acceptance(
    key: str,
    lots: pl.DataFrame,
    denominator: pl.DataFrame,
    start: date,
    end: date,
    min_completeness: float,
) -> KpiResult:
    """Lots finally released in the period ÷ `denominator`; completeness over lots started."""
    started = lots_started(lots, start, end)
    released = lots.filter(
        (pl.col("final_decision") == "RELEASED") & _on("final_decided_at", start, end)
    )
    return _result(
        key,
        released.height,
        denominator.height,
        complete=started.filter(pl.col("final_decision").is_not_null()).height,
        population=started.height,
        lacking="lots started lack a final disposition",
        min_completeness=min_completeness,
        extra={"lots_started": started.height},
    )


def lot_acceptance_rate_fda(
    batches: pl.DataFrame,
    start: date,
    end: date,
    *,
    min_completeness: float = COMPLETENESS_THRESHOLD,
) -> KpiResult:
    """KPI 1, FDA 2016 draft: lots finally released in the period ÷ lots started in the period
    (over 100 % when fewer lots start than are released). Completeness: the share of lots
    started in the period with a final disposition (`final_dispositions`)."""
    lots = final_dispositions(batches)
    started = lots_started(lots, start, end)
    return _lot_acceptance("lot_acceptance_rate_fda", lots, started, start, end, min_completeness)


def lot_acceptance_rate_ispe(
    batches: pl.DataFrame,
    start: date,
    end: date,
    *,
    min_completeness: float = COMPLETENESS_THRESHOLD,
) -> KpiResult:
    """KPI 1, ISPE pilot: lots finally released in the period ÷ lots finally dispositioned
    (released or rejected) in the period. Completeness as for the FDA reading."""
    lots = final_dispositions(batches)
    dispositioned = lots.filter(_on("final_decided_at", start, end))
    return _lot_acceptance(
        "lot_acceptance_rate_ispe", lots, dispositioned, start, end, min_completeness
    )


# --- 2. Product quality complaint rate ---------------------------------------------------------


def complaint_rate(
    complaints: pl.DataFrame,
    batches: pl.DataFrame,
    start: date,
    end: date,
    *,
    min_completeness: float = COMPLETENESS_THRESHOLD,
) -> KpiResult:
    """KPI 2: quality complaints received in the period ÷ units distributed of the lots the
    sponsor released in the period, per million units."""
    received = complaints.filter(_on("received_at", start, end))
    released = batches.filter(
        (pl.col("sponsor_decision") == "APPROVED") & _on("sponsor_decided_at", start, end)
    )
    known = released.filter(pl.col("units_distributed").is_not_null())
    units = int(known["units_distributed"].sum())
    return _result(
        "complaint_rate",
        received.height,
        units,
        complete=known.height,
        population=released.height,
        lacking="released lots lack units distributed",
        min_completeness=min_completeness,
        value=received.height / units * 1e6 if units else None,
        ratio=False,
    )


# --- 3, 4. OOS rates ---------------------------------------------------------------------------

_RELEASE_AND_STABILITY = ("RELEASE", "LT_STABILITY")


def _release_oos(oos: pl.DataFrame, start: date, end: date) -> pl.DataFrame:
    return oos.filter(
        pl.col("test_type").is_in(_RELEASE_AND_STABILITY) & _on("opened_at", start, end)
    )


def invalidated_oos_rate(
    oos: pl.DataFrame, start: date, end: date, *, min_completeness: float = COMPLETENESS_THRESHOLD
) -> KpiResult:
    """KPI 3: release and long-term-stability OOS invalidated for a lab cause ÷ all such
    concluded OOS opened in the period (outcome is the contract's enum)."""
    results = _release_oos(oos, start, end)
    concluded = results.filter(pl.col("outcome").is_not_null())
    return _result(
        "invalidated_oos_rate",
        concluded.filter(pl.col("outcome") == "INVALIDATED_LAB_ERROR").height,
        concluded.height,
        complete=concluded.height,
        population=results.height,
        lacking="OOS investigations lack an outcome",
        min_completeness=min_completeness,
    )


def confirmed_oos_rate(
    oos: pl.DataFrame,
    tests: pl.DataFrame,
    start: date,
    end: date,
    *,
    min_completeness: float = COMPLETENESS_THRESHOLD,
) -> KpiResult:
    """KPI 4 (ISPE 2013): confirmed release and long-term-stability OOS opened in the period ÷
    batches with a release or long-term-stability test in the period, the same test types in
    both (`tests`: batch_id, test_type, tested_at)."""
    results = _release_oos(oos, start, end)
    tested = tests.filter(
        pl.col("test_type").is_in(_RELEASE_AND_STABILITY) & _on("tested_at", start, end)
    )
    return _result(
        "confirmed_oos_rate",
        results.filter(pl.col("outcome") == "CONFIRMED").height,
        tested["batch_id"].n_unique(),
        complete=results.filter(pl.col("outcome").is_not_null()).height,
        population=results.height,
        lacking="OOS investigations lack an outcome",
        min_completeness=min_completeness,
    )


# --- 5, 6. Right first time, deviation rate ----------------------------------------------------


def lots_produced(batches: pl.DataFrame, start: date, end: date) -> pl.DataFrame:
    """Lots whose manufacture ended in the period (the denominator of KPIs 5 and 6)."""
    return batches.filter(_on("mfg_end", start, end))


def right_first_time(
    batches: pl.DataFrame,
    deviation_links: pl.DataFrame,
    oos: pl.DataFrame,
    start: date,
    end: date,
    *,
    min_completeness: float = COMPLETENESS_THRESHOLD,
) -> KpiResult:
    """KPI 5 (FDA 2022): lots produced in the period without a non-conformance ÷ lots
    produced. A non-conformance: a linked deviation not cancelled (`deviation_links`: batch_id,
    status of the deviation), a confirmed OOS, rework or reprocessing (`reworked`), or a
    rejection by the CMO or the sponsor (`cmo_decision`, `sponsor_decision`)."""
    produced = lots_produced(batches, start, end)
    deviated = deviation_links.filter(pl.col("status") != "CANCELLED")["batch_id"]
    confirmed = oos.filter(pl.col("outcome") == "CONFIRMED")["batch_id"]
    rejected = (pl.col("cmo_decision") == "REJECTED").fill_null(False) | (
        pl.col("sponsor_decision") == "REJECTED"
    ).fill_null(False)
    known = produced.filter(pl.col("reworked").is_not_null())
    clean = known.filter(
        ~pl.col("reworked")
        & ~rejected
        & ~pl.col("batch_id").is_in(deviated.implode())
        & ~pl.col("batch_id").is_in(confirmed.implode())
    )
    return _result(
        "right_first_time",
        clean.height,
        known.height,
        complete=known.height,
        population=produced.height,
        lacking="lots lack the rework flag",
        min_completeness=min_completeness,
    )


def deviation_rate(
    deviations: pl.DataFrame,
    batches: pl.DataFrame,
    start: date,
    end: date,
    *,
    min_completeness: float = COMPLETENESS_THRESHOLD,
) -> KpiResult:
    """KPI 6 (ISPE wave 2): deviations raised in the period (not cancelled) ÷ lots produced."""
    raised = deviations.filter(_on("awareness_at", start, end) & (pl.col("status") != "CANCELLED"))
    produced = lots_produced(batches, start, end)
    return _result(
        "deviation_rate",
        raised.height,
        produced.height,
        complete=raised.height,
        population=raised.height,
        lacking="deviations lack an awareness date",
        min_completeness=min_completeness,
    )


# --- 7, 8. Deviation recurrence and on-time closure ---------------------------------------------


def recurrence_count(deviations: pl.DataFrame) -> int:
    """Deviations that recur a deviation of the prior 12 months (published `is_recurrence`),
    whoever the earlier one touched."""
    return int(deviations["is_recurrence"].fill_null(False).sum())


def _closed_in(deviations: pl.DataFrame, start: date, end: date) -> pl.DataFrame:
    return deviations.filter((pl.col("status") == "CLOSED") & _on("closed_at", start, end))


def recurring_deviation_rate(
    deviations: pl.DataFrame,
    start: date,
    end: date,
    *,
    min_completeness: float = COMPLETENESS_THRESHOLD,
) -> KpiResult:
    """KPI 7 (ISPE): deviations closed in the period that recur a deviation of the prior 12
    months ÷ deviations closed in the period; those without a root cause cannot be judged.

    The ETL judges `is_recurrence` from the whole site and puts it on every copy, so the site
    counts every recurrence and a sponsor one of another client's deviation, although its
    copy's recurrence_of is blank.
    """
    closed = _closed_in(deviations, start, end)
    judged = closed.filter(pl.col("root_cause_category").is_not_null())
    return _result(
        "recurring_deviation_rate",
        judged.filter(pl.col("is_recurrence").fill_null(False)).height,
        judged.height,
        complete=judged.height,
        population=closed.height,
        lacking="closed deviations lack a root-cause category",
        min_completeness=min_completeness,
    )


def deviation_on_time_closure(
    deviations: pl.DataFrame,
    start: date,
    end: date,
    *,
    min_completeness: float = COMPLETENESS_THRESHOLD,
) -> KpiResult:
    """KPI 8: deviations closed in the period by their original due date ÷ closed in it."""
    closed = _closed_in(deviations, start, end)
    known = closed.filter(pl.col("original_due").is_not_null())
    return _result(
        "deviation_on_time_closure",
        known.filter(pl.col("closed_at").cast(pl.Date) <= pl.col("original_due")).height,
        known.height,
        complete=known.height,
        population=closed.height,
        lacking="closed deviations lack an original due date",
        min_completeness=min_completeness,
    )


def open_deviations(deviations: pl.DataFrame) -> KpiResult:
    """Deviations open today (not CLOSED or CANCELLED), with the count per class in `extra`."""
    open_ones = deviations.filter(~pl.col("status").is_in(["CLOSED", "CANCELLED"]))
    by_class = dict(open_ones.group_by("classification").len().iter_rows())
    return _result(
        "open_deviations",
        open_ones.height,
        deviations.height,
        complete=deviations.height,
        population=deviations.height,
        lacking="deviations lack a status",
        min_completeness=0.0,
        value=float(open_ones.height),
        ratio=False,
        extra={c: by_class.get(c, 0) for c in SEVERITIES},
    )


# --- 9, 10, 11. CAPA ---------------------------------------------------------------------------

# DOMAIN.md KPI 10 (convention): open CAPAs by age in days.
AGE_BUCKETS = ("0–30", "31–60", "61–90", "91–180", ">180")
_BUCKET_UPPER_BOUNDS = (30, 60, 90, 180)


def capa_on_time_closure(
    capas: pl.DataFrame,
    start: date,
    end: date,
    today: date,
    *,
    due: str = "original_due",
    min_completeness: float = COMPLETENESS_THRESHOLD,
) -> KpiResult:
    """KPI 9 (FDA 2022 example): CAPAs closed by `due` ÷ CAPAs that fell due in the period
    up to today; `due` is "original_due" or "current_due"; cancelled CAPAs are left out."""
    last = min(end, today)
    due_in_period = capas.filter(
        pl.col(due).is_between(start, last) & (pl.col("status") != "CANCELLED")
    )
    # A CAPA marked closed without a closing date cannot be judged on time or late.
    known = due_in_period.filter(~((pl.col("status") == "CLOSED") & pl.col("closed_at").is_null()))
    on_time = known.filter(
        pl.col("closed_at").is_not_null() & (pl.col("closed_at").cast(pl.Date) <= pl.col(due))
    )
    return _result(
        f"capa_on_time_closure_{due.removesuffix('_due')}",
        on_time.height,
        known.height,
        complete=known.height,
        population=due_in_period.height,
        lacking="closed CAPAs lack a closing date",
        min_completeness=min_completeness,
    )


def age_bucket(days: int) -> str:
    """DOMAIN.md KPI 10 bucket of an open CAPA's age: 0–30 / 31–60 / 61–90 / 91–180 / >180."""
    for label, upper in zip(AGE_BUCKETS, _BUCKET_UPPER_BOUNDS, strict=False):
        if days <= upper:
            return label
    return AGE_BUCKETS[-1]


def open_capas(capas: pl.DataFrame, today: date) -> pl.DataFrame:
    """Open CAPAs with their age in days and overdue (today past the current due date), as
    the catalogue defines them."""
    return capas.filter(capa_open()).with_columns(
        capa_age_days(today).alias("age_days"),
        capa_overdue(today).alias("overdue"),
    )


def capa_aging(capas: pl.DataFrame, today: date) -> pl.DataFrame:
    """KPI 10: open CAPAs per age bucket (every bucket, in order), split into overdue or not."""
    aged = open_capas(capas, today)
    counted = aged.with_columns(
        bucket=pl.Series([age_bucket(d) for d in aged["age_days"]], dtype=pl.String)
    )
    rows = []
    for label in AGE_BUCKETS:
        in_bucket = counted.filter(pl.col("bucket") == label)
        overdue = int(in_bucket["overdue"].sum())
        rows.append(
            {"bucket": label, "overdue": overdue, "not_overdue": in_bucket.height - overdue}
        )
    return pl.DataFrame(rows, schema={"bucket": pl.String, "overdue": pl.Int64,
                                      "not_overdue": pl.Int64})  # fmt: skip


def overdue_capas(capas: pl.DataFrame, today: date) -> KpiResult:
    """KPI 10: open CAPAs past their current (extended) due date today, of all open CAPAs."""
    aged = open_capas(capas, today)
    overdue = int(aged["overdue"].sum())
    return _result(
        "overdue_capas",
        overdue,
        aged.height,
        complete=aged.height,
        population=aged.height,
        lacking="open CAPAs lack a due date",
        min_completeness=0.0,
        value=float(overdue),
        ratio=False,
    )


def capa_effectiveness_rate(
    checks: pl.DataFrame,
    start: date,
    end: date,
    *,
    min_completeness: float = COMPLETENESS_THRESHOLD,
) -> KpiResult:
    """KPI 11: effectiveness checks completed in the period judged EFFECTIVE ÷ checks completed."""
    done = checks.filter(_on("checked_at", start, end))
    judged = done.filter(pl.col("result").is_not_null())
    return _result(
        "capa_effectiveness_rate",
        judged.filter(pl.col("result") == "EFFECTIVE").height,
        judged.height,
        complete=judged.height,
        population=done.height,
        lacking="effectiveness checks lack a result",
        min_completeness=min_completeness,
    )


# --- 12. APR/PQR on time -----------------------------------------------------------------------


def apr_on_time(
    reviews: pl.DataFrame,
    start: date,
    end: date,
    today: date,
    *,
    min_completeness: float = COMPLETENESS_THRESHOLD,
) -> KpiResult:
    """KPI 12 (ISPE): product reviews completed by their original due date ÷ reviews that fell
    due in the period up to today (one per product and year)."""
    due = reviews.filter(pl.col("original_due").is_between(start, min(end, today)))
    on_time = due.filter(pl.col("completed_at").cast(pl.Date) <= pl.col("original_due"))
    return _result(
        "apr_on_time",
        on_time.height,
        due.height,
        complete=due.height,
        population=due.height,
        lacking="product reviews lack a due date",
        min_completeness=min_completeness,
    )


# --- 13. Batch disposition cycle time --------------------------------------------------------


def disposition_cycle_time(
    batches: pl.DataFrame,
    start: date,
    end: date,
    *,
    min_completeness: float = COMPLETENESS_THRESHOLD,
) -> KpiResult:
    """KPI 13: sponsor release − manufacturing end (published `cycle_time_days`) of lots the
    sponsor released (APPROVED) in the period: median as the value, p90 in `extra`."""
    decided = batches.filter(
        _on("sponsor_decided_at", start, end) & (pl.col("sponsor_decision") == "APPROVED")
    )
    days = decided["cycle_time_days"].drop_nulls()
    return _result(
        "disposition_cycle_time",
        days.len(),
        decided.height,
        complete=days.len(),
        population=decided.height,
        lacking="released lots lack a manufacturing end",
        min_completeness=min_completeness,
        value=days.median() if days.len() else None,
        ratio=False,
        extra={"p90": days.quantile(0.9, "linear") if days.len() else None},
    )


def cycle_time_trend(batches: pl.DataFrame) -> pl.DataFrame:
    """KPI 13 per month of sponsor release: median cycle time and lots measured."""
    return (
        batches.filter(pl.col("sponsor_decision") == "APPROVED")
        .drop_nulls("cycle_time_days")
        .with_columns(pl.col("sponsor_decided_at").dt.truncate("1mo").dt.date().alias("month"))
        .group_by("month")
        .agg(
            pl.col("cycle_time_days").median().alias("median_days"),
            pl.len().alias("batches"),
        )
        .sort("month")
    )


# --- 15. Late-entry rate -----------------------------------------------------------------------


def entry_days(events: pl.DataFrame, threshold_minutes: float = LATE_ENTRY_MINUTES) -> pl.DataFrame:
    """Batch-record entries counted per calendar day performed (and per `sponsor_id` where
    the frame has one): `entries`, `recorded` (those with a recording time) and `late`
    (recorded more than `threshold_minutes` after performed). ENTRY_DAYS_SQL counts the
    same in a scope, for LATE_ENTRY_MINUTES."""
    late = (pl.col("recorded_at") - pl.col("performed_at")).dt.total_microseconds() > (
        threshold_minutes * 60e6
    )
    by = [c for c in ("sponsor_id",) if c in events.columns]
    return events.group_by(*by, pl.col("performed_at").cast(pl.Date)).agg(
        pl.len().alias("entries"),
        pl.col("recorded_at").count().alias("recorded"),
        late.sum().alias("late"),
    )


# entry_days for LATE_ENTRY_MINUTES over a scope's whole batch_event view: day counts per
# partition instead of 10M entries (the cockpit's first view read them all).
_LATE_US = LATE_ENTRY_MINUTES * 60_000_000
ENTRY_DAYS_SQL = f"""
    SELECT sponsor_id, performed_at::DATE AS performed_at, count(*) AS entries,
           count(recorded_at) AS recorded,
           count(*) FILTER (
               WHERE epoch_us(recorded_at) - epoch_us(performed_at) > {_LATE_US}
           ) AS late
    FROM batch_event
    GROUP BY ALL"""


def late_entry_rate(
    events: pl.DataFrame,
    start: date,
    end: date,
    *,
    threshold_minutes: float = LATE_ENTRY_MINUTES,
    min_completeness: float = COMPLETENESS_THRESHOLD,
) -> KpiResult:
    """KPI 15: batch-record events performed in the period and recorded more than the
    threshold after they were performed ÷ events performed in the period.

    `events`: one row per entry (performed_at, recorded_at), or entries already counted per
    day (entry_days, made with the same threshold)."""
    days = events if "entries" in events.columns else entry_days(events, threshold_minutes)
    performed = days.filter(_on("performed_at", start, end))
    entries, recorded, late = (int(performed.get_column(c).sum()) for c in
                               ("entries", "recorded", "late"))  # fmt: skip
    return _result(
        "late_entry_rate",
        late,
        recorded,
        complete=recorded,
        population=entries,
        lacking="events lack a recording time",
        min_completeness=min_completeness,
    )


# --- Health measures (counts, not DOMAIN.md KPIs) ---------------------------------------------


def pending_change_approvals(impacts: pl.DataFrame) -> KpiResult:
    """Prior-approval impacts still waiting for the sponsor's decision on a live change
    (`change_status` not REJECTED or CLOSED), as the overview lists them."""
    live = impacts.filter(
        (pl.col("obligation") == "PRIOR_APPROVAL")
        & ~pl.col("change_status").is_in(["REJECTED", "CLOSED"])
    )
    pending = live.filter(pl.col("decision").fill_null("PENDING") == "PENDING")
    return _result(
        "pending_change_approvals",
        pending.height,
        live.height,
        complete=live.height,
        population=live.height,
        lacking="impacts lack an obligation",
        min_completeness=0.0,
        value=float(pending.height),
        ratio=False,
    )


# What each KPI means (formula, source, period, completeness rule, target) is declared once,
# in the catalogue; the functions above compute it.
KPI_DEFINITIONS: dict[str, Measure] = MEASURES
