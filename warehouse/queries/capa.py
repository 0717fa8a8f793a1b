"""CAPAs of one sponsor: aging, overdue, on-time closure, extensions, effectiveness.

The KPI formulas (aging, on-time closure, effectiveness) live in warehouse.kpis.

A CAPA is in view when it was active in the period (opened by its end, not closed before its
start) or fell due in it, and its source record touches a chosen product.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from warehouse import clock, kpis
from warehouse.filters import Filters
from warehouse.scope import Scope

CAPAS_SQL = """
WITH capa_product AS (
    SELECT c.capa_id, coalesce(l.product_id, lb.product_id) AS product_id
    FROM capa AS c
    JOIN deviation_link AS l ON l.deviation_id = c.deviation_id
    LEFT JOIN batch AS lb ON lb.batch_id = l.batch_id
    WHERE c.source_type = 'DEVIATION'
    UNION ALL
    SELECT c.capa_id, b.product_id
    FROM capa AS c
    JOIN oos_investigation AS o ON o.oos_id = c.oos_id
    JOIN batch AS b ON b.batch_id = o.batch_id
    WHERE c.source_type = 'OOS'
    UNION ALL
    SELECT c.capa_id, k.product_id
    FROM capa AS c JOIN complaint AS k ON k.complaint_id = c.complaint_id
    WHERE c.source_type = 'COMPLAINT'
    UNION ALL
    SELECT c.capa_id, f.product_id
    FROM capa AS c JOIN inspection_finding AS f ON f.finding_id = c.finding_id
    WHERE c.source_type = 'SELF_INSPECTION'
),
capa_open AS (
    SELECT *, status NOT IN ('CLOSED', 'CANCELLED') AS is_open FROM capa
)
SELECT
    c.capa_number,
    c.title,
    c.source_type,
    coalesce(d.deviation_number, 'OOS ' || ob.batch_number, k.complaint_number, c.finding_id)
        AS source_record,
    c.status,
    c.opened_at,
    c.original_due,
    c.current_due,
    c.extension_count,
    c.closed_at,
    c.closed_on_time_original,
    c.closed_on_time_current,
    c.effectiveness_result,
    CASE WHEN c.is_open THEN date_diff('day', c.opened_at::DATE, $today::DATE) END AS age_days,
    c.is_open AND c.current_due < $today::DATE AS overdue,
    CASE WHEN c.is_open AND c.current_due < $today::DATE
         THEN date_diff('day', c.current_due, $today::DATE) END AS days_overdue
FROM capa_open AS c
LEFT JOIN deviation AS d ON d.deviation_id = c.deviation_id
LEFT JOIN oos_investigation AS o ON o.oos_id = c.oos_id
LEFT JOIN batch AS ob ON ob.batch_id = o.batch_id
LEFT JOIN complaint AS k ON k.complaint_id = c.complaint_id
WHERE (len($products::VARCHAR[]) = 0 OR c.capa_id IN (
        SELECT capa_id FROM capa_product
        WHERE list_contains($products::VARCHAR[], product_id)))
  AND c.opened_at::DATE <= $end
  AND (c.is_open
       OR coalesce(c.closed_at::DATE, c.opened_at::DATE) >= $start
       OR c.original_due BETWEEN $start AND $end
       OR c.current_due BETWEEN $start AND $end)
ORDER BY c.is_open DESC, c.current_due, c.capa_number
"""


def capas(scope: Scope, filters: Filters, today: date | None = None) -> pl.DataFrame:
    """This sponsor's CAPAs in view, with age (open ones) and overdue against current due."""
    params = {**filters.params(), "today": today or clock.today()}
    return scope.frame("capas", CAPAS_SQL, params)


EXTENSIONS_SQL = """
SELECT c.capa_number, e.previous_due, e.new_due, date_diff('day', e.previous_due, e.new_due)
       AS days_added, e.reason, e.approved_at
FROM capa_extension AS e
JOIN capa AS c USING (capa_id)
WHERE list_contains($capas::VARCHAR[], c.capa_number)
ORDER BY c.capa_number, e.approved_at
"""


def capa_extensions(scope: Scope, capa_numbers: list[str]) -> pl.DataFrame:
    """Due-date extensions of the given CAPAs (those in view), oldest first per CAPA."""
    return scope.frame("capa extensions", EXTENSIONS_SQL, {"capas": capa_numbers})


EFFECTIVENESS_SQL = """
SELECT c.capa_number, c.title, k.checked_at, k.result
FROM capa_effectiveness AS k
JOIN capa AS c USING (capa_id)
WHERE list_contains($capas::VARCHAR[], c.capa_number)
ORDER BY k.checked_at DESC, c.capa_number
"""


def effectiveness_checks(scope: Scope, capa_numbers: list[str]) -> pl.DataFrame:
    """Effectiveness checks of the given CAPAs (those in view), newest first."""
    return scope.frame("capa effectiveness checks", EFFECTIVENESS_SQL, {"capas": capa_numbers})


def aging(capas_frame: pl.DataFrame, today: date | None = None) -> pl.DataFrame:
    """Open CAPAs per age bucket and overdue: KPI 10 as warehouse.kpis computes it."""
    return kpis.capa_aging(capas_frame, today or clock.today())
