"""Quality-agreement compliance: each sponsor's notification clocks and change obligations,
and every event or change that broke one (DOMAIN.md, Quality agreement; KPIs 14 and 16).

Works in a sponsor scope (its own agreement and records) and in a CMO scope, where
`sponsor_id` is the Hive partition: fanned-out site records (deviation, change_control) have
one copy per sponsor there, so every join also matches the partition.

Notifiable events and their clocks:
- deviation: per affected sponsor (deviation_link), from awareness, term DEVIATION_<class>;
- confirmed OOS: from the investigation's opening, term OOS_CONFIRMED;
- critical complaint: from receipt, term COMPLAINT_CRITICAL.
Changes: an impact with a NOTIFY or PRIOR_APPROVAL obligation that went effective; the ETL's
change_impact.violation says it went effective before its notification or approval.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from warehouse.filters import Filters
from warehouse.scope import Scope

# Event status of a notifiable event against its agreed clock.
ON_TIME, LATE, NOT_NOTIFIED, PENDING, NO_TERM = (
    "ON_TIME", "LATE", "NOT_NOTIFIED", "PENDING", "NO_TERM",
)  # fmt: skip
EVENT_LABELS = {
    "DEVIATION": "Deviations",
    "OOS": "Confirmed OOS",
    "COMPLAINT": "Critical complaints",
}

AGREEMENT_TERMS_SQL = """
SELECT a.sponsor_id, s.name AS sponsor, a.agreement_id, a.version, a.effective_from,
       t.term_type, t.subject, t.deadline_hours, t.obligation
FROM agreement_term AS t
JOIN quality_agreement AS a ON a.agreement_id = t.agreement_id AND a.sponsor_id = t.sponsor_id
JOIN sponsor AS s ON s.sponsor_id = a.sponsor_id
ORDER BY a.sponsor_id, t.term_type DESC, t.subject
"""


def agreement_terms(scope: Scope) -> pl.DataFrame:
    """The quality agreement terms of every sponsor in the scope (clocks and obligations)."""
    return scope.frame("agreement terms", AGREEMENT_TERMS_SQL)


NOTIFIABLE_EVENTS_SQL = """
WITH terms AS (
    SELECT a.sponsor_id, t.subject, min(t.deadline_hours) AS deadline_hours
    FROM agreement_term AS t
    JOIN quality_agreement AS a
      ON a.agreement_id = t.agreement_id AND a.sponsor_id = t.sponsor_id
    WHERE t.term_type = 'NOTIFICATION'
    GROUP BY ALL
),
events AS (
    SELECT l.sponsor_id, 'DEVIATION' AS event, 'DEVIATION_' || d.classification AS subject,
           l.link_id AS record_key, d.deviation_number AS record, d.title,
           coalesce(l.product_id, b.product_id) AS product_id, d.awareness_at AS clock_start,
           'awareness' AS clock_from, l.notification_deadline_hours AS deadline_hours,
           l.notified_at
    FROM deviation_link AS l
    JOIN deviation AS d ON d.deviation_id = l.deviation_id AND d.sponsor_id = l.sponsor_id
    LEFT JOIN batch AS b ON b.batch_id = l.batch_id
    UNION ALL
    SELECT o.sponsor_id, 'OOS', 'OOS_CONFIRMED', o.oos_id, o.oos_id,
           'Confirmed OOS, batch ' || b.batch_number, b.product_id, o.opened_at,
           'investigation opened', t.deadline_hours, o.notified_at
    FROM oos_investigation AS o
    JOIN batch AS b ON b.batch_id = o.batch_id
    LEFT JOIN terms AS t ON t.sponsor_id = o.sponsor_id AND t.subject = 'OOS_CONFIRMED'
    WHERE o.outcome = 'CONFIRMED'
    UNION ALL
    SELECT k.sponsor_id, 'COMPLAINT', 'COMPLAINT_CRITICAL', k.complaint_id, k.complaint_number,
           'Critical complaint', k.product_id, k.received_at, 'receipt', t.deadline_hours,
           k.notified_at
    FROM complaint AS k
    LEFT JOIN terms AS t ON t.sponsor_id = k.sponsor_id AND t.subject = 'COMPLAINT_CRITICAL'
    WHERE k.is_critical
),
clocked AS (
    SELECT *, clock_start + to_hours(deadline_hours::BIGINT) AS due_at FROM events
)
SELECT e.sponsor_id, s.name AS sponsor, e.event, e.subject, e.record, e.title,
       p.name AS product, e.clock_start, e.clock_from, e.deadline_hours, e.due_at,
       e.notified_at,
       CASE WHEN e.deadline_hours IS NULL THEN 'NO_TERM'
            WHEN e.notified_at IS NULL AND e.due_at < $now THEN 'NOT_NOTIFIED'
            WHEN e.notified_at IS NULL THEN 'PENDING'
            WHEN e.notified_at <= e.due_at THEN 'ON_TIME'
            ELSE 'LATE' END AS status,
       CASE WHEN e.notified_at > e.due_at
                THEN date_diff('second', e.due_at, e.notified_at) / 3600
            WHEN e.notified_at IS NULL AND e.due_at < $now
                THEN date_diff('second', e.due_at, $now) / 3600 END AS hours_late,
       e.record_key
