"""Every KPI of DOMAIN.md, and the counts the cockpit shows, recomputed from the demo plant's
source database with plain SQL, site-wide and per sponsor, against the warehouse.

The oracle reads only the system of record (SQLite) and is written from DOMAIN.md's words,
with the catalogue's period, exclusions and completeness rule where DOMAIN.md names none (where
the two differ, DOMAIN.md rules); it shares no code with warehouse.kpis. Sponsors are attributed
as DESIGN.md routes records: batches, products and complaints to their sponsor, deviations
through their links, CAPAs and effectiveness checks through their source record, change impacts
to their sponsor, batch events through the batch; the site counts every record once.

Each comparison is of (numerator, denominator) pairs, shown by the warehouse's KPI functions
over a sponsor's own scope and over the CMO scope, by the cockpit, and by the sponsor pages that
show a KPI. The demo plant is compared as generated, then with EDGES: the boundaries and cases
its data never reaches. Where the warehouse departs from DOMAIN.md the test says so (xfail).
"""

from __future__ import annotations

import calendar
import shutil
import sqlite3
import statistics
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import NamedTuple

import pytest

from etl.run import run_etl
from tests.conftest import DemoPlant
from warehouse import catalogue, kpis
from warehouse.contract import LATE_ENTRY_MINUTES, SEVERITIES
from warehouse.filters import Filters
from warehouse.queries import capa, cockpit, compliance, deviations, overview
from warehouse.scope import Scope, open_cmo_scope, open_sponsor_scope, sponsor_ids

Figures = dict[str, object]

# Who a record belongs to, from the source (DESIGN.md's routing); a record may have several
# sponsors (a deviation touching two clients) or none (an audit CAPA: the site's only).
ROUTES = (
    """CREATE TEMP VIEW deviation_sponsor AS
       SELECT DISTINCT deviation_id, sponsor_id FROM deviation_link""",
    """CREATE TEMP VIEW capa_sponsor AS
       SELECT c.capa_id, s.sponsor_id
       FROM capa AS c JOIN deviation_sponsor AS s ON s.deviation_id = c.deviation_id
       UNION
       SELECT c.capa_id, b.sponsor_id
       FROM capa AS c JOIN oos_investigation AS o ON o.oos_id = c.oos_id
       JOIN batch AS b ON b.batch_id = o.batch_id
       UNION
       SELECT c.capa_id, p.sponsor_id
       FROM capa AS c JOIN complaint AS k ON k.complaint_id = c.complaint_id
       JOIN product AS p ON p.product_id = k.product_id
       UNION
       SELECT c.capa_id, p.sponsor_id
       FROM capa AS c JOIN inspection_finding AS f ON f.finding_id = c.finding_id
       JOIN product AS p ON p.product_id = f.product_id""",
    # KPI 1's final disposition: the sponsor's decision, else the CMO's rejection.
    """CREATE TEMP VIEW lot AS
       SELECT batch_id, sponsor_id, mfg_start,
              CASE WHEN sponsor_decision IS NOT NULL THEN sponsor_decision = 'APPROVED'
                   WHEN cmo_decision = 'REJECTED' THEN 0 END AS released,
              CASE WHEN sponsor_decision IS NOT NULL THEN sponsor_decided_at
                   WHEN cmo_decision = 'REJECTED' THEN cmo_decided_at END AS final_at
       FROM batch""",
    # KPI 16: what the CMO owes each sponsor a notification of, and the deadline the sponsor's
    # quality agreement in force when the clock started sets for it (none: not notifiable).
    """CREATE TEMP VIEW notifiable AS
       WITH owed AS (
           SELECT l.sponsor_id, 'DEVIATION_' || d.classification AS subject,
                  d.awareness_at AS clock_start, min(l.notified_at) AS notified_at
           FROM deviation AS d JOIN deviation_link AS l ON l.deviation_id = d.deviation_id
           GROUP BY d.deviation_id, l.sponsor_id
           UNION ALL
           SELECT b.sponsor_id, 'OOS_CONFIRMED', o.opened_at, o.notified_at
           FROM oos_investigation AS o JOIN batch AS b ON b.batch_id = o.batch_id
           WHERE o.outcome = 'CONFIRMED'
           UNION ALL
           SELECT p.sponsor_id, 'COMPLAINT_CRITICAL', k.received_at, k.notified_at
           FROM complaint AS k JOIN product AS p ON p.product_id = k.product_id
           WHERE k.is_critical = 1)
       SELECT owed.*, t.deadline_hours
       FROM owed
       JOIN quality_agreement AS a ON a.sponsor_id = owed.sponsor_id
        AND a.effective_from = (SELECT max(effective_from) FROM quality_agreement AS q
                                WHERE q.sponsor_id = owed.sponsor_id
                                  AND q.effective_from <= date(owed.clock_start))
       JOIN agreement_term AS t ON t.agreement_id = a.agreement_id
        AND t.term_type = 'NOTIFICATION' AND t.subject = owed.subject
       WHERE t.deadline_hours IS NOT NULL""",
)

