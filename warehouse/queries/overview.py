"""Priya's Monday 8:30 (JOURNEYS.md): what needs this sponsor's attention today.

Every query reads the current state of the scope's records (what is open, waiting or overdue
as of `today`), narrowed to the chosen products; the period filter does not apply here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from warehouse.filters import Filters
from warehouse.queries import capa
from warehouse.scope import Scope

# Batches still moving through the lifecycle (not finally released or rejected).
IN_FLIGHT_STATUSES = (
    "PLANNED", "DISPENSED", "IN_PROCESS", "MFG_COMPLETE", "QC_TESTING", "BR_REVIEW",
    "CMO_DISPOSITIONED", "ON_HOLD",
)  # fmt: skip
DI_WINDOW_DAYS = 30

BATCHES_IN_FLIGHT_SQL = """
SELECT status, count(*) AS batches
FROM batch
WHERE status IN ('PLANNED', 'DISPENSED', 'IN_PROCESS', 'MFG_COMPLETE', 'QC_TESTING',
                 'BR_REVIEW', 'CMO_DISPOSITIONED', 'ON_HOLD')
  AND (len($products::VARCHAR[]) = 0 OR list_contains($products::VARCHAR[], product_id))
GROUP BY status
"""


def batches_in_flight(scope: Scope, filters: Filters) -> pl.DataFrame:
    """Batches in flight per lifecycle stage (status, batches), in lifecycle order."""
    counts = scope.frame("batches in flight", BATCHES_IN_FLIGHT_SQL, _products(filters))
    order = pl.DataFrame({"status": IN_FLIGHT_STATUSES}).with_row_index("stage")
    return counts.join(order, on="status").sort("stage").drop("stage")


AWAITING_RELEASE_SQL = """
SELECT b.batch_number, p.name AS product, b.cmo_decided_at,
       date_diff('day', b.cmo_decided_at::DATE, $today::DATE) AS days_waiting
FROM batch AS b
JOIN product AS p USING (product_id)
WHERE b.awaiting_sponsor_release
  AND (len($products::VARCHAR[]) = 0 OR list_contains($products::VARCHAR[], b.product_id))
ORDER BY days_waiting DESC, b.batch_number
"""


def awaiting_release(scope: Scope, filters: Filters, today: date) -> pl.DataFrame:
    """Batches released by the CMO and waiting for this sponsor's decision, longest first."""
    params = {**_products(filters), "today": today}
    return scope.frame("awaiting sponsor release", AWAITING_RELEASE_SQL, params)


OPEN_DEVIATIONS_SQL = """
SELECT d.deviation_number, d.title, d.classification, d.status, d.awareness_at,
       date_diff('day', d.awareness_at::DATE, $today::DATE) AS age_days
FROM deviation AS d
WHERE d.status NOT IN ('CLOSED', 'CANCELLED')
  AND (len($products::VARCHAR[]) = 0 OR EXISTS (
        SELECT 1 FROM deviation_link AS l
        LEFT JOIN batch AS b ON b.batch_id = l.batch_id
        WHERE l.deviation_id = d.deviation_id
          AND list_contains($products::VARCHAR[], coalesce(l.product_id, b.product_id))))
ORDER BY CASE d.classification WHEN 'CRITICAL' THEN 0 WHEN 'MAJOR' THEN 1 ELSE 2 END,
         d.awareness_at DESC
"""


def open_deviations(scope: Scope, filters: Filters, today: date) -> pl.DataFrame:
    """Open deviations touching the chosen products, most severe and newest first."""
    params = {**_products(filters), "today": today}
    return scope.frame("open deviations", OPEN_DEVIATIONS_SQL, params)


def overdue_capas(scope: Scope, filters: Filters, today: date) -> pl.DataFrame:
    """Open CAPAs past their current (extended) due date (DOMAIN.md KPI 10), most overdue
    first: the CAPA page's rows as of today, overdue as the catalogue defines it."""
    as_of_today = Filters(today, today, filters.products)
    return (
        capa.capas(scope, as_of_today, today)
        .filter(pl.col("overdue"))
        .select("capa_number", "title", "status", "current_due", "days_overdue")
        .sort("days_overdue", "capa_number", descending=[True, False])
    )


CHANGES_AWAITING_SQL = """
SELECT c.change_number, c.title, c.status AS change_status, c.planned_effective,
       p.name AS product, i.obligation, i.notified_at,
       CASE i.obligation WHEN 'PRIOR_APPROVAL' THEN 'approval' ELSE 'acknowledgement' END
           AS awaiting,
       i.impact_id
FROM change_impact AS i
JOIN change_control AS c USING (change_id)
LEFT JOIN product AS p ON p.product_id = i.product_id
WHERE coalesce(i.decision, 'PENDING') = 'PENDING'
  AND c.status NOT IN ('REJECTED', 'CLOSED')
  AND (i.obligation = 'PRIOR_APPROVAL'
       OR (i.obligation = 'NOTIFY' AND i.notified_at IS NOT NULL
           AND c.actual_effective IS NULL))
  AND (len($products::VARCHAR[]) = 0 OR i.product_id IS NULL
       OR list_contains($products::VARCHAR[], i.product_id))
ORDER BY awaiting DESC, c.planned_effective NULLS LAST, c.change_number
"""


def changes_awaiting_sponsor(scope: Scope, filters: Filters) -> pl.DataFrame:
    """Change impacts waiting on this sponsor: prior approval, or acknowledging a notice of a
    change that has not gone effective yet (after go-live there is nothing left to act on)."""
    return scope.frame("changes awaiting sponsor", CHANGES_AWAITING_SQL, _products(filters))


