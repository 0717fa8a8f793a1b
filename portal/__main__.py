"""Portal administration: python -m portal users add|disable|reset-password|list|create-auditor,
python -m portal tokens create|list|revoke|revoke-sponsor, python -m portal demo-users,
python -m portal auditpack, python -m portal signing|signatures|decisions,
python -m portal db upgrade|current."""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from portal import auditpack_command, db_command, decisions, decisions_command, tokens, users
from portal.store import StoreUnavailable, utc_now


def _day_start(text: str) -> datetime:
    return datetime.combine(date.fromisoformat(text), time.min, UTC)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("New password: ")
    if first != getpass.getpass("Repeat password: "):
        raise users.UserError("the passwords differ")
    return first


def _add(args: argparse.Namespace) -> str:
    user = users.add_user(
        args.username,
        args.name,
        args.role,
        _read_password(args.password_stdin),
        sponsor_id=args.sponsor,
        email=args.email,
        valid_from=_day_start(args.valid_from) if args.valid_from else None,
        valid_until=_day_start(args.valid_until) if args.valid_until else None,
        created_by=args.by,
    )
    return f"added {user.username} ({user.role}{', ' + user.sponsor_id if user.sponsor_id else ''})"


def _disable(args: argparse.Namespace) -> str:
    users.disable_user(args.username)
    return f"disabled {args.username}"


def _reset(args: argparse.Namespace) -> str:
    users.reset_password(args.username, _read_password(args.password_stdin))
    return f"password of {args.username} reset"


def _list(args: argparse.Namespace) -> str:
    lines = ["username\trole\tsponsor\tvalid_from\tvalid_until\tdisabled\tname"]
    for user in users.list_users():
        lines.append(
            "\t".join(
                str(value or "")
                for value in (
                    user.username,
                    user.role,
                    user.sponsor_id,
                    user.valid_from and user.valid_from.date(),
                    user.valid_until and user.valid_until.date(),
                    "yes" if user.disabled else "",
                    user.display_name,
                )
            )
        )
    return "\n".join(lines)


def _create_auditor(args: argparse.Namespace) -> str:
    start = _day_start(args.valid_from) if args.valid_from else _day_start(date.today().isoformat())
    user, password = users.create_auditor(
        args.username,
        args.name,
        args.sponsor,
        valid_from=start,
        valid_until=start + timedelta(days=args.days),
        email=args.email,
        created_by=args.by,
    )
    return (
        f"auditor {user.username} for {user.sponsor_id}, valid {user.valid_from:%Y-%m-%d} "
        f"until {user.valid_until:%Y-%m-%d %H:%M} UTC\n"
        f"one-time password (shown once): {password}"
    )


def _demo_users(args: argparse.Namespace) -> str:
    created = users.ensure_demo_users()
    decisions.ensure_demo_signers()
    passwords = ", ".join(f"{name}/{users.demo_password(name)}" for name in created)
    return f"created {passwords}" if created else "demo users already exist"


def _minute(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M}"


def _create_token(args: argparse.Namespace) -> str:
    out = Path(args.out)
    # Checked before the token exists, so a refused file name leaves no orphan live token.
    if out.exists() or out.is_symlink():
        raise tokens.TokenError(f"{out} already exists; profile files are never overwritten")
    try:
        sponsor = tokens.CMO_INTEGRATION if args.cmo_integration else args.sponsor
        token, secret = tokens.create(sponsor, args.label, args.expires, args.by)
    except tokens.LabelFull as full:
        raise tokens.TokenError(f"{full}: python -m portal tokens revoke {full.oldest}") from None
    try:
        tokens.write_profile(out, tokens.profile(secret, args.endpoint, token))
    except tokens.TokenError as refused:
        tokens.revoke(token.token_id, args.by)
        raise tokens.TokenError(f"{refused} (token {token.token_id} revoked unused)") from None
    return (
        f"profile for {'the CMO integration' if token.cmo_integration else token.sponsor_id} "
        f"({token.label}) written to {out}, token "
        f"{token.token_id}, expires {token.expires_at:%Y-%m-%d %H:%M:%S} UTC\n"
        "hand the file over securely: the secret in it is shown nowhere else"
    )


def _list_tokens(args: argparse.Namespace) -> str:
    lines = ["id\tsponsor\tlabel\tcreated\tcreated_by\texpires\tlast_used\trevoked"]
    for token in tokens.list_tokens(args.sponsor):
        revoked = token.revoked_at and f"{_minute(token.revoked_at)} by {token.revoked_by}"
        lines.append(
            "\t".join(
                (
                    token.token_id,
                    token.sponsor_id,
                    token.label,
                    _minute(token.created_at),
                    token.created_by,
                    str(token.expires_at.date()),
                    _minute(token.last_used_at),
                    revoked or "",
                )
            )
        )
    return "\n".join(lines)


def _revoke_token(args: argparse.Namespace) -> str:
    now = utc_now()
    token = tokens.revoke(args.token_id, args.by, now)
    if token.revoked_at != now:
        return (
            f"{token.token_id} was already revoked on {_minute(token.revoked_at)} UTC "
            f"by {token.revoked_by}"
        )
    return f"revoked {token.token_id} ({token.sponsor_id}, {token.label})"


