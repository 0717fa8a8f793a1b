"""Change controls affecting one sponsor, with that sponsor's obligation only.

The partition holds only this sponsor's change_impact rows (ETL redaction), so another
sponsor's obligation for the same change is never readable here. An impact is in view when
its change was opened in the period or is not yet effective, and it concerns a chosen product
(impacts without a product concern every product).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from warehouse import catalogue, clock
from warehouse.filters import Filters
from warehouse.scope import Scope

# Each impact's markets and ICH Q12 reporting categories in one text, e.g. "EU: ...; US: ...".
MARKETS_CTE = """
markets AS (
    SELECT impact_id,
           string_agg(market || ': ' || reporting_category, '; ' ORDER BY market) AS markets
    FROM change_market
    GROUP BY impact_id
)"""

CHANGE_IMPACTS_SQL = f"""
WITH {MARKETS_CTE}
SELECT
    c.change_number,
    c.title,
    c.change_type,
    c.risk_class,
    c.status,
    p.name AS product,
    i.obligation,
    i.obligation_required,
    coalesce(i.obligation_below_agreement, false) AS obligation_below_agreement,
    i.notified_at,
    i.decision,
    i.decided_at,
    c.planned_effective,
    c.actual_effective,
    m.markets,
    c.actual_effective IS NULL
      AND c.status NOT IN ('REJECTED', 'CLOSED')
      AND ((i.obligation = 'PRIOR_APPROVAL' AND coalesce(i.decision, 'PENDING') = 'PENDING')
           OR (i.obligation = 'NOTIFY' AND i.notified_at IS NULL)) AS awaiting_sponsor,
    CASE WHEN c.planned_effective IS NOT NULL AND c.actual_effective IS NULL
         THEN date_diff('day', $today::DATE, c.planned_effective) END AS days_to_planned,
    coalesce(i.violation, false) AS violation,
    i.violation_reason,
    i.impact_id
FROM change_impact AS i
JOIN change_control AS c USING (change_id)
LEFT JOIN product AS p ON p.product_id = i.product_id
LEFT JOIN markets AS m USING (impact_id)
WHERE (len($products::VARCHAR[]) = 0 OR i.product_id IS NULL
       OR list_contains($products::VARCHAR[], i.product_id))
  AND c.opened_at::DATE <= $end
  AND (c.opened_at::DATE >= $start OR c.actual_effective IS NULL
       OR c.actual_effective >= $start)
ORDER BY awaiting_sponsor DESC, violation DESC, c.opened_at DESC, c.change_number, product
"""


def change_impacts(scope: Scope, filters: Filters, today: date | None = None) -> pl.DataFrame:
    """This sponsor's impact rows in view, flagged when awaiting it or in violation."""
    params = {**filters.params(), "today": today or clock.today()}
    return scope.frame("change impacts", CHANGE_IMPACTS_SQL, params)


# What an obligation asks of the sponsor, as a sentence reads it.
OBLIGATION_WORDS = {
    "NONE": "nothing",
    "NOTIFY": "only a notification",
    "PRIOR_APPROVAL": "prior approval",
}


def change_type_words(change_type: str) -> str:
    return change_type.lower().replace("_", " ")


def below_agreement_sentences(impacts: pl.DataFrame) -> list[str]:
    """One sentence per impact recorded with a weaker obligation than this sponsor's quality
    agreement sets for its change type (ETL change_impact.obligation_below_agreement)."""
    return [
        f"Change {row['change_number']} ({change_type_words(row['change_type'])}"
        f"{', ' + row['product'] if row['product'] else ''}) was recorded as needing "
        f"{OBLIGATION_WORDS[row['obligation']]} from the sponsor, but the sponsor's quality "
        f"agreement requires "
        f"{OBLIGATION_WORDS[row['obligation_required']].removeprefix('only ')} for "
        f"{change_type_words(row['change_type'])} changes."
        for row in impacts.filter(pl.col("obligation_below_agreement")).iter_rows(named=True)
    ]


def awaiting_sentences(awaiting: pl.DataFrame, your: str, you: str) -> list[str]:
    """One sentence per impact awaiting the sponsor: the change, what it waits for and by when
    (its planned effective day: a change may not go live before), in the reader's voice."""
    sentences = []
    for row in awaiting.iter_rows(named=True):
        kind = catalogue.dataset("change_controls").column("change_type").words
        what = f"{kind[row['change_type']]} change" + (
            f", {row['product']}" if row["product"] else "")  # fmt: skip
        if row["obligation"] == "PRIOR_APPROVAL":
            needs = f"awaits {your} prior approval"
        else:
            needs = f"must be notified to {you}; the CMO has not sent the notification yet"
        planned, days = row["planned_effective"], row["days_to_planned"]
        if planned is None:
            when = "no planned effective day yet"
        elif days is not None and days >= 0:
            when = f"planned effective {planned:%d %b %Y}, in {days} day{'s' * (days != 1)}"
        else:
            when = f"planned effective {planned:%d %b %Y}"
        sentences.append(f"{row['change_number']} ({what}) {needs}: {when}.")
    return sentences


@dataclass(frozen=True)
class ChangeControlPage:
    """Everything the change control page shows, from one call: impacts, counts, chart data."""

    impacts: pl.DataFrame  # dataset "change_controls"
    change_count: int  # distinct changes in view
    awaiting: pl.DataFrame  # impacts awaiting this sponsor's approval or notification
    violations: pl.DataFrame  # impacts that broke this sponsor's quality agreement
    below_agreement: list[str]  # one sentence per violation recorded below the agreement
    by_obligation: pl.DataFrame  # obligation, status, impacts


def page_model(scope: Scope, filters: Filters, today: date) -> ChangeControlPage:
    """The change control page's model: this sponsor's impacts in view, those awaiting it or in
    violation, and impacts per obligation and change status."""
    impacts = change_impacts(scope, filters, today)
    violations = impacts.filter(pl.col("violation"))
    return ChangeControlPage(
        impacts=impacts,
        change_count=impacts["change_number"].n_unique(),
        awaiting=impacts.filter(pl.col("awaiting_sponsor")),
        violations=violations,
        below_agreement=below_agreement_sentences(violations),
        by_obligation=(
            impacts.group_by("obligation", "status").len("impacts").sort("obligation", "status")
        ),
    )