DATA_INTEGRITY_SQL = """
SELECT b.batch_number, e.seq, e.step_name, e.performed_at AS occurred_at,
       concat_ws(', ',
           CASE WHEN e.late_entry THEN 'late entry' END,
           CASE WHEN e.sign_off_gap THEN 'missing verifier' END,
           CASE WHEN e.self_verification THEN 'self-verification' END,
           CASE WHEN e.out_of_order THEN 'verified before performed' END,
           CASE WHEN e.training_gap THEN 'training gap' END,
           CASE WHEN e.out_of_sequence THEN 'performed before an earlier step' END,
           CASE WHEN e.outside_batch_window THEN 'performed outside the batch' END) AS exception
FROM batch_event AS e
JOIN batch AS b USING (batch_id)
WHERE e.di_exception
  AND e.performed_at >= $today::DATE - to_days($days::INTEGER)
  AND (len($products::VARCHAR[]) = 0 OR list_contains($products::VARCHAR[], b.product_id))
UNION ALL
SELECT b.batch_number, NULL, 'disposition', b.cmo_decided_at,
       concat_ws(', ',
           CASE WHEN b.disposed_with_open_deviation
                THEN 'dispositioned with an open deviation or OOS' END,
           CASE WHEN b.qa_review_missing THEN 'no QA review before disposition' END)
FROM batch AS b
WHERE (b.disposed_with_open_deviation OR b.qa_review_missing)
  AND b.cmo_decided_at >= $today::DATE - to_days($days::INTEGER)
  AND (len($products::VARCHAR[]) = 0 OR list_contains($products::VARCHAR[], b.product_id))
UNION ALL
SELECT b.batch_number, NULL, q.name, u.started_at,
       concat_ws(', ',
           CASE WHEN NOT u.calibration_valid_at_use THEN
               CASE WHEN u.latest_calibration_result = 'FAIL'
                    THEN 'used after a failed calibration'
                    ELSE 'used without a valid calibration' END END,
           CASE WHEN NOT u.qualification_valid_at_use THEN
               CASE WHEN u.latest_qualification_result = 'FAIL'
                    THEN 'used after a failed qualification'
                    ELSE 'used without a valid qualification' END END)
FROM equipment_usage AS u
JOIN batch AS b USING (batch_id)
JOIN (SELECT DISTINCT equipment_id, name FROM equipment) AS q USING (equipment_id)
WHERE NOT (u.calibration_valid_at_use AND u.qualification_valid_at_use)
  AND u.started_at >= $today::DATE - to_days($days::INTEGER)
  AND (len($products::VARCHAR[]) = 0 OR list_contains($products::VARCHAR[], b.product_id))
UNION ALL
SELECT NULL, NULL, 'change ' || c.change_number,
       coalesce(c.actual_effective, c.opened_at::DATE)::TIMESTAMP, i.violation_reason
FROM change_impact AS i
JOIN change_control AS c USING (change_id)
WHERE i.violation
  AND coalesce(c.actual_effective, c.opened_at::DATE) >= $today::DATE - to_days($days::INTEGER)
  AND (len($products::VARCHAR[]) = 0 OR i.product_id IS NULL
       OR list_contains($products::VARCHAR[], i.product_id))
ORDER BY occurred_at DESC, batch_number, seq
"""


def data_integrity_exceptions(
    scope: Scope, filters: Filters, today: date, days: int = DI_WINDOW_DAYS
) -> pl.DataFrame:
    """Data-integrity exceptions lately (DOMAIN.md, review by exception): flagged batch-record
    entries and dispositions, equipment used while not fit for use, and change impacts that
    broke the quality agreement."""
    params = {**_products(filters), "today": today, "days": days}
    return scope.frame("data-integrity exceptions", DATA_INTEGRITY_SQL, params)


@dataclass(frozen=True)
class OverviewPage:
    """Everything the overview shows, from one call: frames, counts and chart data."""

    in_flight: pl.DataFrame  # status, batches in lifecycle order (dataset "batch_status")
    in_flight_count: int
    awaiting: pl.DataFrame  # dataset "awaiting_release"
    longest_wait: int | None  # days the longest-waiting batch has waited; None when none waits
    deviations: pl.DataFrame  # dataset "open_deviations"
    deviations_by_class: pl.DataFrame  # classification, deviations
    overdue_capas: pl.DataFrame  # dataset "overdue_capas"
    changes: pl.DataFrame  # dataset "changes_awaiting_sponsor"
    exceptions: pl.DataFrame  # dataset "data_integrity_exceptions", last DI_WINDOW_DAYS days


def page_model(scope: Scope, filters: Filters, today: date) -> OverviewPage:
    """The overview's model: what is in flight, waiting, open or overdue as of `today`, and the
    data-integrity exceptions of the last DI_WINDOW_DAYS days."""
    in_flight = batches_in_flight(scope, filters)
    awaiting = awaiting_release(scope, filters, today)
    deviations = open_deviations(scope, filters, today)
    return OverviewPage(
        in_flight=in_flight,
        in_flight_count=int(in_flight["batches"].sum()),
        awaiting=awaiting,
        longest_wait=awaiting["days_waiting"].max() if awaiting.height else None,
        deviations=deviations,
        deviations_by_class=(
            deviations.group_by("classification").len("deviations").sort("classification")
        ),
        overdue_capas=overdue_capas(scope, filters, today),
        changes=changes_awaiting_sponsor(scope, filters),
        exceptions=data_integrity_exceptions(scope, filters, today),
    )


def _products(filters: Filters) -> dict[str, object]:
    return {"products": list(filters.products)}
