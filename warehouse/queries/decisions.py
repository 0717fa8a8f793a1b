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

from warehouse import catalogue
from warehouse.catalogue import columns
from warehouse.scope import Scope

# A decision's meaning (21 CFR 11.50(a)(3)) and each kind of record, in the catalogue's words.
MEANING_WORDS = columns.DECISION_MEANING_WORDS
RECORD_TYPE_WORDS = columns.DECISION_RECORD_WORDS
CHANGE_APPROVAL = "change_approval"
CHANGE_NOTIFICATION = "change_notification"
# What each kind of record may be answered with.
MEANINGS = {CHANGE_APPROVAL: ("APPROVED", "REJECTED"), CHANGE_NOTIFICATION: ("ACKNOWLEDGED",)}

SUBJECTS_SQL = """
WITH markets AS (
    SELECT impact_id,
           string_agg(market || ': ' || reporting_category, '; ' ORDER BY market) AS markets
    FROM change_market
    GROUP BY impact_id
)
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


def subjects(scope: Scope) -> list[Subject]:
    """Every change impact this sponsor may decide now, as the QMS last published it (a
    decision already signed in the portal is the caller's to weigh: portal.decisions)."""
    frame: pl.DataFrame = scope.frame("decision subjects", SUBJECTS_SQL)
    return [_subject(row) for row in frame.iter_rows(named=True)]
