"""The cross-client picture of shared equipment, for CMO staff only (a CMO scope).

A sponsor partition shows another client's use of a vessel only as ANOTHER_CLIENT. A CMO scope
reads every sponsor's own equipment_usage rows (each row lives in its batch's sponsor
partition, once), so the changeovers between sponsors are derived here from the full sequence
of uses per equipment. Equipment and its events are fanned out (one copy per sponsor), so
they are read DISTINCT.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from warehouse.filters import Filters
from warehouse.queries.equipment import unfit_reason
from warehouse.scope import Scope

TRAIN_OCCUPANCY_SQL = """
SELECT coalesce(b.equipment_train, '(no train)') AS train, b.sponsor_id, s.name AS sponsor,
       count(*) AS batches, min(b.mfg_start) AS first_start, max(b.mfg_end) AS last_end
FROM batch AS b
JOIN sponsor AS s ON s.sponsor_id = b.sponsor_id
WHERE b.mfg_start::DATE BETWEEN $start AND $end
  AND (len($products::VARCHAR[]) = 0 OR list_contains($products::VARCHAR[], b.product_id))
GROUP BY ALL
ORDER BY train, batches DESC, b.sponsor_id
"""


def train_occupancy(scope: Scope, filters: Filters) -> pl.DataFrame:
    """Batches per equipment train and sponsor that started manufacturing in the period."""
    return scope.frame("train occupancy", TRAIN_OCCUPANCY_SQL, filters.params())


# Uses in sequence per equipment over all history, so the first use in the period still knows
# who was on the equipment before it; ordered as the ETL orders them (started_at, usage_id).
_SEQUENCE = """
WITH equipment_site AS (
    SELECT DISTINCT equipment_id, name, equipment_type, train, status FROM equipment
),
uses AS (
    SELECT u.*, b.batch_number, b.product_id, s.name AS sponsor,
           lag(u.sponsor_id) OVER w AS previous_sponsor_id,
           lag(s.name) OVER w AS previous_sponsor,
           lag(b.batch_number) OVER w AS previous_batch
    FROM equipment_usage AS u
    JOIN batch AS b ON b.batch_id = u.batch_id
    JOIN sponsor AS s ON s.sponsor_id = u.sponsor_id
    WINDOW w AS (PARTITION BY u.equipment_id ORDER BY u.started_at, u.usage_id)
),
in_view AS (
    SELECT * FROM uses
    WHERE started_at::DATE BETWEEN $start AND $end
      AND (len($products::VARCHAR[]) = 0 OR list_contains($products::VARCHAR[], product_id))
)
"""

CHANGEOVERS_SQL = (
    _SEQUENCE
    + """
SELECT q.name AS equipment, u.equipment_id, q.train,
       u.previous_sponsor AS from_sponsor, u.previous_batch AS from_batch,
       u.previous_ended_at AS from_ended_at,
       u.sponsor AS to_sponsor, u.batch_number AS to_batch, u.started_at,
       u.cleaning_verified_at, o.name AS cleaning_verified_by, u.cleaning_result,
       coalesce(u.cleaning_result = 'PASS'
                AND u.cleaning_verified_at >= u.previous_ended_at
                AND u.cleaning_verified_at <= u.started_at, false) AS cleaning_ok,
       round(date_diff('minute', u.previous_ended_at, u.started_at) / 60, 1) AS gap_hours,
       u.previous_sponsor_id AS from_sponsor_id, u.sponsor_id AS to_sponsor_id, u.usage_id
FROM in_view AS u
JOIN equipment_site AS q USING (equipment_id)
LEFT JOIN (SELECT DISTINCT operator_id, name FROM operator) AS o
       ON o.operator_id = u.cleaning_verified_by
WHERE u.previous_sponsor_id IS NOT NULL AND u.previous_sponsor_id <> u.sponsor_id
ORDER BY cleaning_ok, u.started_at DESC, u.usage_id
"""
)


def changeovers(scope: Scope, filters: Filters) -> pl.DataFrame:
    """Every changeover from one sponsor's batch to another's on the same equipment, with the
    cleaning verification before it; unverified or failed cleanings first."""
    return scope.frame("cross-sponsor changeovers", CHANGEOVERS_SQL, filters.params())


EQUIPMENT_SHARING_SQL = (
    _SEQUENCE
    + """
SELECT q.name AS equipment, u.equipment_id, q.equipment_type, q.train, q.status,
       count(DISTINCT u.sponsor_id) AS sponsors,
       string_agg(DISTINCT u.sponsor, '; ' ORDER BY u.sponsor) AS sponsor_names,
       count(*) AS uses,
       count(*) FILTER (WHERE u.previous_sponsor_id <> u.sponsor_id) AS cross_sponsor_changeovers,
       count(*) FILTER (WHERE NOT u.calibration_valid_at_use
                           OR NOT u.qualification_valid_at_use) AS uses_lapsed