FROM clocked AS e
JOIN sponsor AS s ON s.sponsor_id = e.sponsor_id
LEFT JOIN product AS p ON p.product_id = e.product_id
WHERE e.clock_start::DATE BETWEEN $start AND $end
  AND (len($products::VARCHAR[]) = 0 OR list_contains($products::VARCHAR[], e.product_id))
ORDER BY e.clock_start DESC, e.sponsor_id, e.record_key
"""


def notifiable_events(scope: Scope, filters: Filters, now: datetime | None = None) -> pl.DataFrame:
    """Every notifiable event whose clock started in the period, with its agreed deadline and
    status (ON_TIME / LATE / NOT_NOTIFIED / PENDING / NO_TERM)."""
    params = {**filters.params(), "now": now or datetime.now()}
    return scope.frame("notifiable events", NOTIFIABLE_EVENTS_SQL, params)


CHANGE_OBLIGATIONS_SQL = """
SELECT i.sponsor_id, s.name AS sponsor, c.change_number, c.title, c.change_type,
       p.name AS product, i.obligation, i.notified_at, i.decision, i.decided_at,
       c.actual_effective, coalesce(i.violation, false) AS violation, i.violation_reason,
       i.impact_id
FROM change_impact AS i
JOIN change_control AS c ON c.change_id = i.change_id AND c.sponsor_id = i.sponsor_id
JOIN sponsor AS s ON s.sponsor_id = i.sponsor_id
LEFT JOIN product AS p ON p.product_id = i.product_id
WHERE i.obligation IN ('NOTIFY', 'PRIOR_APPROVAL')
  AND c.actual_effective BETWEEN $start AND $end
  AND (len($products::VARCHAR[]) = 0 OR i.product_id IS NULL
       OR list_contains($products::VARCHAR[], i.product_id))
ORDER BY c.actual_effective DESC, i.sponsor_id, i.impact_id
"""


def change_obligations(scope: Scope, filters: Filters) -> pl.DataFrame:
    """Change impacts needing notification or prior approval that went effective in the
    period, flagged when they went effective before it (ETL change_impact.violation)."""
    return scope.frame("change obligations", CHANGE_OBLIGATIONS_SQL, filters.params())


BREACH_SCHEMA = {
    "sponsor_id": pl.String, "sponsor": pl.String, "kind": pl.String, "record": pl.String,
    "subject": pl.String, "clock": pl.String, "broken_by": pl.String, "record_key": pl.String,
}  # fmt: skip


def breaches(events: pl.DataFrame, changes: pl.DataFrame) -> pl.DataFrame:
    """Every broken clock, one row each, with the clock it broke in words.

    kind NOTIFICATION_LATE (notified after the deadline, or not at all and overdue),
    CHANGE_EFFECTIVE_BEFORE_APPROVAL or CHANGE_EFFECTIVE_BEFORE_NOTIFICATION.
    """
    rows = [_event_breach(e) for e in events.iter_rows(named=True)
            if e["status"] in (LATE, NOT_NOTIFIED)]  # fmt: skip
    rows += [_change_breach(c) for c in changes.iter_rows(named=True) if c["violation"]]
    return pl.DataFrame(rows, schema=BREACH_SCHEMA, orient="row")


def _hours(value: float) -> str:
    return f"{value:.0f} h" if value < 72 else f"{value / 24:.1f} d"


def _event_breach(event: dict) -> tuple:
    clock = (
        f"notify within {event['deadline_hours']} h of {event['clock_from']} "
        f"({event['clock_start']:%Y-%m-%d %H:%M}); due {event['due_at']:%Y-%m-%d %H:%M}"
    )
    if event["notified_at"] is None:
        broken = f"not notified; {_hours(event['hours_late'])} overdue"
    else:
        broken = (
            f"notified {event['notified_at']:%Y-%m-%d %H:%M}, {_hours(event['hours_late'])} late"
        )
    return (event["sponsor_id"], event["sponsor"], "NOTIFICATION_LATE", event["record"],
            event["subject"], clock, broken, event["record_key"])  # fmt: skip


def _change_breach(change: dict) -> tuple:
    effective = change["actual_effective"]
    if change["obligation"] == "PRIOR_APPROVAL":
        kind = "CHANGE_EFFECTIVE_BEFORE_APPROVAL"
        clock = f"{change['change_type']} change: sponsor approval before going effective"
        when, what = change["decided_at"], "approved"
        if change["decision"] != "APPROVED":
            when, what = None, f"decision {(change['decision'] or 'PENDING').lower()}"
    else:
        kind = "CHANGE_EFFECTIVE_BEFORE_NOTIFICATION"
        clock = f"{change['change_type']} change: sponsor notified before going effective"
        when, what = change["notified_at"], "notified"
    if when is None:
        broken = f"effective {effective}; {'never notified' if what == 'notified' else what}"
    else:
        after = (when.date() - effective).days
        broken = f"effective {effective}; {what} {when:%Y-%m-%d} ({after} d after)"
    return (change["sponsor_id"], change["sponsor"], kind, change["change_number"],
            change["obligation"], clock, broken, change["impact_id"])  # fmt: skip