# One row (numerator, denominator) per KPI, by DOMAIN.md; :sponsor NULL means the whole site.
# Periods are inclusive calendar days of the record's date; a record lacking a field its
# formula needs is left out of both (it lowers completeness).
SOURCE_SQL = {
    # 1. Lots finally released in the period ÷ lots started in the period (FDA 2016).
    "lot_acceptance_rate_fda": """
        SELECT coalesce(sum(released = 1 AND date(final_at) BETWEEN :start AND :end), 0),
               coalesce(sum(date(mfg_start) BETWEEN :start AND :end), 0)
        FROM lot WHERE :sponsor IS NULL OR sponsor_id = :sponsor""",
    # 1. Lots released ÷ lots finally dispositioned (released or rejected) in the period (ISPE).
    "lot_acceptance_rate_ispe": """
        SELECT coalesce(sum(released = 1), 0), count(*)
        FROM lot
        WHERE released IS NOT NULL AND date(final_at) BETWEEN :start AND :end
          AND (:sponsor IS NULL OR sponsor_id = :sponsor)""",
    # 2. Quality complaints received ÷ units distributed of the lots released in the period.
    "complaint_rate": """
        SELECT (SELECT count(*) FROM complaint AS k
                JOIN product AS p ON p.product_id = k.product_id
                WHERE date(k.received_at) BETWEEN :start AND :end
                  AND (:sponsor IS NULL OR p.sponsor_id = :sponsor)),
               (SELECT coalesce(sum(units_distributed), 0) FROM batch
                WHERE sponsor_decision = 'APPROVED'
                  AND date(sponsor_decided_at) BETWEEN :start AND :end
                  AND (:sponsor IS NULL OR sponsor_id = :sponsor))""",
    # 3. Release and long-term-stability OOS invalidated for a lab cause ÷ all such OOS
    #    (concluded: an OOS still under investigation has no outcome yet).
    "invalidated_oos_rate": """
        SELECT coalesce(sum(o.outcome = 'INVALIDATED_LAB_ERROR'), 0), count(*)
        FROM oos_investigation AS o
        JOIN test_result AS t ON t.test_id = o.test_id
        JOIN batch AS b ON b.batch_id = o.batch_id
        WHERE t.test_type IN ('RELEASE', 'LT_STABILITY') AND o.outcome IS NOT NULL
          AND date(o.opened_at) BETWEEN :start AND :end
          AND (:sponsor IS NULL OR b.sponsor_id = :sponsor)""",
    # 4. Confirmed release and stability OOS ÷ batches with a release or stability test.
    "confirmed_oos_rate": """
        SELECT (SELECT count(*) FROM oos_investigation AS o
                JOIN test_result AS t ON t.test_id = o.test_id
                JOIN batch AS b ON b.batch_id = o.batch_id
                WHERE t.test_type IN ('RELEASE', 'LT_STABILITY') AND o.outcome = 'CONFIRMED'
                  AND date(o.opened_at) BETWEEN :start AND :end
                  AND (:sponsor IS NULL OR b.sponsor_id = :sponsor)),
               (SELECT count(DISTINCT t.batch_id) FROM test_result AS t
                JOIN batch AS b ON b.batch_id = t.batch_id
                WHERE t.test_type IN ('RELEASE', 'LT_STABILITY')
                  AND date(t.tested_at) BETWEEN :start AND :end
                  AND (:sponsor IS NULL OR b.sponsor_id = :sponsor))""",
    # 5. Lots produced without a non-conformance ÷ lots produced (FDA 2022).
    "right_first_time": """
        SELECT coalesce(sum(b.reworked = 0
                   AND coalesce(b.cmo_decision, '') <> 'REJECTED'
                   AND coalesce(b.sponsor_decision, '') <> 'REJECTED'
                   AND NOT EXISTS (SELECT 1 FROM deviation_link AS l
                                   JOIN deviation AS d ON d.deviation_id = l.deviation_id
                                   WHERE l.batch_id = b.batch_id AND d.status <> 'CANCELLED')
                   AND NOT EXISTS (SELECT 1 FROM oos_investigation AS o
                                   WHERE o.batch_id = b.batch_id
                                     AND o.outcome = 'CONFIRMED')), 0),
               count(*)
        FROM batch AS b
        WHERE date(b.mfg_end) BETWEEN :start AND :end AND b.reworked IS NOT NULL
          AND (:sponsor IS NULL OR b.sponsor_id = :sponsor)""",
    # 6. Deviations raised (not cancelled) ÷ lots produced.
    "deviation_rate": """
        SELECT (SELECT count(*) FROM deviation AS d
                WHERE d.status <> 'CANCELLED' AND date(d.awareness_at) BETWEEN :start AND :end
                  AND (:sponsor IS NULL OR d.deviation_id IN (
                        SELECT deviation_id FROM deviation_sponsor WHERE sponsor_id = :sponsor))),
               (SELECT count(*) FROM batch
                WHERE date(mfg_end) BETWEEN :start AND :end
                  AND (:sponsor IS NULL OR sponsor_id = :sponsor))""",
    # 7. Deviations closed that recur one raised in the 12 months before them, whoever it
    #    touched ÷ deviations closed (judged: those with a root cause).
    "recurring_deviation_rate": """
        SELECT coalesce(sum(e.deviation_id IS NOT NULL), 0), count(*)
        FROM deviation AS d
        LEFT JOIN deviation AS e ON e.deviation_id = d.recurrence_of
         AND e.awareness_at <= d.awareness_at
         AND date(e.awareness_at) >= date(d.awareness_at, '-12 months')
        WHERE d.status = 'CLOSED' AND date(d.closed_at) BETWEEN :start AND :end
          AND d.root_cause_category IS NOT NULL
          AND (:sponsor IS NULL OR d.deviation_id IN (
                SELECT deviation_id FROM deviation_sponsor WHERE sponsor_id = :sponsor))""",
    # 8. Deviations closed by the original due date ÷ deviations closed in the period.
    "deviation_on_time_closure": """
        SELECT coalesce(sum(date(closed_at) <= original_due), 0), count(*)
        FROM deviation
        WHERE status = 'CLOSED' AND date(closed_at) BETWEEN :start AND :end
          AND original_due IS NOT NULL
          AND (:sponsor IS NULL OR deviation_id IN (
                SELECT deviation_id FROM deviation_sponsor WHERE sponsor_id = :sponsor))""",
    # 9. CAPAs closed by the due date ÷ CAPAs due in the period (up to today), against the
    #    original and against the current (extended) due date; cancelled CAPAs are not due.
    "capa_on_time_closure_original": """
        SELECT coalesce(sum(status = 'CLOSED' AND date(closed_at) <= original_due), 0), count(*)
        FROM capa
        WHERE status <> 'CANCELLED' AND NOT (status = 'CLOSED' AND closed_at IS NULL)
          AND original_due BETWEEN :start AND min(:end, :today)
          AND (:sponsor IS NULL OR capa_id IN (
                SELECT capa_id FROM capa_sponsor WHERE sponsor_id = :sponsor))""",
    "capa_on_time_closure_current": """
        SELECT coalesce(sum(status = 'CLOSED' AND date(closed_at) <= current_due), 0), count(*)
        FROM capa
        WHERE status <> 'CANCELLED' AND NOT (status = 'CLOSED' AND closed_at IS NULL)
          AND current_due BETWEEN :start AND min(:end, :today)
          AND (:sponsor IS NULL OR capa_id IN (
                SELECT capa_id FROM capa_sponsor WHERE sponsor_id = :sponsor))""",
    # 10. Open CAPAs past their current due date today ÷ open CAPAs.
    "overdue_capas": """
        SELECT coalesce(sum(current_due < :today), 0), count(*)
        FROM capa
        WHERE status NOT IN ('CLOSED', 'CANCELLED')
          AND (:sponsor IS NULL OR capa_id IN (
                SELECT capa_id FROM capa_sponsor WHERE sponsor_id = :sponsor))""",
    # 11. Effectiveness checks judged effective ÷ checks completed in the period.
    "capa_effectiveness_rate": """
        SELECT coalesce(sum(result = 'EFFECTIVE'), 0), count(*)
        FROM capa_effectiveness
        WHERE result IS NOT NULL AND date(checked_at) BETWEEN :start AND :end
          AND (:sponsor IS NULL OR capa_id IN (
                SELECT capa_id FROM capa_sponsor WHERE sponsor_id = :sponsor))""",
    # 12. Product reviews completed by the original due date ÷ reviews due in the period.
    "apr_on_time": """
        SELECT coalesce(sum(r.completed_at IS NOT NULL
                            AND date(r.completed_at) <= r.original_due), 0), count(*)
        FROM product_review AS r JOIN product AS p ON p.product_id = r.product_id
        WHERE r.original_due BETWEEN :start AND min(:end, :today)
          AND (:sponsor IS NULL OR p.sponsor_id = :sponsor)""",
    # 13. Lots the sponsor released in the period: with a manufacturing end (measured) ÷ all.
    "disposition_cycle_time": """
        SELECT count(mfg_end), count(*)
        FROM batch
        WHERE sponsor_decision = 'APPROVED'
          AND date(sponsor_decided_at) BETWEEN :start AND :end
          AND (:sponsor IS NULL OR sponsor_id = :sponsor)""",
    # 14. Prior-approval changes approved (on or before the effective day) ÷ prior-approval
    #     changes that went effective in the period; for a sponsor, its own impacts decide.
    "prior_approval_compliance": """
        WITH judged AS (
            SELECT c.change_id,
                   min(coalesce(i.decision = 'APPROVED'
                                AND date(i.decided_at) <= c.actual_effective, 0)) AS approved,
                   max(i.decision = 'APPROVED' AND i.decided_at IS NULL) AS undated
            FROM change_control AS c JOIN change_impact AS i ON i.change_id = c.change_id
            WHERE i.obligation = 'PRIOR_APPROVAL'
              AND c.actual_effective BETWEEN :start AND :end
              AND (:sponsor IS NULL OR i.sponsor_id = :sponsor)
            GROUP BY c.change_id)
        SELECT coalesce(sum(approved), 0), count(*) FROM judged WHERE NOT undated""",
    # 15. Events recorded more than the threshold after being performed ÷ events performed.
    "late_entry_rate": """
        SELECT coalesce(sum(strftime('%s', recorded_at) - strftime('%s', performed_at)
                            > :late_minutes * 60), 0), count(*)
        FROM batch_event
        WHERE recorded_at IS NOT NULL AND date(performed_at) BETWEEN :start AND :end
          AND (:sponsor IS NULL OR batch_id IN (
                SELECT batch_id FROM batch WHERE sponsor_id = :sponsor))""",
    # 16. Events notified within the agreement's deadline ÷ notifiable events whose clock
    #     started in the period (an unnotified one counts once its deadline passed by today).
    "notification_timeliness": """
        WITH clocked AS (
            SELECT notified_at,
                   CAST(strftime('%s', clock_start) AS INTEGER) + deadline_hours * 3600 AS due
            FROM notifiable
            WHERE date(clock_start) BETWEEN :start AND :end
              AND (:sponsor IS NULL OR sponsor_id = :sponsor))
        SELECT coalesce(sum(CAST(strftime('%s', notified_at) AS INTEGER) <= due), 0),
               coalesce(sum(notified_at IS NOT NULL
                            OR due < CAST(strftime('%s', :today) AS INTEGER)), 0)
        FROM clocked""",
    # The cockpit's counts of the state today: open deviations ÷ all deviations, and
    # prior-approval impacts awaiting the sponsor ÷ prior-approval impacts of live changes.
    "open_deviations": """
        SELECT coalesce(sum(status NOT IN ('CLOSED', 'CANCELLED')), 0), count(*)
        FROM deviation
        WHERE :sponsor IS NULL OR deviation_id IN (
            SELECT deviation_id FROM deviation_sponsor WHERE sponsor_id = :sponsor)""",
    "pending_change_approvals": """
        SELECT coalesce(sum(coalesce(i.decision, 'PENDING') = 'PENDING'), 0), count(*)
        FROM change_impact AS i JOIN change_control AS c ON c.change_id = i.change_id
        WHERE i.obligation = 'PRIOR_APPROVAL' AND c.status NOT IN ('REJECTED', 'CLOSED')
          AND (:sponsor IS NULL OR i.sponsor_id = :sponsor)""",
}

