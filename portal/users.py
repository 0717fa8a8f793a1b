"""The user registry: who may sign in, with which role, for which sponsor, and when."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import bcrypt
import polars as pl

from portal.store import connect, from_text, to_text, utc_now
from warehouse.contract import is_safe_sponsor_id

ROLES = ("sponsor_qa", "auditor", "cmo_quality", "cmo_management", "bd_demo", "admin")
# Roles whose every query is confined to one sponsor's partitions.
SPONSOR_ROLES = frozenset({"sponsor_qa", "auditor"})
CMO_ROLES = frozenset({"cmo_quality", "cmo_management"})
# Lower case only: streamlit-authenticator lower-cases the name typed at sign-in.
USERNAME_PATTERN = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
MIN_PASSWORD_LENGTH = 10


class UserError(ValueError):
    """A registry change that would break a rule (unknown role, bad sponsor id, ...)."""


@dataclass(frozen=True)
class Principal:
    """Who is signed in, as the server knows it; the only source of a session's sponsor."""

    username: str
    display_name: str
    role: str
    sponsor_id: str | None
    valid_from: datetime | None
    valid_until: datetime | None


@dataclass(frozen=True)
class User:
    """A registry row as administered (the password hash stays in the store)."""

    username: str
    display_name: str
    email: str | None
    role: str
    sponsor_id: str | None
    valid_from: datetime | None
    valid_until: datetime | None
    disabled: bool
    landing_page: str | None
    created_at: datetime
    created_by: str

    def principal(self) -> Principal:
        """The principal this record describes, whether or not it may sign in now."""
        return Principal(
            self.username,
            self.display_name,
            self.role,
            self.sponsor_id,
            self.valid_from,
            self.valid_until,
        )

    def is_valid_at(self, now: datetime) -> bool:
        """True when enabled and inside its validity window (valid_until is exclusive)."""
        if self.disabled:
            return False
        if self.valid_from is not None and now < self.valid_from:
            return False
        return self.valid_until is None or now < self.valid_until


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()


def one_time_password() -> str:
    """A random password to be shown once and handed over out of band."""
    return secrets.token_urlsafe(12)


def _user(row) -> User:
    return User(
        username=row["username"],
        display_name=row["display_name"],
        email=row["email"],
        role=row["role"],
        sponsor_id=row["sponsor_id"],
        valid_from=from_text(row["valid_from"]),
        valid_until=from_text(row["valid_until"]),
        disabled=bool(row["disabled"]),
        landing_page=row["landing_page"],
        created_at=from_text(row["created_at"]),
        created_by=row["created_by"],
    )


def _check(
    username: str,
    role: str,
    sponsor_id: str | None,
    valid_from: datetime | None,
    valid_until: datetime | None,
) -> None:
    if not USERNAME_PATTERN.fullmatch(username):
        raise UserError(
            f"the username {username!r} is not allowed: use 2 to 64 lower-case letters, digits, "
            "dots, dashes or underscores, starting with a letter (e.g. anna.berg)"
        )
    if role not in ROLES:
        raise UserError(f"the role {role!r} is not one of {', '.join(ROLES)}")
    if role in SPONSOR_ROLES:
        if not is_safe_sponsor_id(sponsor_id):
            raise UserError(f"a {role} account needs the id of its sponsor, got {sponsor_id!r}")
    elif sponsor_id is not None:
        raise UserError(f"a {role} account sees no single sponsor: leave the sponsor empty")
    if role == "auditor" and (valid_from is None or valid_until is None):
        raise UserError("an auditor account needs the start and the end of its access")
    for moment in (valid_from, valid_until):
        if moment is not None and moment.tzinfo is None:
            raise UserError("the start and end of access must carry a time zone")
    if valid_from and valid_until and valid_until <= valid_from:
        raise UserError("the end of access must come after its start")


def add_user(
    username: str,
    display_name: str,
    role: str,
    password: str,
    *,
    sponsor_id: str | None = None,
    email: str | None = None,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    landing_page: str | None = None,
    created_by: str = "cli",
) -> User:
    """Register a user; raises UserError on a broken rule or an existing username."""
    _check(username, role, sponsor_id, valid_from, valid_until)
    password_hash = hash_password(password)
    with connect() as conn:
        if conn.execute("SELECT 1 FROM portal_user WHERE username = ?", (username,)).fetchone():
            raise UserError(f"user {username!r} already exists")
        conn.execute(
            """
            INSERT INTO portal_user (username, display_name, email, role, sponsor_id,
                valid_from, valid_until, password_hash, disabled, landing_page,
                created_at, created_by)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)
            """,
            (
                username,
                display_name,
                email,
                role,
                sponsor_id,
                to_text(valid_from),
                to_text(valid_until),
                password_hash,
                landing_page,
                to_text(utc_now()),
                created_by,
            ),
        )
    return get_user(username)


def create_auditor(
    username: str,
    display_name: str,
    sponsor_id: str,
    *,
    valid_from: datetime,
    valid_until: datetime,
    email: str | None = None,
    created_by: str = "cli",
) -> tuple[User, str]:
    """Register a time-bounded auditor; returns the user and its one-time password."""
    password = one_time_password()
    user = add_user(
        username,
        display_name,
        "auditor",
        password,
        sponsor_id=sponsor_id,
        email=email,
        valid_from=valid_from,
        valid_until=valid_until,
        created_by=created_by,
    )
    return user, password


def get_user(username: str) -> User | None:
    with connect() as conn:
        row = conn.execute("SELECT * FROM portal_user WHERE username = ?", (username,)).fetchone()
    return None if row is None else _user(row)


