"""`python -m etl run|demo-source`: the nightly job and the demo plant generator."""

from __future__ import annotations

import os

from etl import ALLOCATOR

# Before polars is imported, which reads them as it loads (etl.ALLOCATOR says why).
for _name, _value in ALLOCATOR.items():
    os.environ.setdefault(_name, _value)

import argparse  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402
from datetime import date, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

from etl.run import EtlError, RunResult, run_etl  # noqa: E402
from warehouse.layout import demo_source, demo_warehouse, real_warehouse  # noqa: E402
from warehouse.s3 import is_s3  # noqa: E402

TOP_REASONS = 10


def _progress(stream) -> Callable[[str], None]:
    """Interactive runs show the stage; cron runs get timestamped plain lines."""
    if stream.isatty():
        return lambda message: print(f"\r\033[K{message}", end="", file=stream, flush=True)
    return lambda message: print(f"{datetime.now():%Y-%m-%dT%H:%M:%S} {message}", file=stream)


def _summary(result: RunResult) -> str:
    lines = [
        f"published snapshot {result.run_id} ({result.mode}) in {result.seconds:.1f}s",
        f"{'table':<22}{'extracted':>12}{'published':>12}{'quarantined':>12}",
    ]
    for name, extracted in result.extracted.items():
        lines.append(
            f"{name:<22}{extracted:>12}{result.published[name]:>12}{result.quarantined[name]:>12}"
        )
    if result.reason_counts:
        lines.append("top quarantine reasons:")
        ranked = sorted(result.reason_counts.items(), key=lambda item: -item[1])
        lines += [f"{count:>10}  {reason}" for reason, count in ranked[:TOP_REASONS]]
    if result.masked:
        lines.append(
            f"free text naming another client, masked as [another client] in "
            f"{len(result.masked)} sponsor copies (fix the source text):"
        )
        lines += [
            f"  {m.table} {m.key} {m.column} in {m.partition}'s copy: {', '.join(m.kinds)}"
            for m in result.masked
        ]
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    source = args.source or demo_source()
    warehouse = args.warehouse
    if warehouse is None:
        is_demo = Path(str(source)).resolve() == demo_source()
        warehouse = demo_warehouse() if is_demo else real_warehouse()
    interactive = sys.stderr.isatty()
    try:
        target = warehouse if is_s3(warehouse) else Path(warehouse)
        result = run_etl(source, target, full=args.full, progress=_progress(sys.stderr))
    except EtlError as exc:
        if interactive:
            print(file=sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if interactive:
        print(file=sys.stderr)
    print(_summary(result))
    return 0


def _demo_source(args: argparse.Namespace) -> int:
    from etl import demo_source as generator

    out = Path(args.out) if args.out else demo_source()
    out.parent.mkdir(parents=True, exist_ok=True)
    as_of = date.fromisoformat(args.as_of) if args.as_of else None
    generator.generate(
        out, seed=args.seed, preset=args.preset, as_of=as_of, progress=_progress(sys.stderr)
    )
    print(f"demo plant written to {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m etl", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="extract, validate, transform and publish a snapshot")
    run.add_argument("--source", help="SQLite file, database URI or folder of CSV exports")
    run.add_argument(
        "--warehouse",
        help="warehouse root: a directory, or s3://bucket/prefix (credentials and endpoint from "
        "the standard AWS_* variables)",
    )
    run.add_argument("--full", action="store_true", help="rebuild from scratch")
    run.set_defaults(handler=_run)
    demo = commands.add_parser("demo-source", help="generate the synthetic demo plant")
    demo.add_argument("--out", help="SQLite file to write (default: the demo source)")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--preset", choices=("demo", "large"), default="demo")
    demo.add_argument("--as-of", help="YYYY-MM-DD the plant's data ends at (default today)")
    demo.set_defaults(handler=_demo_source)
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
