"""Named filter sets a user saves per dashboard; they belong to that user only."""

from __future__ import annotations

import json

from portal.store import connect, to_text, utc_now


def save(username: str, page: str, name: str, filters: dict) -> None:
    with connect() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO saved_view VALUES (?, ?, ?, ?, ?)",
            (username, page, name, json.dumps(filters), to_text(utc_now())),
        )


def views(username: str, page: str) -> dict[str, dict]:
    with connect() as conn:
        rows = conn.execute(
            "SELECT name, filters_json FROM saved_view WHERE username = ? AND page = ? "
            "ORDER BY name",
            (username, page),
        ).fetchall()
    return {name: json.loads(filters) for name, filters in rows}