def list_users() -> list[User]:
    with connect() as conn:
        rows = conn.execute("SELECT * FROM portal_user ORDER BY username").fetchall()
    return [_user(row) for row in rows]


def _update(username: str, sql: str, params: tuple) -> None:
    with connect() as conn:
        if conn.execute(sql, (*params, username)).rowcount != 1:
            raise UserError(f"no user {username!r}")


def disable_user(username: str) -> None:
    """Stop a user signing in; running sessions end at their next rerun."""
    _update(username, "UPDATE portal_user SET disabled = 1 WHERE username = ?", ())


def enable_user(username: str) -> None:
    """Let a disabled user sign in again (an auditor still only inside its window)."""
    _update(username, "UPDATE portal_user SET disabled = 0 WHERE username = ?", ())


def end_access(username: str, now: datetime) -> User:
    """End an auditor's access at `now`: its window closes, its sessions end at their next
    rerun and buttons left on its screen deliver nothing."""
    user = get_user(username)
    if user is None:
        raise UserError(f"no user {username!r}")
    if user.role != "auditor":
        raise UserError(f"only an auditor's access has an end; disable {username} instead")
    if user.valid_until is not None and user.valid_until <= now:
        raise UserError(f"{username}'s access has already ended")
    start = min(user.valid_from, now - timedelta(seconds=1)) if user.valid_from else None
    _update(
        username,
        "UPDATE portal_user SET valid_from = ?, valid_until = ? WHERE username = ?",
        (to_text(start), to_text(now)),
    )
    return get_user(username)


def may_manage(actor: Principal, target: User) -> bool:
    """The administrator manages every other account; CMO staff manage auditors only (they
    cannot reset a colleague's or the administrator's password)."""
    if actor.username == target.username:
        return False
    return actor.role == "admin" or (actor.role in CMO_ROLES and target.role == "auditor")


def reset_password(username: str, password: str) -> None:
    _update(
        username,
        "UPDATE portal_user SET password_hash = ? WHERE username = ?",
        (hash_password(password),),
    )


def set_landing_page(username: str, url_path: str | None) -> None:
    _update(username, "UPDATE portal_user SET landing_page = ? WHERE username = ?", (url_path,))


def principal_for(username: str, now: datetime) -> Principal | None:
    """The principal for a signed-in name, or None if unknown, disabled or outside validity."""
    user = get_user(username)
    if user is None or not user.is_valid_at(now):
        return None
    return user.principal()


def signable_credentials(now: datetime) -> dict[str, dict]:
    """streamlit-authenticator credentials for the users who may sign in at `now`."""
    with connect() as conn:
        rows = conn.execute("SELECT * FROM portal_user WHERE disabled = 0").fetchall()
    return {
        row["username"]: {
            "name": row["display_name"],
            "email": row["email"],
            "password": row["password_hash"],
            "roles": [row["role"]],
        }
        for row in rows
        if _user(row).is_valid_at(now)
    }


DEMO_SPONSOR_USERS = (
    # username, display name, role, sponsor id
    ("priya", "Priya Raman", "sponsor_qa", "NWT"),
    ("bruno", "Bruno Costa", "sponsor_qa", "CTB"),
    ("fatima", "Fatima Keller", "sponsor_qa", "FBK"),
    ("takeshi", "Takeshi Sato", "sponsor_qa", "TSP"),
    ("wendy", "Wendy Graham", "sponsor_qa", "WGT"),
    ("carla", "Carla Jensen", "cmo_quality", None),
    ("elena", "Elena Petrova", "cmo_management", None),
    ("marco", "Marco Bianchi", "bd_demo", None),
    ("sam", "Sam Okafor", "admin", None),
)
DEMO_AUDITOR = ("tom", "Tom Fischer", "NWT")
DEMO_AUDITOR_DAYS = 5


def demo_password(username: str) -> str:
    """Fixed demo passwords, e.g. priya-demo-2026 (demo mode only)."""
    return f"{username}-demo-2026"


def ensure_demo_users(now: datetime | None = None) -> list[str]:
    """Create the demo users that do not exist yet; returns the names created."""
    now = now or utc_now()
    created = []
    for username, display_name, role, sponsor_id in DEMO_SPONSOR_USERS:
        if get_user(username) is None:
            add_user(
                username,
                display_name,
                role,
                demo_password(username),
                sponsor_id=sponsor_id,
                created_by="demo-users",
            )
            created.append(username)
    username, display_name, sponsor_id = DEMO_AUDITOR
    if get_user(username) is None:
        # Day one is today; on day six the sign-in is refused (JOURNEYS: Tom).
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        add_user(
            username,
            display_name,
            "auditor",
            demo_password(username),
            sponsor_id=sponsor_id,
            valid_from=today,
            valid_until=today + timedelta(days=DEMO_AUDITOR_DAYS),
            created_by="demo-users",
        )
        created.append(username)
    return created


def users_frame(users: list[User]) -> pl.DataFrame:
    """Accounts as the catalogue's "users" rows (times in UTC)."""

    def utc(moment: datetime | None) -> datetime | None:
        return None if moment is None else moment.astimezone(UTC).replace(tzinfo=None)

    return pl.DataFrame(
        [(u.username, u.display_name, u.role, u.sponsor_id, utc(u.valid_from),
          utc(u.valid_until), u.disabled) for u in users],
        schema={"username": pl.String, "display_name": pl.String, "role": pl.String,
                "sponsor_id": pl.String, "valid_from": pl.Datetime("us"),
                "valid_until": pl.Datetime("us"), "disabled": pl.Boolean},
        orient="row",
    )  # fmt: skip