# KPI 13's values: sponsor release − manufacturing end, in days, of the lots measured.
CYCLE_DAYS_SQL = """
    SELECT julianday(sponsor_decided_at) - julianday(mfg_end)
    FROM batch
    WHERE sponsor_decision = 'APPROVED' AND mfg_end IS NOT NULL
      AND date(sponsor_decided_at) BETWEEN :start AND :end
      AND (:sponsor IS NULL OR sponsor_id = :sponsor)"""

OPEN_BY_CLASS_SQL = """
    SELECT classification, count(*)
    FROM deviation
    WHERE status NOT IN ('CLOSED', 'CANCELLED')
      AND (:sponsor IS NULL OR deviation_id IN (
            SELECT deviation_id FROM deviation_sponsor WHERE sponsor_id = :sponsor))
    GROUP BY classification"""

# KPI 10's aging: open CAPAs by days since opened, and how many of each bucket are overdue.
CAPA_AGING_SQL = """
    WITH aged AS (
        SELECT julianday(:today) - julianday(date(opened_at)) AS age,
               current_due < :today AS overdue
        FROM capa
        WHERE status NOT IN ('CLOSED', 'CANCELLED')
          AND (:sponsor IS NULL OR capa_id IN (
                SELECT capa_id FROM capa_sponsor WHERE sponsor_id = :sponsor)))
    SELECT CASE WHEN age <= 30 THEN '0–30' WHEN age <= 60 THEN '31–60'
                WHEN age <= 90 THEN '61–90' WHEN age <= 180 THEN '91–180' ELSE '>180' END,
           coalesce(sum(overdue), 0), coalesce(sum(NOT overdue), 0)
    FROM aged GROUP BY 1"""

# The demo plant holds no source record before this day: from it, a period is the whole record.
DAWN = date(2000, 1, 1)


class Period(NamedTuple):
    start: date
    end: date
    today: date


@contextmanager
def _source(plant: Path) -> Iterator[sqlite3.Connection]:
    """The system of record, read only, with the routing views."""
    with closing(sqlite3.connect(f"file:{plant}?mode=ro", uri=True)) as source:
        for view in ROUTES:
            source.execute(view)
        yield source


