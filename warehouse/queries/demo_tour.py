"""The BD demo tour's picks: which batch, change and shared vessel to show, chosen in one
sponsor's own confined scope each, so the tour demonstrates exactly what that sponsor sees.

The side-by-side of a shared vessel never opens a CMO scope: each side is computed from its
own sponsor scope, and the common (equipment, week) is found by intersecting what each side
can see on its own (equipment ids are site master data that both partitions carry).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import polars as pl

from warehouse import catalogue
from warehouse.filters import Filters
from warehouse.queries import capa, compliance
from warehouse.queries.batch_record import batch_record, exception_table, review_by_exception
from warehouse.queries.change_control import change_impacts
from warehouse.queries.common import sponsor_name
from warehouse.scope import Scope

TOUR_BATCH_SQL = """
SELECT b.batch_id, b.batch_number, count(*) AS exceptions, max(e.performed_at) AS latest
FROM batch_event AS e
JOIN batch AS b USING (batch_id)
WHERE e.di_exception
GROUP BY ALL
ORDER BY latest DESC, b.batch_id
LIMIT 1
"""


def batch_with_exception(scope: Scope) -> str | None:
    """The sponsor's most recent batch whose record carries a data-integrity exception."""
    found = scope.frame("tour batch", TOUR_BATCH_SQL)
    return found["batch_id"][0] if found.height else None


def change_needing_approval(impacts: pl.DataFrame) -> pl.DataFrame:
    """From change_control.change_impacts: the prior-approval impacts awaiting this sponsor,
    or else its most recent prior-approval impact (one row, or none)."""
    prior = impacts.filter(pl.col("obligation") == "PRIOR_APPROVAL")
    awaiting = prior.filter(pl.col("awaiting_sponsor"))
    return (awaiting if awaiting.height else prior).head(1)


VESSEL_WEEKS_SQL = """
SELECT u.equipment_id, q.name AS equipment, q.equipment_type,
       date_trunc('week', u.started_at)::DATE AS week,
       bool_or(u.previous_occupant = 'ANOTHER_CLIENT') AS after_another_client
FROM equipment_usage AS u
JOIN (SELECT DISTINCT equipment_id, name, equipment_type FROM equipment) AS q USING (equipment_id)
GROUP BY ALL
"""

# Vessel-like equipment reads best in a demo: "the same tank" is what segregation is about.
VESSEL_TYPES = ("VESSEL", "BIOREACTOR", "BLENDER", "GRANULATOR", "LYOPHILIZER")


def shared_vessel_week(scope_a: Scope, scope_b: Scope) -> dict | None:
    """The latest (equipment, week) both sponsors used, preferring a vessel where each came
    right after another client; None when they never shared equipment in the same week."""
    weeks_a = scope_a.frame("vessel weeks", VESSEL_WEEKS_SQL)
    weeks_b = scope_b.frame("vessel weeks", VESSEL_WEEKS_SQL)
    both = weeks_a.join(
        weeks_b.select("equipment_id", "week", pl.col("after_another_client").alias("b_after")),
        on=["equipment_id", "week"],
    )
    if both.is_empty():
        return None
    ranked = both.with_columns(
        (pl.col("after_another_client") & pl.col("b_after")).alias("crossed"),
        pl.col("equipment_type").is_in(list(VESSEL_TYPES)).alias("vessel"),
    ).sort(["crossed", "vessel", "week", "equipment_id"], descending=[True, True, True, False])
    return ranked.select("equipment_id", "equipment", "week").row(0, named=True)


VESSEL_VIEW_SQL = """
SELECT b.batch_number, p.name AS product, u.started_at, u.ended_at,
       CASE u.previous_occupant
           WHEN 'ANOTHER_CLIENT' THEN 'another client'
           WHEN 'SAME_SPONSOR' THEN 'own batch ' || coalesce(pb.batch_number, '?')
           ELSE 'none recorded'
       END AS previous_occupant,
       u.cleaning_verified_at, u.cleaning_result
FROM equipment_usage AS u
JOIN batch AS b ON b.batch_id = u.batch_id
JOIN product AS p ON p.product_id = b.product_id
LEFT JOIN batch AS pb ON pb.batch_id = u.previous_batch_id
WHERE u.equipment_id = $equipment_id
  AND u.started_at >= $week AND u.started_at < $week + INTERVAL 7 DAY
ORDER BY u.started_at, u.usage_id
"""


