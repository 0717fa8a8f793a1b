"""Deviations and OOS investigations of one sponsor (its copies of site deviations).

A deviation is in view when it was raised in the period or is still open, and touches a
chosen product (through this sponsor's deviation_link rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from warehouse import clock, kpis
from warehouse.filters import Filters
from warehouse.scope import Scope

# OOS outcomes as shown (OOS_SQL maps the source enum, kept as outcome_code for the KPIs in
# warehouse.kpis); no outcome yet means still open.
OOS_OUTCOMES = ("confirmed", "invalidated", "inconclusive", "open")

# recurrence_of where the earlier deviation is not this sponsor's (DOMAIN.md KPI 7): its
# copy has recurrence_of blanked, so nothing of that deviation can be shown, only the fact.
ANOTHER_CLIENTS_DEVIATION = "recurs a deviation of another client"

DEVIATIONS_SQL = """
WITH links AS (
    SELECT
        l.deviation_id,
        string_agg(DISTINCT p.name, '; ' ORDER BY p.name) AS products,
        string_agg(DISTINCT b.batch_number, '; ' ORDER BY b.batch_number) AS batches,
        bool_or(coalesce(l.notified_late, false)) AS notified_late,
        bool_or(len($products::VARCHAR[]) = 0
                OR list_contains($products::VARCHAR[], coalesce(l.product_id, b.product_id)))
            AS in_products
    FROM deviation_link AS l
    LEFT JOIN batch AS b ON b.batch_id = l.batch_id
    LEFT JOIN product AS p ON p.product_id = coalesce(l.product_id, b.product_id)
    GROUP BY l.deviation_id
)
SELECT
    d.deviation_number,
    d.title,
    d.classification,
    d.status,
    d.awareness_at,
    d.original_due,
    d.current_due,
    d.extension_count,
    d.closed_at,
    d.closed_on_time,
    d.root_cause_category,
    CASE WHEN r.deviation_id IS NOT NULL THEN r.deviation_number
         WHEN d.is_recurrence THEN $another_client END AS recurrence_of,
    d.is_recurrence,
    CASE WHEN d.status NOT IN ('CLOSED', 'CANCELLED')
         THEN date_diff('day', d.awareness_at::DATE, $today::DATE) END AS age_days,
    d.status NOT IN ('CLOSED', 'CANCELLED') AND d.current_due < $today::DATE AS overdue,
    links.products,
    links.batches,
    links.notified_late
FROM deviation AS d
JOIN links USING (deviation_id)
LEFT JOIN deviation AS r ON r.deviation_id = d.recurrence_of
WHERE links.in_products
  AND d.awareness_at::DATE <= $end
  AND (d.awareness_at::DATE >= $start OR d.status NOT IN ('CLOSED', 'CANCELLED'))
ORDER BY d.awareness_at DESC, d.deviation_number
"""


def deviations(scope: Scope, filters: Filters, today: date | None = None) -> pl.DataFrame:
    """This sponsor's deviations in view, one row each; age and overdue for open ones."""
    params = {
        **filters.params(),
        "today": today or clock.today(),
        "another_client": ANOTHER_CLIENTS_DEVIATION,
    }
    return scope.frame("deviations", DEVIATIONS_SQL, params)


OOS_SQL = """
SELECT
    b.batch_number,
    p.name AS product,
    t.test_type,
    t.test_name,
    t.result_value,
    t.spec_low,
    t.spec_high,
    t.unit,
    o.phase,
    CASE o.outcome
        WHEN 'CONFIRMED' THEN 'confirmed'
        WHEN 'INVALIDATED_LAB_ERROR' THEN 'invalidated'
        WHEN 'INCONCLUSIVE' THEN 'inconclusive'
        ELSE 'open' END AS outcome,
    o.opened_at,
    o.closed_at,
    o.notified_at,
    o.summary,
    o.outcome AS outcome_code
FROM oos_investigation AS o
JOIN batch AS b ON b.batch_id = o.batch_id
JOIN product AS p ON p.product_id = b.product_id
LEFT JOIN test_result AS t ON t.test_id = o.test_id
WHERE (len($products::VARCHAR[]) = 0 OR list_contains($products::VARCHAR[], b.product_id))
  AND o.opened_at::DATE <= $end
  AND (o.opened_at::DATE >= $start OR o.closed_at IS NULL)
ORDER BY o.opened_at DESC, b.batch_number
"""


def oos_investigations(scope: Scope, filters: Filters) -> pl.DataFrame:
    """OOS investigations of this sponsor's batches in view, with test type and outcome."""
    return scope.frame("oos investigations", OOS_SQL, filters.params())


@dataclass(frozen=True)
class DeviationsPage:
    """Everything the deviations & OOS page shows, from one call: frames, KPIs, chart data."""

    deviations: pl.DataFrame  # dataset "deviations"
    open_deviations: kpis.KpiResult
    overdue_count: int  # open deviations past their current due date
    recurrences: int  # KPI 7
    by_class: pl.DataFrame  # classification, status, deviations
    by_cause: pl.DataFrame  # root_cause_category ("Not yet assigned" when none), deviations
    open_ones: pl.DataFrame  # the open deviations (age_days set), for the age histogram
    oos: pl.DataFrame  # dataset "oos_investigations"
    oos_outcomes: dict[str, int]  # investigations per OOS_OUTCOMES outcome, in that order
    invalidated_oos_rate: kpis.KpiResult  # KPI 3
    oos_by_outcome: pl.DataFrame  # outcome, test_type, investigations


def page_model(scope: Scope, filters: Filters, today: date) -> DeviationsPage:
    """The deviations & OOS page's model: deviations in view with their KPIs and breakdowns,
    and the OOS investigations in view with their outcomes and KPI 3."""
    found = deviations(scope, filters, today)
    oos = oos_investigations(scope, filters)
    outcomes = dict(oos.group_by("outcome").len().iter_rows())
    by_cause = found.with_columns(pl.col("root_cause_category").fill_null("Not yet assigned"))
    return DeviationsPage(
        deviations=found,
        open_deviations=kpis.open_deviations(found),
        overdue_count=int(found["overdue"].fill_null(False).sum()),
        recurrences=kpis.recurrence_count(found),
        by_class=(
            found.group_by("classification", "status")
            .len("deviations")
            .sort("classification", "status")
        ),
        by_cause=(
            by_cause.group_by("root_cause_category")
            .len("deviations")
            .sort("deviations", "root_cause_category")
        ),
        open_ones=found.filter(pl.col("age_days").is_not_null()),
        oos=oos,
        oos_outcomes={outcome: outcomes.get(outcome, 0) for outcome in OOS_OUTCOMES},
        invalidated_oos_rate=kpis.invalidated_oos_rate(
            oos.with_columns(outcome=pl.col("outcome_code")), filters.start, filters.end
        ),
        oos_by_outcome=(
            oos.group_by("outcome", "test_type").len("investigations").sort("outcome", "test_type")
        ),
    )