def _source_figures(source: sqlite3.Connection, sponsor: str | None, period: Period) -> Figures:
    """(numerator, denominator) of every KPI from the source; KPI 13 also as its median and p90
    in days, open deviations also per class, overdue CAPAs as a list's length, open CAPAs per
    age bucket (overdue, not)."""
    params = {"sponsor": sponsor, "start": period.start.isoformat(),
              "end": period.end.isoformat(), "today": period.today.isoformat(),
              "late_minutes": LATE_ENTRY_MINUTES}  # fmt: skip
    figures = {key: source.execute(sql, params).fetchone() for key, sql in SOURCE_SQL.items()}
    days = [row[0] for row in source.execute(CYCLE_DAYS_SQL, params)]
    figures["disposition_cycle_time_days"] = _median_and_p90(days)
    by_class = dict(source.execute(OPEN_BY_CLASS_SQL, params).fetchall())
    figures["open_deviations_by_class"] = tuple(by_class.get(c, 0) for c in SEVERITIES)
    figures["overdue_capas_listed"] = figures["overdue_capas"][:1]
    aging = {bucket: (overdue, fine) for bucket, overdue, fine in
             source.execute(CAPA_AGING_SQL, params)}  # fmt: skip
    figures["capa_aging"] = tuple(aging.get(b, (0, 0)) for b in kpis.AGE_BUCKETS)
    return figures


def _median_and_p90(days: list[float]) -> object:
    """Median and p90 (linear between the closest ranks) in days, to a tenth of a second."""
    if not days:
        return ()
    p90 = statistics.quantiles(days, n=10, method="inclusive")[8] if len(days) > 1 else days[0]
    return pytest.approx((statistics.median(days), p90), abs=0.1 / 86400)


def _kpi_results(inputs: cockpit.KpiInputs, period: Period) -> dict[str, kpis.KpiResult]:
    """Each KPI from the warehouse's KPI functions, called here rather than through the
    cockpit's own table of them."""
    i, (s, e, t) = inputs, period
    return {
        "lot_acceptance_rate_fda": kpis.lot_acceptance_rate_fda(i.batches, s, e),
        "lot_acceptance_rate_ispe": kpis.lot_acceptance_rate_ispe(i.batches, s, e),
        "complaint_rate": kpis.complaint_rate(i.complaints, i.batches, s, e),
        "invalidated_oos_rate": kpis.invalidated_oos_rate(i.oos, s, e),
        "confirmed_oos_rate": kpis.confirmed_oos_rate(i.oos, i.tests, s, e),
        "right_first_time": kpis.right_first_time(i.batches, i.deviation_links, i.oos, s, e),
        "deviation_rate": kpis.deviation_rate(i.deviations, i.batches, s, e),
        "recurring_deviation_rate": kpis.recurring_deviation_rate(i.deviations, s, e),
        "deviation_on_time_closure": kpis.deviation_on_time_closure(i.deviations, s, e),
        "capa_on_time_closure_original": kpis.capa_on_time_closure(
            i.capas, s, e, t, due="original_due"
        ),
        "capa_on_time_closure_current": kpis.capa_on_time_closure(
            i.capas, s, e, t, due="current_due"
        ),
        "overdue_capas": kpis.overdue_capas(i.capas, t),
        "capa_effectiveness_rate": kpis.capa_effectiveness_rate(i.capa_checks, s, e),
        "apr_on_time": kpis.apr_on_time(i.reviews, s, e, t),
        "disposition_cycle_time": kpis.disposition_cycle_time(i.batches, s, e),
        "prior_approval_compliance": kpis.prior_approval_compliance(i.impacts, s, e),
        "late_entry_rate": kpis.late_entry_rate(
            i.events, s, e, threshold_minutes=LATE_ENTRY_MINUTES
        ),
        "notification_timeliness": kpis.notification_timeliness(i.notifications, s, e, t),
        "open_deviations": kpis.open_deviations(i.deviations),
        "pending_change_approvals": kpis.pending_change_approvals(i.impacts),
    }


def _figures(results: dict[str, kpis.KpiResult], inputs: cockpit.KpiInputs, today: date) -> Figures:
    """KPI results in the oracle's shape."""
    figures: Figures = {key: _pair(result) for key, result in results.items()}
    cycle = results["disposition_cycle_time"]
    figures["disposition_cycle_time_days"] = (
        () if cycle.value is None else (cycle.value, cycle.extra["p90"])
    )
    open_ones = results["open_deviations"].extra
    figures["open_deviations_by_class"] = tuple(int(open_ones[c]) for c in SEVERITIES)
    figures["overdue_capas_listed"] = (int(results["overdue_capas"].numerator),)
    aging = kpis.capa_aging(inputs.capas, today).select("overdue", "not_overdue")
    figures["capa_aging"] = tuple((int(late), int(fine)) for late, fine in aging.rows())
    return figures


def _pair(result: kpis.KpiResult) -> tuple[int, int]:
    return int(result.numerator), int(result.denominator)


def _overview_figures(scope: Scope, period: Period) -> Figures:
    """What a sponsor's overview page counts today: open deviations by class, overdue CAPAs."""
    home = overview.page_model(scope, Filters(period.start, period.end), period.today)
    listed = dict(home.deviations_by_class.iter_rows())
    return {
        "open_deviations_by_class": tuple(listed.get(c, 0) for c in SEVERITIES),
        "overdue_capas_listed": (home.overdue_capas.height,),
    }


def _quality_page_figures(scope: Scope, period: Period) -> Figures:
    """The KPIs a sponsor's CAPA, deviations & OOS and compliance pages show for the period."""
    filters, today = Filters(period.start, period.end), period.today
    capas = capa.page_model(scope, filters, today)
    found = deviations.page_model(scope, filters, today)
    kept = compliance.page_model(scope, filters, today, datetime.combine(today, time.max))
    return {
        "overdue_capas": _pair(capas.overdue),
        "capa_on_time_closure_original": _pair(capas.on_time_original),
        "capa_on_time_closure_current": _pair(capas.on_time_current),
        "capa_effectiveness_rate": _pair(capas.effectiveness),
        "open_deviations_by_class": tuple(int(found.open_deviations.extra[c]) for c in SEVERITIES),
        "invalidated_oos_rate": _pair(found.invalidated_oos_rate),
        "notification_timeliness": _pair(kept.timeliness),
        "prior_approval_compliance": _pair(kept.prior_approval),
    }


