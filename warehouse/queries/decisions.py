"""What a sponsor may decide in the portal, read from its own confined scope: changes awaiting its
prior approval, and change notifications to acknowledge (DESIGN.md, Decisions).

A subject carries exactly what the signing form shows, in words, so the signature can hold the
hash of what the signer saw. It is read from the sponsor's scope, never from a URL or a widget:
another sponsor's change is not found, because it is not there to find.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date

import polars as pl

from warehouse import catalogue, clock
from warehouse.catalogue import columns
from warehouse.queries.change_control import MARKETS_CTE
from warehouse.scope import Scope

# A decision's meaning (21 CFR 11.50(a)(3)) and each kind of record, in the catalogue's words.
MEANING_WORDS = columns.DECISION_MEANING_WORDS
RECORD_TYPE_WORDS = columns.DECISION_RECORD_WORDS
CHANGE_APPROVAL = "change_approval"
CHANGE_NOTIFICATION = "change_notification"
DEVIATION_NOTIFICATION = "deviation_notification"
OOS_NOTIFICATION = "oos_notification"
CHANGE_KINDS = (CHANGE_APPROVAL, CHANGE_NOTIFICATION)
EVENT_KINDS = (DEVIATION_NOTIFICATION, OOS_NOTIFICATION)
# What each kind of record may be answered with.
MEANINGS = {
    CHANGE_APPROVAL: ("APPROVED", "REJECTED"),
    CHANGE_NOTIFICATION: ("ACKNOWLEDGED",),
    DEVIATION_NOTIFICATION: ("ACKNOWLEDGED",),
    OOS_NOTIFICATION: ("ACKNOWLEDGED",),
}
# A confirmed OOS stays to acknowledge this long after it was notified (it has no open state).
OOS_ACKNOWLEDGE_DAYS = 90

SUBJECTS_SQL = f"""
WITH {MARKETS_CTE}
SELECT
    i.impact_id,
    c.change_number,
    c.title,
    c.change_type,
    c.risk_class,
    c.status,
    p.name AS product,
    i.obligation,
    i.notified_at,
    c.planned_effective,
    m.markets,
    qa.version AS agreement_version,
    qa.effective_from AS agreement_from,
    t.obligation AS agreement_obligation
FROM change_impact AS i
JOIN change_control AS c USING (change_id)
LEFT JOIN product AS p ON p.product_id = i.product_id
LEFT JOIN markets AS m USING (impact_id)
LEFT JOIN quality_agreement AS qa ON qa.sponsor_id = i.sponsor_id
LEFT JOIN agreement_term AS t
       ON t.agreement_id = qa.agreement_id AND t.term_type = 'CHANGE'
      AND t.subject = c.change_type
WHERE c.actual_effective IS NULL
  AND c.status NOT IN ('REJECTED', 'CLOSED')
  AND ((i.obligation = 'PRIOR_APPROVAL' AND coalesce(i.decision, 'PENDING') = 'PENDING')
       OR (i.obligation = 'NOTIFY' AND i.notified_at IS NOT NULL))
ORDER BY i.obligation = 'PRIOR_APPROVAL' DESC, c.planned_effective NULLS LAST, c.change_number,
         product, i.impact_id