def _revoke_sponsor(args: argparse.Namespace) -> str:
    count = tokens.revoke_sponsor(args.sponsor, args.by)
    return f"revoked {count} live token{'' if count == 1 else 's'} of {args.sponsor}"


def _add_token_commands(commands: argparse._SubParsersAction) -> None:
    token_commands = commands.add_parser(
        "tokens",
        help="manage the data share's API tokens",
        description="API tokens for the sponsor data share (Delta Sharing). To end a "
        "sponsor's access, revoke all its tokens: tokens revoke-sponsor SPONSOR.",
    ).add_subparsers(dest="action", required=True)

    create = token_commands.add_parser(
        "create", help="new token, written into a Delta Sharing profile file (mode 0600)"
    )
    whose = create.add_mutually_exclusive_group(required=True)
    whose.add_argument("--sponsor", help="sponsor id: the token reads that sponsor's data")
    whose.add_argument(
        "--cmo-integration",
        action="store_true",
        help="a token for the CMO's QMS: reads sponsors' signed decisions (GET "
        "/api/v1/decisions), never a sponsor's data",
    )
    create.add_argument("--label", required=True, help="who uses it, e.g. 'NWT data team'")
    create.add_argument(
        "--expires",
        required=True,
        type=date.fromisoformat,
        help="YYYY-MM-DD, live until the end of that day UTC (at most 2 years)",
    )
    create.add_argument(
        "--endpoint",
        default=tokens.DEFAULT_ENDPOINT,
        help=f"the sharing server's URL (default {tokens.DEFAULT_ENDPOINT})",
    )
    create.add_argument("--out", required=True, help="profile file to write (never overwritten)")
    create.set_defaults(run=_create_token)

    listing = token_commands.add_parser("list", help="list tokens (never their secrets)")
    listing.add_argument("--sponsor", help="only this sponsor's tokens")
    listing.set_defaults(run=_list_tokens)

    revoke = token_commands.add_parser("revoke", help="revoke one token")
    revoke.add_argument("token_id", metavar="ID", help="token id, as in tokens list")
    revoke.set_defaults(run=_revoke_token)

    revoke_sponsor = token_commands.add_parser(
        "revoke-sponsor", help="revoke every live token of a sponsor (its access ends)"
    )
    revoke_sponsor.add_argument("sponsor", metavar="SPONSOR", help="sponsor id")
    revoke_sponsor.set_defaults(run=_revoke_sponsor)

    for sub in (create, revoke, revoke_sponsor):
        sub.add_argument("--by", default=getpass.getuser(), help="recorded as who did it")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m portal", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    commands.add_parser("demo-users", help="create the demo users (idempotent)").set_defaults(
        run=_demo_users
    )
    auditpack_command.add_parser(commands)
    db_command.add_parser(commands)
    user_commands = commands.add_parser("users", help="manage users").add_subparsers(
        dest="action", required=True
    )

    add = user_commands.add_parser("add", help="register a user (prompts for the password)")
    add.add_argument("username")
    add.add_argument("--name", required=True, help="display name")
    add.add_argument("--role", required=True, choices=users.ROLES)
    add.add_argument("--sponsor", help="sponsor id (sponsor_qa and auditor)")
    add.add_argument("--email")
    add.add_argument("--valid-from", help="YYYY-MM-DD, start of day UTC")
    add.add_argument("--valid-until", help="YYYY-MM-DD, exclusive, start of day UTC")
    add.set_defaults(run=_add)

    auditor = user_commands.add_parser("create-auditor", help="time-bounded auditor account")
    auditor.add_argument("username")
    auditor.add_argument("--name", required=True)
    auditor.add_argument("--sponsor", required=True)
    auditor.add_argument("--days", type=int, default=5, help="valid for this many days")
    auditor.add_argument("--valid-from", help="YYYY-MM-DD (default today)")
    auditor.add_argument("--email")
    auditor.set_defaults(run=_create_auditor)

    disable = user_commands.add_parser("disable", help="stop a user signing in")
    disable.add_argument("username")
    disable.set_defaults(run=_disable)

    reset = user_commands.add_parser("reset-password", help="set a new password (prompts)")
    reset.add_argument("username")
    reset.set_defaults(run=_reset)

    user_commands.add_parser("list", help="list users").set_defaults(run=_list)

    for sub in (add, reset):
        sub.add_argument("--password-stdin", action="store_true", help="read it from stdin")
    for sub in (add, auditor):
        sub.add_argument("--by", default=getpass.getuser(), help="recorded as created_by")
    _add_token_commands(commands)
    decisions_command.add_parsers(commands)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        outcome = args.run(args)
    except (
        users.UserError,
        tokens.TokenError,
        decisions.SignatureRefused,
        FileExistsError,
        db_command.DbCommandError,
        StoreUnavailable,
    ) as refused:
        print(f"error: {refused}", file=sys.stderr)
        return 2
    if isinstance(outcome, int):  # auditpack prints as it goes and returns its exit code
        return outcome
    print(outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