def vessel_week(scope: Scope, equipment_id: str, week: date) -> pl.DataFrame:
    """What this sponsor sees of one equipment in one week: its own uses, and whoever came
    before each only as "another client" unless it was its own batch."""
    params = {"equipment_id": equipment_id, "week": week}
    return scope.frame("vessel week", VESSEL_VIEW_SQL, params)


# --- one model per tour step -------------------------------------------------------------------


@dataclass(frozen=True)
class ExceptionStep:
    """Step 1: the sponsor's latest batch record with a data-integrity exception."""

    batch_number: str
    product: str
    status: str  # in words
    steps_recorded: int
    exceptions: pl.DataFrame  # dataset "batch_record_exceptions"


def exception_step(scope: Scope) -> ExceptionStep | None:
    """None when no batch record of the sponsor carries an exception."""
    batch_id = batch_with_exception(scope)
    if batch_id is None:
        return None
    record = batch_record(scope, batch_id)
    header = record.header.row(0, named=True)
    status = catalogue.dataset("batches").column("status").word(header["status"])
    return ExceptionStep(
        batch_number=header["batch_number"],
        product=header["product"],
        status=status or "",
        steps_recorded=record.steps.height,
        exceptions=exception_table(review_by_exception(record)),
    )


@dataclass(frozen=True)
class CapaStep:
    """Step 2: open CAPAs by age, and the overdue ones."""

    aging_chart: pl.DataFrame  # capa.aging_chart
    overdue: pl.DataFrame  # dataset "capas"


def capa_step(scope: Scope, period: Filters, today: date) -> CapaStep:
    found = capa.capas(scope, period, today)
    overdue = found.filter(pl.col("overdue").fill_null(False)).select(
        "capa_number", "title", "source_record", "status", "original_due", "current_due",
        "extension_count", "days_overdue",
    )  # fmt: skip
    return CapaStep(aging_chart=capa.aging_chart(found, today), overdue=overdue)


@dataclass(frozen=True)
class ChangeStep:
    """Step 3: the prior-approval change awaiting the sponsor, or its latest one."""

    change: pl.DataFrame  # dataset "change_controls", one row or none
    awaiting: bool
    obligation: str  # in words
    decision: str  # in words; "Pending" while undecided


def change_step(scope: Scope, period: Filters, today: date) -> ChangeStep:
    change = change_needing_approval(change_impacts(scope, period, today))
    if change.is_empty():
        return ChangeStep(change, False, "", "")
    row = change.row(0, named=True)
    declared = catalogue.dataset("change_controls")
    decision = declared.column("decision").word(row["decision"]) if row["decision"] else None
    return ChangeStep(
        change=change.drop("impact_id"),
        awaiting=bool(row["awaiting_sponsor"]),
        obligation=declared.column("obligation").word(row["obligation"]) or "",
        decision=decision or "Pending",
    )


@dataclass(frozen=True)
class AuditStep:
    """Step 4: the sponsor's quality agreement, kept or broken, over the period."""

    shares: pl.DataFrame  # compliance.sponsor_compliance: measure, shown, tooltip per row
    breaches: pl.DataFrame  # dataset "compliance_breaches"
    clocks: pl.DataFrame  # dataset "agreed_clocks"
    obligations: pl.DataFrame  # dataset "agreed_obligations"


def audit_step(scope: Scope, period: Filters, today: date, now: datetime) -> AuditStep:
    events = compliance.notifiable_events(scope, period, today)
    changes = compliance.change_obligations(scope, period)
    terms = compliance.agreement_terms(scope)
    return AuditStep(
        shares=compliance.sponsor_compliance(events, changes, period.start, period.end, today),
        breaches=compliance.breaches(events, changes, now),
        clocks=compliance.agreed_clocks(terms),
        obligations=compliance.agreed_obligations(terms),
    )


@dataclass(frozen=True)
class VesselStep:
    """Step 5: one equipment in one week, as each of two sponsors sees it."""

    equipment: str
    week: date
    sides: tuple[tuple[str, pl.DataFrame], ...]  # (sponsor name, dataset "vessel_week") each


def vessel_step(scope_a: Scope, scope_b: Scope) -> VesselStep | None:
    """None when the two sponsors never used the same equipment in the same week. Each side is
    read through its own sponsor's scope."""
    shared = shared_vessel_week(scope_a, scope_b)
    if shared is None:
        return None
    sides = tuple(
        (sponsor_name(scope), vessel_week(scope, shared["equipment_id"], shared["week"]))
        for scope in (scope_a, scope_b)
    )
    return VesselStep(shared["equipment"], shared["week"], sides)
