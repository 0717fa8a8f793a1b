"""Named filter sets a user saves per dashboard; they belong to that user only."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from warehouse import layout

_SCHEMA = """
CREATE TABLE IF NOT EXISTS saved_view (
    username TEXT NOT NULL,
    page TEXT NOT NULL,
    name TEXT NOT NULL,
    filters_json TEXT NOT NULL,
    saved_at TEXT NOT NULL,
    PRIMARY KEY (username, page, name)
)
"""


def _connect(db: Path | None = None) -> sqlite3.Connection:
    path = db or layout.portal_db()
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=10)
    con.execute(_SCHEMA)
    return con


def save(username: str, page: str, name: str, filters: dict, db: Path | None = None) -> None:
    with _connect(db) as con:
        con.execute(
            "INSERT OR REPLACE INTO saved_view VALUES (?, ?, ?, ?, ?)",
            (username, page, name, json.dumps(filters), datetime.now(UTC).isoformat()),
        )


def views(username: str, page: str, db: Path | None = None) -> dict[str, dict]:
    with _connect(db) as con:
        rows = con.execute(
            "SELECT name, filters_json FROM saved_view WHERE username = ? AND page = ? "
            "ORDER BY name",
            (username, page),
        ).fetchall()
    return {name: json.loads(filters) for name, filters in rows}