class Shown(NamedTuple):
    """One figure one surface shows for one population, beside the source's."""

    population: str  # cockpit.SITE_LABEL or a sponsor id
    surface: str
    key: str
    shown: object
    source: object


def _comparisons(plant: Path, warehouse: Path, period: Period) -> list[Shown]:
    """Every figure of every surface, site-wide and per sponsor, beside the source's."""
    cmo = cockpit.kpi_inputs(open_cmo_scope(warehouse))
    table = cockpit.cockpit(cmo, *period)
    sponsors = sponsor_ids(warehouse)
    site = cmo.for_site()
    surfaces = {
        cockpit.SITE_LABEL: {
            "KPI functions, CMO scope": _figures(_kpi_results(site, period), site, period.today),
            "cockpit.compute_kpis, CMO scope": _figures(
                cockpit.compute_kpis(site, *period), site, period.today
            ),
            "cockpit table": _figures(table[cockpit.SITE_LABEL], site, period.today),
        }
    }
    for sponsor in sponsors:
        scope = open_sponsor_scope(warehouse, sponsor)
        own, partition = cockpit.kpi_inputs(scope), cmo.for_sponsor(sponsor)
        surfaces[sponsor] = {
            "KPI functions, sponsor scope": _figures(_kpi_results(own, period), own, period.today),
            "cockpit.compute_kpis, sponsor scope": _figures(
                cockpit.compute_kpis(own, *period), own, period.today
            ),
            "KPI functions, CMO scope's partition": _figures(
                _kpi_results(partition, period), partition, period.today
            ),
            "cockpit table": _figures(table[sponsor], partition, period.today),
            "sponsor overview page": _overview_figures(scope, period),
            "sponsor quality pages": _quality_page_figures(scope, period),
        }
    assert list(table) == [cockpit.SITE_LABEL, *sponsors]
    with _source(plant) as source:
        assert sponsors == [
            r[0] for r in source.execute("SELECT sponsor_id FROM sponsor ORDER BY 1")
        ]
        expected = {
            population: _source_figures(
                source, None if population == cockpit.SITE_LABEL else population, period
            )
            for population in surfaces
        }
    return [
        Shown(population, surface, key, value, expected[population][key])
        for population, shown in surfaces.items()
        for surface, figures in shown.items()
        for key, value in figures.items()
    ]


def _disagreements(comparisons: list[Shown], key: str | None = None) -> list[Shown]:
    return [c for c in comparisons if c.shown != c.source and key in (None, c.key)]


# --- The demo plant ---------------------------------------------------------------------------


def _periods(plant: DemoPlant) -> dict[str, Period]:
    """The twelve months up to the plant's last recorded day (nothing is recorded on as_of) and
    the whole record up to it, as of the plant's as_of; the same twelve months as of a month
    later (deadlines and due days pass); and twelve months that run a quarter past as_of (what
    falls due after today is not yet due)."""
    today = date.fromisoformat(plant.ground_truth["as_of"])
    end = today - timedelta(days=1)
    start = end - timedelta(days=364)
    return {
        "twelve months": Period(start, end, today),
        "whole record": Period(DAWN, end, today),
        "twelve months, a month later": Period(start, end, today + timedelta(days=30)),
        "twelve months to a quarter ahead": Period(
            today - timedelta(days=275), today + timedelta(days=89), today
        ),
    }


def test_the_oracle_covers_every_kpi_of_domain_md_and_the_cockpit() -> None:
    covered = {catalogue.measure(key).number for key in SOURCE_SQL} - {None}
    assert covered == set(range(1, 17))
    assert set(SOURCE_SQL) == set(cockpit.COCKPIT_KPIS)


def test_every_kpi_has_a_population_site_wide(demo_plant: DemoPlant) -> None:
    # A comparison over an empty population would pass whatever either side computes.
    with _source(demo_plant.path) as source:
        site = _source_figures(source, None, _periods(demo_plant)["twelve months"])
        assert source.execute("SELECT min(mfg_start) FROM batch").fetchone()[0] > str(DAWN)
    assert [key for key in SOURCE_SQL if not site[key][1]] == []
    assert site["disposition_cycle_time_days"] != ()


def test_every_kpi_counts_something_over_the_whole_record(demo_plant: DemoPlant) -> None:
    # The twelve months hold no confirmed OOS (KPI 4's numerator is 0 there); the whole record
    # does, so every numerator is compared above zero in one of the two periods.
    with _source(demo_plant.path) as source:
        site = _source_figures(source, None, _periods(demo_plant)["whole record"])
    assert [key for key in SOURCE_SQL if not site[key][0]] == []


@pytest.mark.parametrize(
    "name",
    ["twelve months", "whole record", "twelve months, a month later",
     "twelve months to a quarter ahead"],
)  # fmt: skip
def test_every_surface_shows_the_source_kpis(
    demo_plant: DemoPlant, demo_warehouse: Path, name: str
) -> None:
    comparisons = _comparisons(demo_plant.path, demo_warehouse, _periods(demo_plant)[name])
    keys = {(c.population, c.surface): set() for c in comparisons}
    for c in comparisons:
        keys[c.population, c.surface].add(c.key)
    assert len(keys) == 3 + 6 * len(sponsor_ids(demo_warehouse))
    assert all(SOURCE_SQL.keys() <= found for (_, surface), found in keys.items()
               if "page" not in surface)  # fmt: skip
    assert _disagreements(comparisons) == []


# --- The demo plant with the cases its data leaves out ----------------------------------------

