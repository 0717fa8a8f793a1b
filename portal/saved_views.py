"""Named filter sets a user saves; each can be chosen on every dashboard and belongs to that
user only (the page it was saved on is kept with it)."""

from __future__ import annotations

import json

from portal.store import connect, to_text, utc_now


def save(username: str, page: str, name: str, filters: dict) -> None:
    with connect() as conn:
        conn.execute(
            """
            INSERT INTO saved_view (username, page, name, filters_json, saved_at)
            VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (username, page, name) DO UPDATE
                SET filters_json = excluded.filters_json, saved_at = excluded.saved_at
            """,
            (username, page, name, json.dumps(filters), to_text(utc_now())),
        )


def views(username: str) -> dict[str, dict]:
    """The user's views by name; a name saved on two pages is the one saved last."""
    with connect() as conn:
        rows = conn.execute(
            "SELECT name, filters_json FROM saved_view WHERE username = ? ORDER BY name, saved_at",
            (username,),
        ).fetchall()
    return {name: json.loads(filters) for name, filters in rows}
