"""`python -m warehouse share ...`: the sponsor data share (Delta Sharing protocol) over the
published snapshots; and `python -m warehouse auditpack ...`, the former name of
`python -m portal auditpack`, kept for one release so that scheduled jobs keep working."""

from __future__ import annotations

import argparse
import sys

from warehouse.layout import as_warehouse


def share(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m warehouse share",
        description="Serve each sponsor its own tables by the Delta Sharing protocol. Tokens: "
        "python -m portal tokens create ...",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8800, help="port (8800)")
    parser.add_argument(
        "--warehouse", type=as_warehouse,
        help="warehouse root, a directory or s3://bucket/prefix (default: PORTAL_WAREHOUSE, "
        "else the real warehouse once published, else the demo's)",
    )  # fmt: skip
    args = parser.parse_args(argv)

    import uvicorn

    from portal.auditpack_command import default_root
    from portal.share.server import create_app

    root = args.warehouse or default_root()
    print(f"Sharing {root} on http://{args.host}:{args.port}/delta-sharing", file=sys.stderr)
    uvicorn.run(create_app(root), host=args.host, port=args.port, log_level="warning")
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["share"]:
        return share(argv[1:])
    if argv[:1] == ["auditpack"]:
        from portal.__main__ import main as portal_main

        print("note: `python -m warehouse auditpack` is now `python -m portal auditpack`",
              file=sys.stderr)  # fmt: skip
        return portal_main(argv)
    print("usage: python -m warehouse share [--host H] [--port P] [--warehouse DIR]\n"
          "       (python -m portal auditpack ... for audit packs)", file=sys.stderr)  # fmt: skip
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