# Rows of a copy of the demo plant changed to hold the boundaries and cases the generated data
# never reaches, each beside the rule it tests. Every statement changes exactly one row.
EDGES = (
    (
        "KPI 15: an entry recorded exactly the threshold after it was performed is not late",
        """
        UPDATE batch_event SET recorded_at = strftime('%Y-%m-%dT%H:%M:%S', performed_at,
                                                      '+' || :late_minutes || ' minutes')
        WHERE event_id = (SELECT min(event_id) FROM batch_event
                          WHERE date(performed_at) BETWEEN :start AND :end)""",
    ),
    (
        "KPI 15: one recorded a second later is late",
        """
        UPDATE batch_event SET recorded_at = strftime('%Y-%m-%dT%H:%M:%S', performed_at,
                                                      '+' || (:late_minutes * 60 + 1) || ' seconds')
        WHERE event_id = (SELECT max(event_id) FROM batch_event
                          WHERE date(performed_at) BETWEEN :start AND :end)""",
    ),
    (
        "KPIs 1, 2, 5, 13: a lot the sponsor rejected: not accepted, no units distributed, not "
        "right first time, no sponsor release",
        """
        UPDATE batch SET sponsor_decision = 'REJECTED', status = 'REJECTED',
                         units_distributed = NULL
        WHERE batch_id = (SELECT min(batch_id) FROM batch
                          WHERE sponsor_decision = 'APPROVED'
                            AND date(sponsor_decided_at) BETWEEN :start AND :end
                            AND date(mfg_end) BETWEEN :start AND :end)""",
    ),
    (
        "KPI 13: a lot released without its manufacturing end is not measured",
        """
        UPDATE batch SET mfg_end = NULL
        WHERE batch_id = (SELECT max(batch_id) FROM batch
                          WHERE sponsor_decision = 'APPROVED'
                            AND date(sponsor_decided_at) BETWEEN :start AND :end)""",
    ),
    (
        "KPIs 9, 10: a cancelled CAPA is neither due nor open",
        """
        UPDATE capa SET status = 'CANCELLED'
        WHERE capa_id = (SELECT min(capa_id) FROM capa
                         WHERE status = 'CLOSED' AND original_due BETWEEN :start AND :end)""",
    ),
    (
        "KPI 9: a CAPA closed the day after its original due, within its extension: late against "
        "the original, on time against the current due",
        """
        UPDATE capa SET current_due = date(original_due, '+30 days'),
                        closed_at = date(original_due, '+1 day') || 'T00:00:01'
        WHERE capa_id = (SELECT min(capa_id) FROM capa
                         WHERE status = 'CLOSED' AND original_due = current_due
                           AND original_due BETWEEN :start AND date(:end, '-31 days'))""",
    ),
    (
        "KPI 9: a CAPA closed on its due day is on time",
        """
        UPDATE capa SET closed_at = original_due || 'T23:59:59'
        WHERE capa_id = (SELECT max(capa_id) FROM capa
                         WHERE status = 'CLOSED' AND original_due = current_due
                           AND original_due BETWEEN :start AND :end)""",
    ),
    (
        "KPI 10: an open CAPA due today is not overdue",
        """
        UPDATE capa SET current_due = :today
        WHERE capa_id = (SELECT capa_id FROM capa WHERE status NOT IN ('CLOSED', 'CANCELLED')
                         ORDER BY capa_id LIMIT 1 OFFSET 0)""",
    ),
    (
        "KPI 10: an open CAPA due yesterday is overdue",
        """
        UPDATE capa SET current_due = date(:today, '-1 day')
        WHERE capa_id = (SELECT capa_id FROM capa WHERE status NOT IN ('CLOSED', 'CANCELLED')
                         ORDER BY capa_id LIMIT 1 OFFSET 1)""",
    ),
    (
        "KPI 10: an open CAPA opened 30 days ago is 0–30 days old",
        """
        UPDATE capa SET opened_at = date(:today, '-30 days') || 'T00:00:00'
        WHERE capa_id = (SELECT capa_id FROM capa WHERE status NOT IN ('CLOSED', 'CANCELLED')
                         ORDER BY capa_id LIMIT 1 OFFSET 2)""",
    ),
    (
        "KPI 10: one opened 31 days ago is 31–60 days old",
        """
        UPDATE capa SET opened_at = date(:today, '-31 days') || 'T23:59:59'
        WHERE capa_id = (SELECT capa_id FROM capa WHERE status NOT IN ('CLOSED', 'CANCELLED')
                         ORDER BY capa_id LIMIT 1 OFFSET 3)""",
    ),
    (
        "KPI 10: one opened 181 days ago is over 180 days old",
        """
        UPDATE capa SET opened_at = date(:today, '-181 days') || 'T12:00:00'
        WHERE capa_id = (SELECT capa_id FROM capa WHERE status NOT IN ('CLOSED', 'CANCELLED')
                         ORDER BY capa_id LIMIT 1 OFFSET 4)""",
    ),
    (
        "KPI 11: a check completed in the period counts though its CAPA closed long before",
        """
        UPDATE capa_effectiveness SET checked_at = date(:start, '+5 days') || 'T09:00:00',
                                      result = 'NOT_EFFECTIVE'
        WHERE check_id = (SELECT min(k.check_id) FROM capa_effectiveness AS k
                          JOIN capa AS c ON c.capa_id = k.capa_id
                          WHERE c.deviation_id IS NOT NULL AND c.status = 'CLOSED'
                            AND date(c.closed_at) < date(:start, '-30 days')
                            AND c.original_due < :start AND c.current_due < :start)""",
    ),
    (
        "KPI 8: a deviation closed on its original due day is on time",
        """
        UPDATE deviation SET closed_at = original_due || 'T23:59:59'
        WHERE deviation_id = (SELECT deviation_id FROM deviation
                              WHERE status = 'CLOSED' AND date(closed_at) BETWEEN :start AND :end
                                AND original_due BETWEEN :start AND date(:end, '-1 day')
                              ORDER BY deviation_id LIMIT 1 OFFSET 0)""",
    ),
    (
        "KPI 8: one closed the day after is late",
        """
        UPDATE deviation SET closed_at = date(original_due, '+1 day') || 'T00:00:01'
        WHERE deviation_id = (SELECT deviation_id FROM deviation
                              WHERE status = 'CLOSED' AND date(closed_at) BETWEEN :start AND :end
                                AND original_due BETWEEN :start AND date(:end, '-1 day')
                              ORDER BY deviation_id LIMIT 1 OFFSET 1)""",
    ),
    (
        "KPI 7: recurring a deviation raised 13 months before is not a recurrence",
        """
        UPDATE deviation
        SET recurrence_of = (SELECT e.deviation_id FROM deviation AS e
                             WHERE date(e.awareness_at) < date(deviation.awareness_at, '-13 months')
                             ORDER BY e.awareness_at DESC LIMIT 1)
        WHERE deviation_id = (SELECT deviation_id FROM deviation
                              WHERE status = 'CLOSED' AND date(closed_at) BETWEEN :start AND :end
                                AND original_due BETWEEN :start AND date(:end, '-1 day')
                              ORDER BY deviation_id LIMIT 1 OFFSET 2)""",
    ),
    (
        "KPI 7: a closed deviation without a root cause is not judged",
        """
        UPDATE deviation SET root_cause_category = NULL
        WHERE deviation_id = (SELECT deviation_id FROM deviation
                              WHERE status = 'CLOSED' AND date(closed_at) BETWEEN :start AND :end
                                AND original_due BETWEEN :start AND date(:end, '-1 day')
                              ORDER BY deviation_id LIMIT 1 OFFSET 3)""",
    ),
    (
        "KPI 3: an OOS of the period still under investigation has no outcome: left out",
        """
        UPDATE oos_investigation SET outcome = NULL, closed_at = NULL,
                                     opened_at = date(:start, '+10 days') || 'T10:00:00'
        WHERE oos_id = (SELECT min(oos_id) FROM oos_investigation
                        WHERE outcome = 'INVALIDATED_LAB_ERROR' AND date(opened_at) < :start)""",
    ),
    (
        "KPI 3: an inconclusive OOS is concluded, not invalidated",
        """
        UPDATE oos_investigation SET outcome = 'INCONCLUSIVE',
                                     opened_at = date(:start, '+20 days') || 'T10:00:00'
        WHERE oos_id = (SELECT max(oos_id) FROM oos_investigation
                        WHERE outcome = 'INVALIDATED_LAB_ERROR' AND date(opened_at) < :start)""",
    ),
    (
        "KPIs 4, 16: a confirmed OOS of the period, never notified though its deadline passed",
        """
        UPDATE oos_investigation SET opened_at = date(:start, '+30 days') || 'T10:00:00',
                                     notified_at = NULL
        WHERE oos_id = (SELECT min(oos_id) FROM oos_investigation
                        WHERE outcome = 'CONFIRMED' AND date(opened_at) < :start)""",
    ),
    (
        "KPI 16: a confirmed OOS notified exactly at the agreed deadline is on time",
        """
        UPDATE oos_investigation
        SET opened_at = date(:start, '+40 days') || 'T10:00:00',
            notified_at = strftime(
                '%Y-%m-%dT%H:%M:%S', date(:start, '+40 days') || 'T10:00:00',
                '+' || (SELECT t.deadline_hours FROM batch AS b
                        JOIN quality_agreement AS a ON a.sponsor_id = b.sponsor_id
                        JOIN agreement_term AS t ON t.agreement_id = a.agreement_id
                         AND t.subject = 'OOS_CONFIRMED'
                        WHERE b.batch_id = oos_investigation.batch_id) || ' hours')
        WHERE oos_id = (SELECT max(oos_id) FROM oos_investigation
                        WHERE outcome = 'CONFIRMED' AND date(opened_at) < :start)""",
    ),
    (
        "KPI 16: a deviation notified to a sponsor exactly at the agreed deadline is on time",
        """
        UPDATE deviation_link
        SET notified_at = (SELECT strftime('%Y-%m-%dT%H:%M:%S', d.awareness_at,
                                           '+' || t.deadline_hours || ' hours')
                           FROM deviation AS d
                           JOIN quality_agreement AS a ON a.sponsor_id = deviation_link.sponsor_id
                           JOIN agreement_term AS t ON t.agreement_id = a.agreement_id
                            AND t.subject = 'DEVIATION_' || d.classification
                           WHERE d.deviation_id = deviation_link.deviation_id)
        WHERE link_id = (SELECT min(l.link_id) FROM deviation_link AS l
                         JOIN deviation AS d ON d.deviation_id = l.deviation_id
                         WHERE date(d.awareness_at) BETWEEN :start AND date(:end, '-31 days'))""",
    ),
    (
        "KPI 16: one notified a second after it is late",
        """
        UPDATE deviation_link
        SET notified_at = (SELECT strftime('%Y-%m-%dT%H:%M:%S', d.awareness_at,
                                           '+' || (t.deadline_hours * 3600 + 1) || ' seconds')
                           FROM deviation AS d
                           JOIN quality_agreement AS a ON a.sponsor_id = deviation_link.sponsor_id
                           JOIN agreement_term AS t ON t.agreement_id = a.agreement_id
                            AND t.subject = 'DEVIATION_' || d.classification
                           WHERE d.deviation_id = deviation_link.deviation_id)
        WHERE link_id = (SELECT max(l.link_id) FROM deviation_link AS l
                         JOIN deviation AS d ON d.deviation_id = l.deviation_id
                         WHERE date(d.awareness_at) BETWEEN :start AND date(:end, '-31 days'))""",
    ),
    (
        "KPI 16: a critical complaint never notified, its deadline passed: not notified",
        """
        UPDATE complaint SET is_critical = 1, notified_at = NULL
        WHERE complaint_id = (SELECT min(complaint_id) FROM complaint
                              WHERE is_critical = 0
                                AND date(received_at) BETWEEN :start AND date(:end, '-2 days'))""",
    ),
    (
        "KPI 12: a product review due in the period and never completed is late",
        """
        UPDATE product_review SET completed_at = NULL
        WHERE review_id = (SELECT min(review_id) FROM product_review
                           WHERE original_due BETWEEN :start AND :end
                             AND completed_at IS NOT NULL)""",
    ),
    (
        "KPI 12: a review completed on its due day is on time",
        """
        UPDATE product_review SET completed_at = original_due
        WHERE review_id = (SELECT max(review_id) FROM product_review
                           WHERE original_due BETWEEN :start AND :end
                             AND completed_at IS NOT NULL)""",
    ),
    (
        "KPI 14, pending approvals: a prior approval still pending when the change went effective "
        "is a violation, and waits on a live change",
        """
        UPDATE change_impact SET obligation = 'PRIOR_APPROVAL', decision = 'PENDING',
                                 decided_at = NULL
        WHERE impact_id = (SELECT min(i.impact_id) FROM change_impact AS i
                           JOIN change_control AS c ON c.change_id = i.change_id
                           WHERE c.status IN ('IMPLEMENTED', 'EFFECTIVENESS')
                             AND coalesce(i.decision, '') <> 'PENDING'
                             AND c.actual_effective BETWEEN :start AND :end)""",
    ),
    (
        "KPI 14: a change the sponsor rejected that went effective anyway is a violation",
        """
        UPDATE change_impact SET decision = 'REJECTED'
        WHERE impact_id = (SELECT max(i.impact_id) FROM change_impact AS i
                           JOIN change_control AS c ON c.change_id = i.change_id
                           WHERE i.obligation = 'PRIOR_APPROVAL' AND i.decision = 'APPROVED'
                             AND date(i.decided_at) <= c.actual_effective
                             AND c.actual_effective BETWEEN :start AND :end
                             AND (SELECT count(*) FROM change_impact AS j
                                  WHERE j.change_id = i.change_id
                                    AND j.obligation = 'PRIOR_APPROVAL') = 1)""",
    ),
    (
        "KPI 14: an approval without its decision day cannot be judged",
        """
        UPDATE change_impact SET decided_at = NULL
        WHERE impact_id = (SELECT min(i.impact_id) FROM change_impact AS i
                           JOIN change_control AS c ON c.change_id = i.change_id
                           WHERE i.obligation = 'PRIOR_APPROVAL' AND i.decision = 'APPROVED'
                             AND date(i.decided_at) <= c.actual_effective
                             AND c.actual_effective BETWEEN :start AND :end
                             AND (SELECT count(*) FROM change_impact AS j
                                  WHERE j.change_id = i.change_id
                                    AND j.obligation = 'PRIOR_APPROVAL') = 1)""",
    ),
    (
        "KPI 14: an approval on the effective day itself complies",
        """
        UPDATE change_impact
        SET decided_at = (SELECT actual_effective FROM change_control AS c
                          WHERE c.change_id = change_impact.change_id) || 'T16:00:00'
        WHERE impact_id = (SELECT min(i.impact_id) FROM change_impact AS i
                           JOIN change_control AS c ON c.change_id = i.change_id
                           WHERE i.obligation = 'PRIOR_APPROVAL' AND i.decision = 'APPROVED'
                             AND date(i.decided_at) < c.actual_effective
                             AND c.actual_effective BETWEEN :start AND :end
                             AND (SELECT count(*) FROM change_impact AS j
                                  WHERE j.change_id = i.change_id
                                    AND j.obligation = 'PRIOR_APPROVAL') = 1)""",
    ),
    # Outside the twelve months (in the March after a 29 February): a deviation raised on
    # 28 February recurs one raised on 28 February a year before, 12 months and 366 days
    # earlier; it closes in March.
    (
        "KPI 7: the later deviation of the leap-year pair recurs the earlier",
        """
        UPDATE deviation
        SET awareness_at = :leap_later || 'T08:00:00', original_due = date(:leap_later, '+30 days'),
            current_due = date(:leap_later, '+30 days'), closed_at = :leap_closed || 'T12:00:00',
            root_cause_category = 'EQUIPMENT',
            recurrence_of = (SELECT min(deviation_id) FROM deviation
                             WHERE status = 'CLOSED' AND date(closed_at) < :start
                               AND deviation_id NOT IN (SELECT recurrence_of FROM deviation
                                                        WHERE recurrence_of IS NOT NULL))
        WHERE deviation_id = (SELECT max(deviation_id) FROM deviation
                              WHERE status = 'CLOSED' AND date(closed_at) < :start
                                AND deviation_id NOT IN (SELECT recurrence_of FROM deviation
                                                         WHERE recurrence_of IS NOT NULL))""",
    ),
    (
        "KPI 7: the earlier deviation of the leap-year pair, raised 28 February",
        """
        UPDATE deviation
        SET awareness_at = :leap_earlier || 'T09:00:00',
            original_due = date(:leap_earlier, '+30 days'),
            current_due = date(:leap_earlier, '+30 days'),
            closed_at = date(:leap_earlier, '+10 days') || 'T12:00:00'
        WHERE deviation_id = (SELECT recurrence_of FROM deviation
                              WHERE awareness_at = :leap_later || 'T08:00:00')""",
    ),
)
EDGE_KEYS = (
    *SOURCE_SQL, "disposition_cycle_time_days", "open_deviations_by_class",
    "overdue_capas_listed", "capa_aging",
)  # fmt: skip

