"""The append-only access log: every sign-in, page view, export and audit pack, in the portal DB."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

import polars as pl

from portal.store import Connection, connect, to_text, utc_now
from portal.users import Principal

EVENTS = (
    "SIGN_IN",
    "SIGN_IN_FAILED",
    "SIGN_OUT",
    "LOCKED",
    "TIMEOUT",
    "PAGE_VIEW",
    "EXPORT",
    "EXPIRED",
    "AUDIT_PACK",  # an audit pack generated (page or CLI), with its content hash
    "DOWNLOAD",  # a generated audit pack downloaded, with its content hash
    "TOKEN_CREATED",  # a data-share token issued (never its secret)
    "TOKEN_REVOKED",
    "API_REQUEST",  # a call to the sharing server, by a token
    "FILE_FETCH",  # a shared Parquet file downloaded through a signed link
    # Account changes made on the Users page; the entry names the account in `detail` and
    # carries its sponsor, so a sponsor sees its auditors' accounts being made and ended.
    "USER_CREATED",
    "USER_DISABLED",
    "USER_ENABLED",
    "PASSWORD_RESET",
    "ACCESS_ENDED",
    # Decisions (portal/decisions.py): a signed decision carries its chain hash; a refused
    # signature says why in `detail`; a grant names the account in `detail`.
    "DECISION_SIGNED",
    "SIGNATURE_FAILED",
    "SIGNING_GRANTED",
    "SIGNING_WITHDRAWN",
)
API_ROLE = "api"  # the role of an access-log entry made by a data-share token
COLUMNS = (
    "id",
    "at",
    "username",
    "role",
    "sponsor_id",
    "event",
    "page",
    "filters_json",
    "row_count",
    "content_hash",
    "detail",
)


def record(
    event: str,
    principal: Principal | None,
    *,
    page: str | None = None,
    filters: dict[str, Any] | None = None,
    row_count: int | None = None,
    content_hash: str | None = None,
    detail: str | None = None,
    username: str | None = None,
) -> None:
    """Append one entry; `username` names the subject when there is no principal."""
    who = (
        (principal.username, principal.role, principal.sponsor_id)
        if principal
        else (username, None, None)
    )
    _append(event, *who, page, filters, row_count, content_hash, detail)


def record_account(event: str, actor: Principal, username: str, sponsor_id: str | None) -> None:
    """An account change by `actor` on the account `username` (of sponsor `sponsor_id`)."""
    record(event, replace(actor, sponsor_id=sponsor_id), page="users", detail=username)


def record_api(
    event: str,
    token: Any,
    *,
    page: str | None = None,
    filters: dict[str, Any] | None = None,
    row_count: int | None = None,
    content_hash: str | None = None,
    detail: str | None = None,
) -> None:
    """Append one entry made with a data-share token (portal.tokens.Token): its sponsor, so
    that sponsor's QA sees the call, and "token <id> (<label>)" as who."""
    who = f"token {token.token_id} ({token.label})"
    _append(event, who, API_ROLE, token.sponsor_id, page, filters, row_count, content_hash,
            detail)  # fmt: skip


def _append(
    event: str,
    username: str | None,
    role: str | None,
    sponsor_id: str | None,
    page: str | None,
    filters: dict[str, Any] | None,
    row_count: int | None,
    content_hash: str | None,
    detail: str | None,
) -> None:
    with connect() as conn:
        append_in(conn, event, username, role, sponsor_id, page, filters, row_count,
                  content_hash, detail)  # fmt: skip


def append_in(
    conn: Connection,
    event: str,
    username: str | None,
    role: str | None,
    sponsor_id: str | None,
    page: str | None,
    filters: dict[str, Any] | None,
    row_count: int | None,
    content_hash: str | None,
    detail: str | None,
) -> None:
    """Append one entry inside the caller's transaction (a decision and its entry are one)."""
    if event not in EVENTS:
        raise ValueError(f"unknown access-log event {event!r}")
    conn.execute(
        """
        INSERT INTO access_log (at, username, role, sponsor_id, event, page, filters_json,
            row_count, content_hash, detail)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        (
            to_text(utc_now()), username, role, sponsor_id, event, page,
            None if filters is None else json.dumps(filters, sort_keys=True, default=str),
            row_count, content_hash, detail,
        ),
    )  # fmt: skip


def _entries(where: str, params: tuple) -> list[dict[str, Any]]:
    with connect() as conn:
        rows = conn.execute(
            f"SELECT {', '.join(COLUMNS)} FROM access_log WHERE {where} ORDER BY id DESC",
            params,
        ).fetchall()
    return [dict(row) for row in rows]


def entries_for_sponsor(sponsor_id: str, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Entries in [since, until), newest first, about this sponsor: its own users' and CMO
    staff's views, exports and audit packs of its data."""
    return _entries(
        "sponsor_id = ? AND at >= ? AND at < ?", (sponsor_id, to_text(since), to_text(until))
    )


def entries_all(since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Every entry in [since, until), newest first (CMO staff only)."""
    return _entries("at >= ? AND at < ?", (to_text(since), to_text(until)))


def entries_frame(entries: list[dict[str, Any]]) -> pl.DataFrame:
    """Entries as the catalogue's "access_log" rows: times as UTC datetimes."""
    schema = dict.fromkeys(COLUMNS, pl.String) | {"id": pl.Int64, "row_count": pl.Int64}
    frame = (
        pl.DataFrame(entries, schema=schema, orient="row")
        if entries
        else pl.DataFrame(schema=schema)
    )
    return frame.with_columns(
        pl.col("at").str.to_datetime(time_zone="UTC", time_unit="us").dt.replace_time_zone(None)
    )