"""


# Deviations notified to this sponsor and still open, one per deviation (a deviation can touch
# several of the sponsor's batches), and confirmed OOS results notified in the last days.
EVENTS_SQL = """
WITH terms AS (
    SELECT t.subject, min(t.deadline_hours) AS deadline_hours, min(a.version) AS version,
           min(a.effective_from) AS effective_from
    FROM agreement_term AS t JOIN quality_agreement AS a USING (agreement_id)
    WHERE t.term_type = 'NOTIFICATION'
    GROUP BY t.subject
),
deviations AS (
    SELECT d.deviation_id AS record_id, 'deviation_notification' AS record_type,
           d.deviation_number AS number, d.title, d.classification, d.status, d.awareness_at,
           min(l.notified_at) AS notified_at,
           string_agg(DISTINCT b.batch_number, ', ' ORDER BY b.batch_number) AS batches,
           string_agg(DISTINCT p.name, ', ' ORDER BY p.name) AS products,
           'DEVIATION_' || d.classification AS term
    FROM deviation AS d
    JOIN deviation_link AS l USING (deviation_id)
    LEFT JOIN batch AS b ON b.batch_id = l.batch_id
    LEFT JOIN product AS p ON p.product_id = coalesce(l.product_id, b.product_id)
    WHERE d.status NOT IN ('CLOSED', 'CANCELLED')
    GROUP BY ALL
    HAVING min(l.notified_at) IS NOT NULL
),
oos AS (
    SELECT o.oos_id, 'oos_notification', o.oos_id, t.test_name, NULL, o.outcome, o.opened_at,
           o.notified_at, b.batch_number, p.name, 'OOS_CONFIRMED'
    FROM oos_investigation AS o
    JOIN test_result AS t USING (test_id)
    JOIN batch AS b ON b.batch_id = o.batch_id
    LEFT JOIN product AS p ON p.product_id = b.product_id
    WHERE o.outcome = 'CONFIRMED' AND o.notified_at IS NOT NULL
      AND o.notified_at::DATE >= $today::DATE - INTERVAL (OOS_DAYS) DAY
)
SELECT e.*, terms.deadline_hours, terms.version AS agreement_version,
       terms.effective_from AS agreement_from
FROM (SELECT * FROM deviations UNION ALL SELECT * FROM oos) AS e
LEFT JOIN terms ON terms.subject = e.term
ORDER BY e.notified_at DESC, e.number
""".replace("OOS_DAYS", str(OOS_ACKNOWLEDGE_DAYS))


@dataclass(frozen=True)
class Subject:
    """One record the sponsor may decide, with what the signing form shows of it."""

    record_type: str  # CHANGE_APPROVAL or CHANGE_NOTIFICATION
    record_id: str  # the change impact's id
    label: str  # e.g. "CC-2026-0061, Northwind Insulin"
    shown: tuple[tuple[str, str], ...]  # (what, in words), in the order shown
    deadline: date | None  # decide before this day (the planned effective day)

    @property
    def meanings(self) -> tuple[str, ...]:
        return MEANINGS[self.record_type]

    @property
    def content(self) -> str:
        """Exactly what was shown, as canonical JSON: what the signature's hash covers."""
        return json.dumps(
            {"record_type": self.record_type, "record_id": self.record_id,
             "label": self.label, "shown": [list(pair) for pair in self.shown]},
            ensure_ascii=False, sort_keys=True, separators=(",", ":"),
        )  # fmt: skip

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.content.encode()).hexdigest()


def _words(column: str, code: str | None) -> str:
    if code is None:
        return "not set"
    return catalogue.dataset("change_controls").column(column).words.get(code, code)


def _markets(markets: str | None) -> str:
    """Markets such as "EU: PRIOR_APPROVAL; US: NOTIFICATION" in words (ICH Q12)."""
    if not markets:
        return "none recorded"
    for code, words in (("PRIOR_APPROVAL", "prior approval"), ("NOTIFICATION", "notification"),
                        ("RECORDED", "recorded only")):  # fmt: skip
        markets = markets.replace(code, words)
    return markets


