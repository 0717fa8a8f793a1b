"""CAPAs of one sponsor: aging, overdue, on-time closure, extensions, effectiveness.

A CAPA is in view when it was active in the period (opened by its end, not closed before its
start) or fell due in it, and its source record touches a chosen product.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from warehouse.filters import Filters
from warehouse.scope import Scope

# DOMAIN.md KPI 10 (convention): open CAPAs by age in days.
AGE_BUCKETS = ("0–30", "31–60", "61–90", "91–180", ">180")
_BUCKET_UPPER_BOUNDS = (30, 60, 90, 180)

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
    params = {**filters.params(), "today": today or date.today()}
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


def age_bucket(days: int) -> str:
    """DOMAIN.md KPI 10 bucket of an open CAPA's age: 0–30 / 31–60 / 61–90 / 91–180 / >180."""
    for label, upper in zip(AGE_BUCKETS, _BUCKET_UPPER_BOUNDS, strict=False):
        if days <= upper:
            return label
    return AGE_BUCKETS[-1]


def aging(capas_frame: pl.DataFrame) -> pl.DataFrame:
    """Open CAPAs per age bucket (every bucket, in order), split into overdue or not."""
    open_capas = capas_frame.filter(pl.col("age_days").is_not_null())
    buckets = [age_bucket(d) for d in open_capas["age_days"]]
    counted = open_capas.with_columns(bucket=pl.Series(buckets, dtype=pl.String))
    rows = []
    for label in AGE_BUCKETS:
        in_bucket = counted.filter(pl.col("bucket") == label)
        overdue = int(in_bucket["overdue"].fill_null(False).sum())
        rows.append(
            {"bucket": label, "overdue": overdue, "not_overdue": in_bucket.height - overdue}
        )
    return pl.DataFrame(rows, schema={"bucket": pl.String, "overdue": pl.Int64,
                                      "not_overdue": pl.Int64})  # fmt: skip


def on_time_closure(
    capas_frame: pl.DataFrame, due: str, start: date, end: date, today: date | None = None
) -> tuple[int, int]:
    """KPI 9 (FDA 2022 example): (closed by `due`, fell due in the period up to today).

    `due` is "original_due" or "current_due"; cancelled CAPAs are not counted.
    """
    last = min(end, today or date.today())
    due_in_period = capas_frame.filter(
        pl.col(due).is_between(start, last) & (pl.col("status") != "CANCELLED")
    )
    on_time = due_in_period.filter(
        pl.col("closed_at").is_not_null() & (pl.col("closed_at").dt.date() <= pl.col(due))
    )
    return on_time.height, due_in_period.height


def effectiveness_rate(checks: pl.DataFrame) -> float | None:
    """KPI 11: effectiveness checks judged EFFECTIVE ÷ checks completed (None when none)."""
    if checks.height == 0:
        return None
    return checks.filter(pl.col("result") == "EFFECTIVE").height / checks.height
