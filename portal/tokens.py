"""API tokens for the sponsor data share: created, rotated, revoked here; checked by the server.

A token's secret is handed over once, inside a Delta Sharing profile file; the store keeps only
its SHA-256. A token is live until the end of its expiry day (UTC) unless revoked first.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import polars as pl

from portal import access_log
from portal.store import begin_write, connect, from_text, to_text, utc_now
from portal.users import Principal
from warehouse.contract import is_safe_sponsor_id

DEFAULT_ENDPOINT = "http://127.0.0.1:8800/delta-sharing"
# Delta Sharing PROTOCOL.md, "Profile File Format".
PROFILE_VERSION = 1
MAX_LABEL_LENGTH = 80
MAX_YEARS_AHEAD = 2
# What the portal's form proposes: a year, so a token is renewed at least at each annual review.
DEFAULT_YEARS_AHEAD = 1
# Two live tokens per (sponsor, label): the current one and its replacement during a rotation.
MAX_LIVE_PER_LABEL = 2
# authenticate() records use at this resolution, so a busy client does not write on every call.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# The access log's role for token changes made outside any sign-in (as for CLI audit packs).
OPERATOR_ROLE = "command_line"
# The "sponsor" of a CMO integration token (the QMS pulling sponsors' signed decisions): not a
# sponsor id (is_safe_sponsor_id refuses it), so no sponsor scope, share or table opens for it.
CMO_INTEGRATION = "*CMO*"
# A token's state at a moment (Token.state); the catalogue gives each its words.
STATES = ("LIVE", "EXPIRED", "REVOKED")


class TokenError(ValueError):
    """A token request refused, with a reason a CMO operator can act on."""


class LabelFull(TokenError):
    """A third live token for one sponsor and label; `oldest` is the one to revoke first."""

    def __init__(self, message: str, oldest: str) -> None:
        super().__init__(message)
        self.oldest = oldest


@dataclass(frozen=True)
class Token:
    """A token as administered; neither its secret nor its hash ever leaves the store."""

    token_id: str
    sponsor_id: str
    label: str
    created_at: datetime
    created_by: str
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None

    @property
    def cmo_integration(self) -> bool:
        """A CMO integration token: reads decisions for the QMS, never a sponsor's data."""
        return self.sponsor_id == CMO_INTEGRATION

    def live(self, now: datetime) -> bool:
        """True when not revoked and not past the end of its expiry day."""
        return self.revoked_at is None and now <= self.expires_at

    def state(self, now: datetime) -> str:
        """One of STATES: revoked first (a revoked token stays so), then expired, else live."""
        if self.revoked_at is not None:
            return "REVOKED"
        return "LIVE" if self.live(now) else "EXPIRED"


def _hash(secret: str) -> str:
    # The secret is 32 random bytes, so a fast unsalted hash is enough: there is nothing to
    # guess from a dictionary, and a slow hash would only slow every API request down.
    return hashlib.sha256(secret.encode()).hexdigest()


def _token(row) -> Token:
    return Token(
        token_id=row["token_id"],
        sponsor_id=row["sponsor_id"],
        label=row["label"],
        created_at=from_text(row["created_at"]),
        created_by=row["created_by"],
        expires_at=from_text(row["expires_at"]),
        last_used_at=from_text(row["last_used_at"]),
        revoked_at=from_text(row["revoked_at"]),
        revoked_by=row["revoked_by"],
    )


def _moment(now: datetime | None) -> datetime:
    now = utc_now() if now is None else now
    if now.tzinfo is None:
        raise ValueError("token times must carry a time zone")
    return now


