"""`python -m portal auditpack ...`: a sponsor's audit pack from the command line.

The warehouse root is `--warehouse`, else the real warehouse under PORTAL_DATA_DIR, else the
demo warehouse when nothing real has been published. Every pack is written to the access log.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, date, datetime, time
from pathlib import Path

from portal import access_log, decisions
from portal.users import Principal
from warehouse import layout
from warehouse.auditpack import PackError, PackRequest, generate_pack
from warehouse.scope import ScopeError

# The access log's role for packs made on the server's command line, outside any sign-in.
CLI_ROLE = "command_line"


def default_root() -> Path | str:
    """The real warehouse once it has a snapshot (on S3: always), else the demo warehouse."""
    real = layout.real_warehouse()
    if isinstance(real, str) or layout.current_snapshot(real) is not None:
        return real
    return layout.demo_warehouse()


def auditpack(args: argparse.Namespace) -> int:
    root = layout.as_warehouse(args.warehouse) if args.warehouse else default_root()
    valid_until = datetime.combine(args.valid_until, time.min, UTC) if args.valid_until else None
    request = PackRequest(
        sponsor_id=args.sponsor,
        start=args.start,
        end=args.end,
        recipient=args.recipient,
        generated_by=args.generated_by,
        products=tuple(args.product),
        valid_until=valid_until,
    )
    try:
        pack = generate_pack(root, request, signed=decisions.signed_for)
    except (ScopeError, PackError) as refused:
        print(f"error: {refused}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(pack.zip_bytes)
    # The entry carries the pack's sponsor so that sponsor sees it in its own access log.
    who = Principal(args.generated_by, args.generated_by, CLI_ROLE, args.sponsor, None, None)
    access_log.record(
        "AUDIT_PACK", who, page="cli", filters=pack.manifest["parameters"],
        row_count=pack.row_count, content_hash=pack.content_hash, detail=out.name,
    )  # fmt: skip
    print(f"audit pack written to {out}")
    print(f"content hash {pack.content_hash}")
    print(f"{len(pack.manifest['sections'])} sections, {pack.row_count} rows, "
          f"snapshot {pack.manifest['snapshot']['run_id']}")  # fmt: skip
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    """The `auditpack` command, on `python -m portal` (and its alias `python -m warehouse`)."""
    pack = commands.add_parser("auditpack", help="write one sponsor's audit pack (ZIP)")
    pack.add_argument("--sponsor", required=True, help="sponsor id")
    pack.add_argument("--from", dest="start", required=True, type=date.fromisoformat,
                      help="first day of the period, YYYY-MM-DD")  # fmt: skip
    pack.add_argument("--to", dest="end", required=True, type=date.fromisoformat,
                      help="last day of the period, YYYY-MM-DD")  # fmt: skip
    pack.add_argument("--product", action="append", default=[],
                      help="product id (repeat for several; none: every product)")  # fmt: skip
    pack.add_argument("--recipient", required=True, help="whom the pack is prepared for")
    pack.add_argument("--out", required=True, help="path of the ZIP to write")
    pack.add_argument("--warehouse", help="warehouse root (default: see above)")
    pack.add_argument("--generated-by", default=getpass.getuser(),
                      help="who generates it, for the cover and the access log")  # fmt: skip
    pack.add_argument("--valid-until", type=date.fromisoformat,
                      help="expiry of the pack, YYYY-MM-DD (default: 30 days)")  # fmt: skip
    pack.set_defaults(run=auditpack)
