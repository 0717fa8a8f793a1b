"""Sign-in failures counted per username in the portal's own store, and the lock they cause."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from portal.store import begin_write, connect, from_text, to_text


@dataclass(frozen=True)
class LockoutPolicy:
    """`max_failures` failures within `window` lock the account for `lock_for`."""

    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)
    lock_for: timedelta = timedelta(minutes=15)

    @classmethod
    def from_env(cls) -> LockoutPolicy:
        """Defaults overridden by PORTAL_LOCKOUT_FAILURES / _WINDOW_MINUTES / _MINUTES."""
        env = os.environ
        return cls(
            max_failures=int(env.get("PORTAL_LOCKOUT_FAILURES", cls.max_failures)),
            window=timedelta(minutes=float(env.get("PORTAL_LOCKOUT_WINDOW_MINUTES", 15))),
            lock_for=timedelta(minutes=float(env.get("PORTAL_LOCKOUT_MINUTES", 15))),
        )


def locked_until(username: str, now: datetime) -> datetime | None:
    """When the lock on `username` passes, or None if it is not locked at `now`."""
    with connect() as conn:
        row = conn.execute(
            "SELECT locked_until FROM signin_failure WHERE username = ?", (username,)
        ).fetchone()
    until = from_text(row["locked_until"]) if row else None
    return until if until is not None and now < until else None


def record_failure(username: str, now: datetime, policy: LockoutPolicy) -> datetime | None:
    """Count one failure; returns the lock's end when this failure locks the account."""
    with connect() as conn:
        begin_write(conn, "signin_failure")  # two failures at once both count
        row = conn.execute(
            "SELECT failures, first_at FROM signin_failure WHERE username = ?", (username,)
        ).fetchone()
        in_window = row is not None and now - from_text(row["first_at"]) <= policy.window
        failures = row["failures"] + 1 if in_window else 1
        first_at = row["first_at"] if in_window else to_text(now)
        lock_end = now + policy.lock_for if failures >= policy.max_failures else None
        # A lock starts a fresh count, so the lock does not renew itself once it passes.
        conn.execute(
            """
            INSERT INTO signin_failure (username, failures, first_at, locked_until)
            VALUES (?, ?, ?, ?)
            ON CONFLICT (username) DO UPDATE SET failures = excluded.failures,
                first_at = excluded.first_at,
                locked_until = COALESCE(excluded.locked_until, signin_failure.locked_until)
            """,
            (username, 0 if lock_end else failures, first_at, to_text(lock_end)),
        )
    return lock_end


def clear_failures(username: str) -> None:
    """Forget failures after a successful sign-in."""
    with connect() as conn:
        conn.execute("DELETE FROM signin_failure WHERE username = ?", (username,))
