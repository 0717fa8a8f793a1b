"""Portal administration: python -m portal users add|disable|reset-password|list|create-auditor,
python -m portal demo-users, python -m portal auditpack."""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, date, datetime, time, timedelta

from portal import auditpack_command, users


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
    passwords = ", ".join(f"{name}/{users.demo_password(name)}" for name in created)
    return f"created {passwords}" if created else "demo users already exist"


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m portal", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    commands.add_parser("demo-users", help="create the demo users (idempotent)").set_defaults(
        run=_demo_users
    )
    auditpack_command.add_parser(commands)
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
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        outcome = args.run(args)
    except users.UserError as refused:
        print(f"error: {refused}", file=sys.stderr)
        return 2
    if isinstance(outcome, int):  # auditpack prints as it goes and returns its exit code
        return outcome
    print(outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
