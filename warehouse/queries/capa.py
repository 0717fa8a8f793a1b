"""CAPAs of one sponsor: aging, overdue, on-time closure, extensions, effectiveness.

The KPI formulas (aging, on-time closure, effectiveness) live in warehouse.kpis.

A CAPA is in view when it was active in the period (opened by its end, not closed before its
start) or fell due in it, and its source record touches a chosen product.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from warehouse import catalogue, clock, kpis
from warehouse.filters import Filters
from warehouse.scope import Scope

# The one CAPA -> product relation, a CTE named capa_product: a CAPA touches the products of
# the record that raised it, read by source_type alone (a CAPA may also hold ids of records
# that did not raise it). AUDIT CAPAs touch no product.
CAPA_PRODUCT_SQL = """
capa_product AS (
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
)"""

CAPAS_SQL = f"""
WITH {CAPA_PRODUCT_SQL}
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
    c.effectiveness_result
FROM capa AS c
LEFT JOIN deviation AS d ON d.deviation_id = c.deviation_id
LEFT JOIN oos_investigation AS o ON o.oos_id = c.oos_id
LEFT JOIN batch AS ob ON ob.batch_id = o.batch_id
LEFT JOIN complaint AS k ON k.complaint_id = c.complaint_id
WHERE (len($products::VARCHAR[]) = 0 OR c.capa_id IN (
        SELECT capa_id FROM capa_product
        WHERE list_contains($products::VARCHAR[], product_id)))
  AND c.opened_at::DATE <= $end
"""


def capas(scope: Scope, filters: Filters, today: date | None = None) -> pl.DataFrame:
    """This sponsor's CAPAs in view, open ones first, with age (open ones) and overdue
    against the current due date as the catalogue defines them."""
    today = today or clock.today()
    params = {"products": list(filters.products), "end": filters.end}
    found = scope.frame("capas", CAPAS_SQL, params)
    is_open, overdue = catalogue.capa_open(), catalogue.capa_overdue(today)
    in_view = (
        is_open
        | (pl.coalesce("closed_at", "opened_at").cast(pl.Date) >= filters.start)
        | pl.col("original_due").is_between(filters.start, filters.end)
        | pl.col("current_due").is_between(filters.start, filters.end)
    )
    return (
        found.filter(in_view)
        .with_columns(
            pl.when(is_open).then(catalogue.capa_age_days(today)).alias("age_days"),
            overdue.alias("overdue"),
            pl.when(overdue)
            .then((pl.lit(today) - pl.col("current_due")).dt.total_days())
            .alias("days_overdue"),
        )
        .sort(
            is_open, "current_due", "capa_number", descending=[True, False, False], nulls_last=True
        )
    )


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


CHECKS_IN_PERIOD_SQL = f"""
WITH {CAPA_PRODUCT_SQL}
SELECT k.check_id, k.checked_at, k.result
FROM capa_effectiveness AS k
WHERE k.checked_at::DATE BETWEEN $start AND $end
  AND (len($products::VARCHAR[]) = 0 OR k.capa_id IN (
        SELECT capa_id FROM capa_product
        WHERE list_contains($products::VARCHAR[], product_id)))
"""


def checks_in_period(scope: Scope, filters: Filters) -> pl.DataFrame:
    """Effectiveness checks completed in the period on CAPAs touching these products, whatever
    the CAPA's state (KPI 11's population: a check may follow the CAPA's closure)."""
    return scope.frame("capa checks in period", CHECKS_IN_PERIOD_SQL, filters.params())


def aging(capas_frame: pl.DataFrame, today: date | None = None) -> pl.DataFrame:
    """Open CAPAs per age bucket and overdue: KPI 10 as warehouse.kpis computes it."""
    return kpis.capa_aging(capas_frame, today or clock.today())


@dataclass(frozen=True)
class CapaPage:
    """Everything the CAPA aging page shows, from one call: frames, measures, chart data."""

    capas: pl.DataFrame  # dataset "capas"
    open_count: int
    overdue: kpis.KpiResult
    on_time_original: kpis.KpiResult
    on_time_current: kpis.KpiResult
    effectiveness: kpis.KpiResult
    aging_chart: pl.DataFrame  # bucket, state (in words), capas
    extensions: pl.DataFrame  # dataset "capa_extensions"
    checks: pl.DataFrame  # dataset "capa_effectiveness"


def page_model(scope: Scope, filters: Filters, today: date) -> CapaPage:
    """The CAPA aging page's model: CAPAs in view, KPIs 9–11, aging by bucket, extensions and
    effectiveness checks of those CAPAs."""
    found = capas(scope, filters, today)
    numbers = found["capa_number"].to_list()
    checks = effectiveness_checks(scope, numbers)
    start, end = filters.start, filters.end
    return CapaPage(
        capas=found,
        open_count=kpis.open_capas(found, today).height,
        overdue=kpis.overdue_capas(found, today),
        on_time_original=kpis.capa_on_time_closure(found, start, end, today, due="original_due"),
        on_time_current=kpis.capa_on_time_closure(found, start, end, today, due="current_due"),
        effectiveness=kpis.capa_effectiveness_rate(checks_in_period(scope, filters), start, end),
        aging_chart=aging_chart(found, today),
        extensions=capa_extensions(scope, numbers),
        checks=checks,
    )


def aging_chart(capas_frame: pl.DataFrame, today: date) -> pl.DataFrame:
    """KPI 10 in long form for a bar chart: bucket, state (the capa_aging dataset's label of
    its overdue / not-overdue column), capas."""
    declared = catalogue.dataset("capa_aging")
    states = {name: declared.column(name).label for name in ("overdue", "not_overdue")}
    return (
        aging(capas_frame, today)
        .unpivot(index="bucket", variable_name="state", value_name="capas")
        .with_columns(pl.col("state").replace(states))
    )