def years_later(day: date, years: int) -> date:
    """The same day `years` later (28 February for 29 February), e.g. a default expiry."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _check(sponsor_id: str, label: str, expires: date, now: datetime) -> None:
    if sponsor_id != CMO_INTEGRATION and not is_safe_sponsor_id(sponsor_id):
        raise TokenError(f"{sponsor_id!r} is not a valid sponsor id")
    if not (1 <= len(label) <= MAX_LABEL_LENGTH and label.isprintable() and label.strip()):
        raise TokenError(
            f"the label must be 1 to {MAX_LABEL_LENGTH} printable characters, "
            "e.g. the team that will use the token"
        )
    today = now.astimezone(UTC).date()
    if expires < today:
        raise TokenError(f"the expiry date {expires} is in the past")
    latest = years_later(today, MAX_YEARS_AHEAD)
    if expires > latest:
        raise TokenError(
            f"the expiry date {expires} is more than {MAX_YEARS_AHEAD} years ahead; "
            f"the latest allowed is {latest}"
        )


def _log(event: str, token: Token, by: str, role: str, detail: str) -> None:
    # The entry carries the token's sponsor, so that sponsor sees it in its own access log.
    who = Principal(by, by, role, token.sponsor_id, None, None)
    access_log.record(event, who, page="tokens", detail=f"{token.token_id} {detail}")


def create(
    sponsor_id: str,
    label: str,
    expires: date,
    created_by: str,
    *,
    role: str = OPERATOR_ROLE,
    now: datetime | None = None,
) -> tuple[Token, str]:
    """A new token live until the end of `expires` (UTC); returns it and its secret, shown once.

    `role` is the creator's, as the access log records it (a signed-in user's, or the CLI's)."""
    now = _moment(now)
    _check(sponsor_id, label, expires, now)
    secret = secrets.token_urlsafe(32)
    token_id = "tok_" + secrets.token_hex(5)
    with connect() as conn:
        # Take the write lock before counting, so two operators cannot both add a third token.
        begin_write(conn, "api_token")
        live = conn.execute(
            """
            SELECT token_id FROM api_token
            WHERE sponsor_id = ? AND label = ? AND revoked_at IS NULL AND expires_at >= ?
            ORDER BY created_at
            """,
            (sponsor_id, label, to_text(now)),
        ).fetchall()
        if len(live) >= MAX_LIVE_PER_LABEL:
            ids = ", ".join(row["token_id"] for row in live)
            oldest = live[0]["token_id"]
            raise LabelFull(
                f"{sponsor_id} already has {len(live)} live tokens labelled {label!r} ({ids}); "
                f"revoke one of them first, e.g. the oldest, {oldest}",
                oldest,
            )
        conn.execute(
            """
            INSERT INTO api_token (token_id, token_hash, sponsor_id, label, created_at,
                created_by, expires_at)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """,
            (
                token_id,
                _hash(secret),
                sponsor_id,
                label,
                to_text(now),
                created_by,
                to_text(datetime.combine(expires, time.max, UTC)),
            ),
        )
        token = _token(
            conn.execute("SELECT * FROM api_token WHERE token_id = ?", (token_id,)).fetchone()
        )
    _log("TOKEN_CREATED", token, created_by, role, f"{label!r} expires {expires}")
    return token, secret


def authenticate(secret: str, now: datetime | None = None) -> Token | None:
    """The live token with this secret, or None when unknown, expired or revoked."""
    now = _moment(now)
    # Looking the hash up in an index is not a constant-time compare, and need not be: timing
    # could at most reveal bits of the SHA-256 of a 256-bit random secret, which does not help
    # anyone find a secret with that hash.
    with connect() as conn:
        row = conn.execute(
            "SELECT * FROM api_token WHERE token_hash = ?", (_hash(secret),)
        ).fetchone()
        if row is None:
            return None
        token = _token(row)
        if not token.live(now):
            return None
        if token.last_used_at is not None and now - token.last_used_at < LAST_USED_RESOLUTION:
            return token
        conn.execute(
            "UPDATE api_token SET last_used_at = ? WHERE token_id = ?",
            (to_text(now), token.token_id),
        )
    return replace(token, last_used_at=now)


def get(token_id: str) -> Token | None:
    """The token with this id, live or not (e.g. to check a signed file link's token)."""
    with connect() as conn:
        row = conn.execute("SELECT * FROM api_token WHERE token_id = ?", (token_id,)).fetchone()
    return None if row is None else _token(row)


def list_tokens(sponsor_id: str | None = None) -> list[Token]:
    """All tokens, or one sponsor's, by sponsor, label and age; never secrets or hashes."""
    with connect() as conn:
        rows = conn.execute(
            """
            SELECT * FROM api_token WHERE CAST(? AS TEXT) IS NULL OR sponsor_id = ?
            ORDER BY sponsor_id, label, created_at
            """,
            (sponsor_id, sponsor_id),
        ).fetchall()
    return [_token(row) for row in rows]


