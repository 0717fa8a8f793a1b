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
change_impact.effective_early says it went effective before its notification or approval,
obligation_below_agreement that it was recorded with a weaker obligation than the agreement
sets for its change type (a breach whatever the timing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import polars as pl

from warehouse import clock, kpis
from warehouse.filters import Filters
from warehouse.queries.change_control import OBLIGATION_WORDS, change_type_words
from warehouse.scope import Scope

# KPI 16 outcomes that break the agreed clock (kpis.notification_outcomes).
BROKEN_OUTCOMES = ("late", "not notified")
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
SELECT e.sponsor_id, s.name AS sponsor, e.event, e.subject, e.record, e.title,
       p.name AS product, e.clock_start AS occurred_at, e.clock_from, e.deadline_hours,
       e.notified_at, e.record_key
FROM events AS e
JOIN sponsor AS s ON s.sponsor_id = e.sponsor_id
LEFT JOIN product AS p ON p.product_id = e.product_id
WHERE len($products::VARCHAR[]) = 0 OR list_contains($products::VARCHAR[], e.product_id)
ORDER BY e.clock_start DESC, e.sponsor_id, e.record_key
"""


def notifiable_events(scope: Scope, filters: Filters, today: date | None = None) -> pl.DataFrame:
    """Every notifiable event whose clock started in the period, with its agreed deadline
    (deadline_at) and KPI 16 outcome: on time / late / not notified / not yet due."""
    events = scope.frame(
        "notifiable events", NOTIFIABLE_EVENTS_SQL, {"products": list(filters.products)}
    )
    return kpis.notification_outcomes(events, filters.start, filters.end, today or clock.today())


CHANGE_OBLIGATIONS_SQL = """
SELECT i.sponsor_id, s.name AS sponsor, i.change_id, c.change_number, c.title, c.change_type,
       p.name AS product, i.obligation, i.obligation_required, i.notified_at, i.decision,
       i.decided_at, c.actual_effective, coalesce(i.violation, false) AS violation,
       coalesce(i.effective_early, false) AS effective_early,
       coalesce(i.obligation_below_agreement, false) AS obligation_below_agreement,
       i.violation_reason, i.impact_id
FROM change_impact AS i
JOIN change_control AS c ON c.change_id = i.change_id AND c.sponsor_id = i.sponsor_id
JOIN sponsor AS s ON s.sponsor_id = i.sponsor_id
LEFT JOIN product AS p ON p.product_id = i.product_id
WHERE (i.obligation IN ('NOTIFY', 'PRIOR_APPROVAL') OR i.obligation_below_agreement)
  AND c.actual_effective BETWEEN $start AND $end
  AND (len($products::VARCHAR[]) = 0 OR i.product_id IS NULL
       OR list_contains($products::VARCHAR[], i.product_id))
ORDER BY c.actual_effective DESC, i.sponsor_id, i.impact_id
"""


def change_obligations(scope: Scope, filters: Filters) -> pl.DataFrame:
    """Change impacts needing notification or prior approval (as recorded, or as the agreement
    sets) that went effective in the period, flagged when they went effective before it or
    were recorded below the agreement (ETL change_impact.violation)."""
    return scope.frame("change obligations", CHANGE_OBLIGATIONS_SQL, filters.params())


BREACH_SCHEMA = {
    "sponsor_id": pl.String, "sponsor": pl.String, "kind": pl.String, "record": pl.String,
    "subject": pl.String, "clock": pl.String, "broken_by": pl.String, "record_key": pl.String,
}  # fmt: skip


def breaches(events: pl.DataFrame, changes: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """Every broken clock, one row each, with the clock it broke in words.

    kind NOTIFICATION_LATE (notified after the deadline, or not at all once it passed),
    CHANGE_EFFECTIVE_BEFORE_APPROVAL, CHANGE_EFFECTIVE_BEFORE_NOTIFICATION or
    CHANGE_OBLIGATION_BELOW_AGREEMENT (recorded as needing less than the agreement sets).
    """
    rows = [_event_breach(e, now) for e in events.iter_rows(named=True)
            if e["outcome"] in BROKEN_OUTCOMES]  # fmt: skip
    for change in changes.iter_rows(named=True):
        if change["effective_early"]:
            rows.append(_change_breach(change))
        if change["obligation_below_agreement"]:
            rows.append(_obligation_breach(change))
    return pl.DataFrame(rows, schema=BREACH_SCHEMA, orient="row")


def sponsor_compliance(
    events: pl.DataFrame, changes: pl.DataFrame, start: date, end: date, today: date
) -> pl.DataFrame:
    """Per sponsor and measure: the share kept within the agreement, as KPI 16 (per event
    kind and overall), KPI 14 (prior-approval changes) and notified-before-effective changes.

    Columns: sponsor_id, sponsor, measure, kept, counted, share, shown (the value or the
    KPI's "not reliable" caveat), tooltip.
    """
    sponsors = pl.concat([events.select("sponsor_id", "sponsor"),
                          changes.select("sponsor_id", "sponsor")]).unique()  # fmt: skip
    rows = []
    for sponsor_id, sponsor in sponsors.sort("sponsor_id").iter_rows():
        own_events = events.filter(pl.col("sponsor_id") == sponsor_id)
        own_changes = changes.filter(pl.col("sponsor_id") == sponsor_id)
        measures = {
            label: kpis.notification_timeliness(
                own_events.filter(pl.col("event") == event), start, end, today
            )
            for event, label in EVENT_LABELS.items()
        }
        measures["All notifications (KPI 16)"] = kpis.notification_timeliness(
            own_events, start, end, today
        )
        measures["Prior-approval changes (KPI 14)"] = kpis.prior_approval_compliance(
            own_changes, start, end
        )
        for measure, result in measures.items():
            rows.append((sponsor_id, sponsor, measure, result.numerator, result.denominator,
                         result.value, result.display(), result.tooltip()))  # fmt: skip
        notify = own_changes.filter(pl.col("obligation") == "NOTIFY")
        kept = notify.filter(~pl.col("effective_early")).height
        share = kept / notify.height if notify.height else None
        rows.append((sponsor_id, sponsor, "Notified changes", kept, notify.height, share,
                     kpis.format_value(share, "rate"),
                     "NOTIFY changes notified before going effective ÷ NOTIFY changes that "
                     "went effective (ETL change_impact.effective_early)."))  # fmt: skip
    return pl.DataFrame(rows, schema=SUMMARY_SCHEMA, orient="row")


SUMMARY_SCHEMA = {
    "sponsor_id": pl.String, "sponsor": pl.String, "measure": pl.String, "kept": pl.Float64,
    "counted": pl.Float64, "share": pl.Float64, "shown": pl.String, "tooltip": pl.String,
}  # fmt: skip


def shares_by_sponsor(summary: pl.DataFrame) -> pl.DataFrame:
    """One row per sponsor, one column per measure of `sponsor_compliance`: the share shown."""
    measures = list(dict.fromkeys(summary["measure"]))
    return summary.pivot("measure", index="sponsor", values="shown").select("sponsor", *measures)


def agreed_clocks(terms: pl.DataFrame) -> pl.DataFrame:
    """One row per sponsor, one column per notifiable event: the agreed deadline in hours."""
    clocks = terms.filter(pl.col("term_type") == "NOTIFICATION")
    return clocks.pivot("subject", index="sponsor", values="deadline_hours")


def agreed_obligations(terms: pl.DataFrame) -> pl.DataFrame:
    """One row per sponsor, one column per change type: the obligation the agreement sets."""
    obligations = terms.filter(pl.col("term_type") == "CHANGE")
    return obligations.pivot("subject", index="sponsor", values="obligation")


@dataclass(frozen=True)
class CompliancePage:
    """Everything the compliance page shows, from one call: frames, measures, chart data."""

    events: pl.DataFrame  # dataset "notifiable_events"
    changes: pl.DataFrame  # change impacts with an obligation, in view
    breaches: pl.DataFrame  # dataset "compliance_breaches"
    timeliness: kpis.KpiResult  # KPI 16
    prior_approval: kpis.KpiResult  # KPI 14
    shares: pl.DataFrame  # dataset "compliance_shares"
    share_chart: pl.DataFrame  # sponsor_compliance's rows that have a share
    agreed_clocks: pl.DataFrame  # dataset "agreed_clocks"
    agreed_obligations: pl.DataFrame  # dataset "agreed_obligations"


# The page's default period (portal.warm computes that view before anyone opens the page).
DEFAULT_DAYS = 365


def warm_default_view(scope: Scope, today: date, now: datetime) -> None:
    """Put what the page's default view reads into the scope's memo."""
    page_model(scope, Filters.last_days(DEFAULT_DAYS, today), today, now)


def page_model(scope: Scope, filters: Filters, today: date, now: datetime) -> CompliancePage:
    """The compliance page's model for every sponsor in `scope`: notifiable events and changes
    in view, their breaches as of `now`, KPIs 16 and 14, shares kept per sponsor and the
    agreed terms."""
    events = notifiable_events(scope, filters, today)
    changes = change_obligations(scope, filters)
    start, end = filters.start, filters.end
    # Per-sponsor shares take ~45 ms a run over every sponsor: kept in the scope's memo.
    summary = scope.memo(
        ("compliance-summary", filters, today),
        lambda: sponsor_compliance(events, changes, start, end, today),
    )
    terms = agreement_terms(scope)
    return CompliancePage(
        events=events,
        changes=changes,
        breaches=breaches(events, changes, now),
        timeliness=kpis.notification_timeliness(events, start, end, today),
        prior_approval=kpis.prior_approval_compliance(changes, start, end),
        shares=shares_by_sponsor(summary),
        share_chart=summary.filter(pl.col("share").is_not_null()),
        agreed_clocks=agreed_clocks(terms),
        agreed_obligations=agreed_obligations(terms),
    )


def _hours(value: float) -> str:
    return f"{value:.0f} h" if value < 72 else f"{value / 24:.1f} d"


def _event_breach(event: dict, now: datetime) -> tuple:
    due = event["deadline_at"]
    clock = (
        f"notify within {event['deadline_hours']} h of {event['clock_from']} "
        f"({event['occurred_at']:%Y-%m-%d %H:%M}); due {due:%Y-%m-%d %H:%M}"
    )
    if event["notified_at"] is None:
        broken = f"not notified; {_hours((now - due).total_seconds() / 3600)} overdue"
    else:
        late = (event["notified_at"] - due).total_seconds() / 3600
        broken = f"notified {event['notified_at']:%Y-%m-%d %H:%M}, {_hours(late)} late"
    return (event["sponsor_id"], event["sponsor"], "NOTIFICATION_LATE", event["record"],
            event["subject"], clock, broken, event["record_key"])  # fmt: skip


def _obligation_breach(change: dict) -> tuple:
    kind = change_type_words(change["change_type"])
    required = OBLIGATION_WORDS[change["obligation_required"]].removeprefix("only ")
    clock = f"{kind} changes: the agreement requires {required}"
    broken = f"recorded as needing {OBLIGATION_WORDS[change['obligation']]}"
    return (change["sponsor_id"], change["sponsor"], "CHANGE_OBLIGATION_BELOW_AGREEMENT",
            change["change_number"], change["obligation_required"], clock, broken,
            change["impact_id"])  # fmt: skip


def _change_breach(change: dict) -> tuple:
    effective = change["actual_effective"]
    changed = change_type_words(change["change_type"])
    if change["obligation"] == "PRIOR_APPROVAL":
        kind = "CHANGE_EFFECTIVE_BEFORE_APPROVAL"
        clock = f"{changed} change: sponsor approval before going effective"
        when, what = change["decided_at"], "approved"
        if change["decision"] != "APPROVED":
            when, what = None, f"decision {(change['decision'] or 'PENDING').lower()}"
    else:
        kind = "CHANGE_EFFECTIVE_BEFORE_NOTIFICATION"
        clock = f"{changed} change: sponsor notified before going effective"
        when, what = change["notified_at"], "notified"
    if when is None:
        broken = f"effective {effective}; {'never notified' if what == 'notified' else what}"
    else:
        after = (when.date() - effective).days
        broken = f"effective {effective}; {what} {when:%Y-%m-%d} ({after} d after)"
    return (change["sponsor_id"], change["sponsor"], kind, change["change_number"],
            change["obligation"], clock, broken, change["impact_id"])  # fmt: skip
