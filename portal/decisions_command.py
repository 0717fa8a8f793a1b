"""python -m portal signing grant|withdraw USER, python -m portal signatures verify,
python -m portal decisions export --since TIMESTAMP --out DIR."""

from __future__ import annotations

import argparse
import getpass
from datetime import UTC, datetime
from pathlib import Path

from portal import decisions


def _moment(text: str) -> datetime:
    """An ISO date or timestamp; naive ones are UTC."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _grant(args: argparse.Namespace) -> str:
    decisions.grant(args.username, args.by)
    return f"{args.username} may now sign decisions for their sponsor"


def _withdraw(args: argparse.Namespace) -> str:
    decisions.withdraw(args.username, args.by)
    return f"{args.username} may no longer sign decisions (signatures given stay on record)"


def _verify(args: argparse.Namespace) -> int:
    report = decisions.verify()
    if report.intact:
        print(f"decision chain intact: {report.rows} signed decision(s), every hash checked")
        return 0
    print(f"decision chain BROKEN: {len(report.problems)} problem(s) in {report.rows} row(s)")
    for problem in report.problems:
        print(f"  {problem}")
    return 1


def _export(args: argparse.Namespace) -> str:
    count, written = decisions.export_outbox(args.since, Path(args.out))
    return (
        f"{count} decision(s) in the outbox {args.out}: {written} file(s) written, "
        f"{2 * count - written} already there and identical"
    )


def add_parsers(commands: argparse._SubParsersAction) -> None:
    signing = commands.add_parser(
        "signing", help="who may sign decisions for their sponsor"
    ).add_subparsers(dest="action", required=True)
    for name, run, text in (
        ("grant", _grant, "let a sponsor QA user sign for its sponsor"),
        ("withdraw", _withdraw, "end a user's permission to sign"),
    ):
        sub = signing.add_parser(name, help=text)
        sub.add_argument("username")
        sub.add_argument("--by", default=getpass.getuser(), help="recorded as who did it")
        sub.set_defaults(run=run)

    signatures = commands.add_parser(
        "signatures", help="check the signed decisions"
    ).add_subparsers(dest="action", required=True)
    signatures.add_parser(
        "verify", help="recompute the hash chain; exit 1 and name each broken row"
    ).set_defaults(run=_verify)

    outbox = commands.add_parser("decisions", help="decisions for the CMO's QMS").add_subparsers(
        dest="action", required=True
    )
    export = outbox.add_parser(
        "export", help="one JSON and one CSV per decision (idempotent, resumable)"
    )
    export.add_argument("--since", type=_moment, help="ISO date or time, UTC when no zone")
    export.add_argument("--out", required=True, help="the outbox folder")
    export.set_defaults(run=_export)