def revoke(
    token_id: str, revoked_by: str, now: datetime | None = None, *, role: str = OPERATOR_ROLE
) -> Token:
    """Revoke a token; a token revoked before is returned as it is, with its first revocation."""
    now = _moment(now)
    with connect() as conn:
        changed = conn.execute(
            """
            UPDATE api_token SET revoked_at = ?, revoked_by = ?
            WHERE token_id = ? AND revoked_at IS NULL
            """,
            (to_text(now), revoked_by, token_id),
        ).rowcount
        row = conn.execute("SELECT * FROM api_token WHERE token_id = ?", (token_id,)).fetchone()
    if row is None:
        raise TokenError(f"there is no token {token_id!r}; see python -m portal tokens list")
    token = _token(row)
    if changed:
        _log("TOKEN_REVOKED", token, revoked_by, role, repr(token.label))
    return token


def revoke_sponsor(sponsor_id: str, revoked_by: str, now: datetime | None = None) -> int:
    """Revoke every live token of a sponsor (e.g. when its access ends); returns how many."""
    now = _moment(now)
    if not is_safe_sponsor_id(sponsor_id):
        raise TokenError(f"{sponsor_id!r} is not a valid sponsor id")
    with connect() as conn:
        rows = conn.execute(
            """
            UPDATE api_token SET revoked_at = ?, revoked_by = ?
            WHERE sponsor_id = ? AND revoked_at IS NULL AND expires_at >= ?
            RETURNING *
            """,
            (to_text(now), revoked_by, sponsor_id, to_text(now)),
        ).fetchall()
    for row in rows:
        token = _token(row)
        _log(
            "TOKEN_REVOKED",
            token,
            revoked_by,
            OPERATOR_ROLE,
            f"{token.label!r} (all of {sponsor_id})",
        )
    return len(rows)


def check_endpoint(endpoint: str) -> None:
    """Refuse an endpoint a profile cannot carry (checked before a token is made for it)."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TokenError(f"the endpoint must be an http(s) URL, not {endpoint!r}")


def profile(secret: str, endpoint: str, token: Token) -> dict[str, Any]:
    """The Delta Sharing profile a sponsor's client reads (PROTOCOL.md, Profile File Format)."""
    check_endpoint(endpoint)
    return {
        "shareCredentialsVersion": PROFILE_VERSION,
        "endpoint": endpoint,
        "bearerToken": secret,
        "expirationTime": token.expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def write_profile(path: Path, profile: dict[str, Any]) -> None:
    """Write a new profile file readable by its owner only; never overwrites a file."""
    try:
        # O_EXCL: refuse an existing file (or symlink); 0600 from the first byte written.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise TokenError(f"{path} already exists; profile files are never overwritten") from None
    except OSError as failure:
        raise TokenError(f"cannot write {path}: {failure.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(profile, out, indent=2)
        out.write("\n")


def profile_name(token: Token) -> str:
    """The profile file's name: sponsor and label, e.g. "nwt-nwt-data-team.share"."""
    slug = re.sub(r"[^a-z0-9]+", "-", token.label.lower()).strip("-") or "token"
    return f"{token.sponsor_id.lower()}-{slug}.share"


def tokens_frame(tokens: list[Token], now: datetime) -> pl.DataFrame:
    """Tokens as the catalogue's "api_tokens" rows, each in its state at `now` (times in UTC)."""
    moment = pl.Datetime("us", "UTC")
    frame = pl.DataFrame(
        [(t.token_id, t.sponsor_id, t.label, t.state(now), t.expires_at.astimezone(UTC).date(),
          t.last_used_at, t.created_at, t.created_by, t.revoked_at, t.revoked_by)
         for t in tokens],
        schema={"token_id": pl.String, "sponsor_id": pl.String, "label": pl.String,
                "state": pl.String, "expires_on": pl.Date, "last_used_at": moment,
                "created_at": moment, "created_by": pl.String, "revoked_at": moment,
                "revoked_by": pl.String},
        orient="row",
    )  # fmt: skip
    return frame.with_columns(
        pl.col(moment).dt.replace_time_zone(None),
        pl.col("sponsor_id").replace({CMO_INTEGRATION: "CMO integration (decisions only)"}),
    )
