"""What the CMO's QMS recorded of the decisions sponsors signed in the portal.

The QMS imports the portal's outbox and keeps one receipt per decision (contract table
decision_receipt); the nightly job publishes each receipt to the sponsor of the change impact
it answers. Beside the portal's own decision (portal.decisions, signed_at) a receipt says
"recorded in the QMS at ...": a decision without one has not reached the QMS yet.
"""

from __future__ import annotations

import polars as pl

from warehouse.scope import Scope

RECEIPTS_SQL = """
SELECT decision_id, impact_id, meaning, recorded_at, recorded_by
FROM decision_receipt
ORDER BY recorded_at DESC, decision_id
"""


def receipts(scope: Scope) -> pl.DataFrame:
    """Every receipt in the scope (one sponsor's, or all for CMO staff), newest first."""
    return scope.frame("decision receipts", RECEIPTS_SQL)