def _subject(row: dict) -> Subject:
    prior = row["obligation"] == "PRIOR_APPROVAL"
    record_type = CHANGE_APPROVAL if prior else CHANGE_NOTIFICATION
    product = row["product"] or "every product of yours at the site"
    label = f"{row['change_number']}, {row['product'] or 'all products'}"
    kind = _words("change_type", row["change_type"]).lower()
    if row["agreement_version"] is None:
        clause = "no quality agreement is on record"
    else:
        need = {"PRIOR_APPROVAL": "need your prior approval", "NOTIFY": "need a notification",
                "NONE": "need nothing from you"}.get(row["agreement_obligation"],
                                                    "are not covered by a term")  # fmt: skip
        clause = (
            f"version {row['agreement_version']}, in force since "
            f"{row['agreement_from']:%d %b %Y}: {kind} changes {need}"
        )
    planned = row["planned_effective"]
    if prior:
        deadline = (
            f"before {planned:%d %b %Y}, the planned effective day: the change may not go live "
            "without your approval"
            if planned
            else "before the change goes live (no planned effective day yet)"
        )
    else:
        deadline = "none set: the agreement asks only for the notification, which the CMO sent"
    shown = [
        ("Change", f"{row['change_number']}: {row['title']}"),
        ("Type and risk", f"{_words('change_type', row['change_type'])}, "
                          f"{_words('risk_class', row['risk_class']).lower()} risk"),
        ("Status at the CMO", _words("status", row["status"])),
        ("Your product", product),
        ("Markets and reporting category", _markets(row["markets"])),
        ("Your obligation", _words("obligation", row["obligation"])),
        ("Quality agreement", clause),
        ("Deadline", deadline),
    ]  # fmt: skip
    if not prior:
        shown.insert(6, ("Notified to you", f"{row['notified_at']:%d %b %Y %H:%M} (plant time)"))
    return Subject(record_type, row["impact_id"], label, tuple(shown), planned if prior else None)


def _hours(hours: int) -> str:
    """A notification clock as the agreement would say it: 48 hours, 14 days."""
    return f"{hours // 24} days" if hours > 48 and hours % 24 == 0 else f"{hours} hours"


def _event_subject(row: dict) -> Subject:
    deviation = row["record_type"] == DEVIATION_NOTIFICATION
    words = catalogue.dataset("deviations").column("classification").words
    if deviation:
        kind = f"{words.get(row['classification'], row['classification']).lower()} deviation"
        label = f"{row['number']} ({kind})"
        what = ("Deviation", f"{row['number']}: {row['title']}")
        status = catalogue.dataset("deviations").column("status").words
        state = ("Status at the CMO", status.get(row["status"], row["status"]))
        started = "Aware since"
    else:
        kind = "confirmed out-of-specification result"
        label = f"OOS {row['number']} ({row['title']}, batch {row['batches']})"
        what = ("Out of specification", f"{row['title']} on batch {row['batches']}, confirmed")
        state = ("Investigation", "confirmed: not a laboratory error")
        started = "Investigation opened"
    if row["agreement_version"] is None or row["deadline_hours"] is None:
        clause = "no notification term for this event is on record"
    else:
        clause = (
            f"version {row['agreement_version']}, in force since "
            f"{row['agreement_from']:%d %b %Y}: a {kind} is notified to you within "
            f"{_hours(row['deadline_hours'])}"
        )
    shown = (
        what,
        state,
        ("Your batches", row["batches"] or "none named"),
        ("Your products", row["products"] or "none named"),
        (started, f"{row['awareness_at']:%d %b %Y %H:%M} (plant time)"),
        ("Notified to you", f"{row['notified_at']:%d %b %Y %H:%M} (plant time)"),
        ("Quality agreement", clause),
        ("Deadline", "none set: acknowledging tells the CMO you received the notification"),
    )
    return Subject(row["record_type"], row["record_id"], label, shown, None)


def subjects(
    scope: Scope, kinds: tuple[str, ...] = CHANGE_KINDS + EVENT_KINDS, today: date | None = None
) -> list[Subject]:
    """Every record of `kinds` this sponsor may decide now, as the QMS last published it (a
    decision already signed in the portal is the caller's to weigh: portal.decisions)."""
    found: list[Subject] = []
    if set(kinds) & set(CHANGE_KINDS):
        frame: pl.DataFrame = scope.frame("decision subjects", SUBJECTS_SQL)
        found += [_subject(row) for row in frame.iter_rows(named=True)]
    if set(kinds) & set(EVENT_KINDS):
        events = scope.frame("notifications to acknowledge", EVENTS_SQL,
                             {"today": today or clock.today()})  # fmt: skip
        found += [_event_subject(row) for row in events.iter_rows(named=True)]
    return [subject for subject in found if subject.record_type in kinds]
