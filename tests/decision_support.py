"""What the decision tests read back from the portal store: its decisions and its log."""

from __future__ import annotations

from portal.store import connect


def stored() -> list[dict]:
    """Every decision row, in chain order."""
    with connect() as conn:
        return [dict(row) for row in conn.execute("SELECT * FROM decision ORDER BY seq")]


def logged(event: str) -> list[dict]:
    """Every access-log entry of `event`, oldest first."""
    with connect() as conn:
        rows = conn.execute("SELECT * FROM access_log WHERE event = ? ORDER BY id", (event,))
        return [dict(row) for row in rows]