# Where the warehouse departed from DOMAIN.md at the edges (each found here, then fixed):
# KPI 13 measured rejected lots too; the CAPA page's KPI 11 rated only the checks of CAPAs in
# view; KPI 7's window was 365 days, a day short of 12 months across a leap day.
DEPARTURES: dict[str, str] = {}


class EdgePlant(NamedTuple):
    path: Path
    warehouse: Path
    twelve_months: Period
    leap_march: Period  # the March in which the leap-year recurrence closes


def _leap_february(before: date) -> tuple[date, date]:
    """28 February of the latest leap year whose next March ends before `before`, and of the
    year after it: 12 months and 366 days apart."""
    year = before.year - 1
    while not (calendar.isleap(year) and date(year + 1, 3, 31) < before):
        year -= 1
    return date(year, 2, 28), date(year + 1, 2, 28)


@pytest.fixture(scope="module")
def edge_plant(demo_plant: DemoPlant, tmp_path_factory: pytest.TempPathFactory) -> EdgePlant:
    """A copy of the demo plant with EDGES applied, and one full ETL run of it."""
    period = _periods(demo_plant)["twelve months"]
    earlier, later = _leap_february(period.start)
    params = {"start": str(period.start), "end": str(period.end), "today": str(period.today),
              "late_minutes": LATE_ENTRY_MINUTES, "leap_earlier": str(earlier),
              "leap_later": str(later), "leap_closed": str(later + timedelta(days=14))}  # fmt: skip
    path = tmp_path_factory.mktemp("edge-plant") / "plant.sqlite"
    shutil.copyfile(demo_plant.path, path)
    with closing(sqlite3.connect(path)) as plant, plant:
        changed = {rule: plant.execute(sql, params).rowcount for rule, sql in EDGES}
    assert changed == dict.fromkeys(changed, 1)
    warehouse = tmp_path_factory.mktemp("edge-warehouse")
    assert sum(run_etl(path, warehouse, full=True).quarantined.values()) == 0
    march = Period(later.replace(month=3, day=1), later.replace(month=3, day=31), period.today)
    return EdgePlant(path, warehouse, period, march)


@pytest.fixture(scope="module")
def edge_comparisons(edge_plant: EdgePlant) -> list[Shown]:
    return _comparisons(edge_plant.path, edge_plant.warehouse, edge_plant.twelve_months)


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(key, marks=pytest.mark.xfail(strict=True, reason=DEPARTURES[key]))
        if key in DEPARTURES
        else key
        for key in EDGE_KEYS
    ],
)
def test_every_surface_shows_the_source_kpis_at_the_edges(
    edge_comparisons: list[Shown], key: str
) -> None:
    assert _disagreements(edge_comparisons, key) == []


def test_a_recurrence_12_months_and_366_days_after_counts(edge_plant: EdgePlant) -> None:
    comparisons = _comparisons(edge_plant.path, edge_plant.warehouse, edge_plant.leap_march)
    site = next(c for c in comparisons if c.population == cockpit.SITE_LABEL
                and c.key == "recurring_deviation_rate")  # fmt: skip
    assert site.source[0] > 0
    assert _disagreements(comparisons, "recurring_deviation_rate") == []
