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

# Below this share of complete records a KPI is shown as "not reliable" (configurable per call).
COMPLETENESS_THRESHOLD = 0.8


@dataclass(frozen=True)
class KpiDefinition:
    """What a KPI means: the text behind every tooltip and the cockpit's definitions."""

    number: int | None  # DOMAIN.md KPI number; None for health measures that are plain counts
    key: str
    name: str
    formula: str
    source: str
    period: str
    excludes: str
    unit: str  # "rate" (0–1), "days", "count" or "per_million"
    higher_is_better: bool


@dataclass(frozen=True)
class KpiResult:
    """One KPI computed over one population (a sponsor's or the site's records)."""

    key: str
    value: float | None  # None when the denominator is empty
    numerator: float
    denominator: float
    completeness: float | None  # None when the population is empty
    reliable: bool
    lacking: str  # what an incomplete record lacks, e.g. "lots lack a final disposition"
    extra: dict[str, float | None] = field(default_factory=dict)

    @property
    def definition(self) -> KpiDefinition:
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
    extra: dict[str, float | None] | None = None,
) -> KpiResult:
    """A ratio KPI (value = numerator ÷ denominator unless given) with its completeness."""
    completeness = complete / population if population else None
    if value is None and denominator:
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


# fmt: off
KPI_DEFINITIONS: dict[str, KpiDefinition] = {d.key: d for d in (
    KpiDefinition(
        14, "prior_approval_compliance", "Prior-approval compliance",
        "Prior-approval changes approved (on or before the effective date) ÷ all prior-approval "
        "changes that went effective.",
        "DOMAIN.md KPI 14; FDA 2016 guidance Contract Manufacturing Arrangements for Drugs: "
        "Quality Agreements",
        "changes whose actual effective date is in the period",
        "changes not yet effective; changes with only NOTIFY/NONE impacts",
        "rate", True,
    ),
    KpiDefinition(
        16, "notification_timeliness", "Notification timeliness",
        "Events notified to the sponsor within the quality agreement's deadline ÷ notifiable "
        "events (deviations by class from awareness, confirmed OOS from opening, critical "
        "complaints from receipt).",
        "DOMAIN.md KPI 16; deadlines from each sponsor's quality agreement",
        "events whose clock started in the period",
        "events the agreement sets no deadline for; unnotified events still inside the deadline",
        "rate", True,
    ),
)}
# fmt: on
