"""`python -m etl.demo_source record-decisions`: the demo plant's own commands.

The plant itself is generated with `python -m etl demo-source`; what happens to it
afterwards, as the CMO's QMS would do it, is here (etl/demo_source/qms_import.py).
"""

from __future__ import annotations

import argparse
import sys

from etl.demo_source import qms_import


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m etl.demo_source", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    qms_import.add_parser(commands)
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