FROM in_view AS u
JOIN equipment_site AS q USING (equipment_id)
GROUP BY ALL
ORDER BY sponsors DESC, cross_sponsor_changeovers DESC, u.equipment_id
"""
)


def equipment_sharing(scope: Scope, filters: Filters) -> pl.DataFrame:
    """Per equipment: how many sponsors' batches used it in the period and how often the
    occupant changed from one sponsor to another."""
    return scope.frame("equipment sharing", EQUIPMENT_SHARING_SQL, filters.params())


LAPSED_IN_USE_SQL = """
WITH equipment_site AS (
    SELECT DISTINCT equipment_id, name, equipment_type, train FROM equipment
)
SELECT q.name AS equipment, u.equipment_id, q.train, s.name AS sponsor, b.batch_number,
       u.started_at, u.ended_at,
       concat_ws(' and ',
           CASE WHEN NOT u.calibration_valid_at_use THEN 'calibration' END,
           CASE WHEN NOT u.qualification_valid_at_use THEN 'qualification' END) AS lapsed,
       u.latest_calibration_due AS calibration_due_before_use,
       u.latest_qualification_due AS qualification_due_before_use,
       u.calibration_valid_at_use, u.latest_calibration_at, u.latest_calibration_result,
       u.latest_calibration_due, u.qualification_valid_at_use, u.latest_qualification_at,
       u.latest_qualification_result, u.latest_qualification_due,
       u.sponsor_id, u.usage_id
FROM equipment_usage AS u
JOIN batch AS b ON b.batch_id = u.batch_id
JOIN sponsor AS s ON s.sponsor_id = u.sponsor_id
JOIN equipment_site AS q ON q.equipment_id = u.equipment_id
WHERE (NOT u.calibration_valid_at_use OR NOT u.qualification_valid_at_use)
  AND u.started_at::DATE BETWEEN $start AND $end
  AND (len($products::VARCHAR[]) = 0 OR list_contains($products::VARCHAR[], b.product_id))
ORDER BY u.started_at DESC, u.usage_id
"""


def lapsed_in_use(scope: Scope, filters: Filters) -> pl.DataFrame:
    """Uses of equipment that was not fit for use when they started (the ETL's rule: the
    latest calibration / qualification before the use passed and was not overdue), with
    whose batch and, in `why_unfit`, the reason in words."""
    uses = scope.frame("equipment lapsed in use", LAPSED_IN_USE_SQL, filters.params())
    why = [
        "; ".join(r for what in ("calibration", "qualification") if (r := unfit_reason(use, what)))
        for use in uses.iter_rows(named=True)
    ]
    verdict = [c for c in uses.columns if c.startswith("latest_") or c.endswith("_at_use")]
    return uses.drop(verdict).with_columns(pl.Series("why_unfit", why, dtype=pl.String))


@dataclass(frozen=True)
class SharedEquipmentPage:
    """Everything the shared-equipment page shows, from one call: frames, counts, chart data."""

    occupancy: pl.DataFrame  # batches per train and sponsor, for the chart
    sharing: pl.DataFrame  # dataset "equipment_sharing"
    shared: int  # equipment used by two or more sponsors
    changeovers: pl.DataFrame  # dataset "changeovers"
    unverified_cleanings: int  # changeovers without a passed cleaning between the two uses
    lapsed: pl.DataFrame  # dataset "lapsed_in_use"


# The page's default period (portal.warm computes that view before anyone opens the page).
DEFAULT_DAYS = 90


def warm_default_view(scope: Scope, today: date) -> None:
    """Put what the page's default view reads into the scope's memo."""
    page_model(scope, Filters.last_days(DEFAULT_DAYS, today))


def page_model(scope: Scope, filters: Filters) -> SharedEquipmentPage:
    """The shared-equipment page's model (a CMO scope): occupancy per train, sharing per
    equipment, changeovers between sponsors and uses while not fit for use."""
    sharing = equipment_sharing(scope, filters)
    switches = changeovers(scope, filters)
    return SharedEquipmentPage(
        occupancy=train_occupancy(scope, filters),
        sharing=sharing,
        shared=sharing.filter(pl.col("sponsors") > 1).height,
        changeovers=switches,
        unverified_cleanings=switches.filter(~pl.col("cleaning_ok")).height,
        lapsed=lapsed_in_use(scope, filters),
    )
