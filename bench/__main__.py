"""Measure the portal and write bench/results.md and bench/results.json (and, when they are
written into bench/, README's headline table: bench/headline.py):

    python -m bench [--preset tiny|demo|large] [--only NAMES] [--runs N] [--out DIR] [--strict]

Figures (names for --only): etl, incremental, pages, first-views, isolation, browser,
auditpack, server-concurrency, share, share-concurrency, s3-publish, replicas. Plants and
warehouses are cached under bench/work/ for the day.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from bench import headline, report
from bench.plants import WORK

NAMES = ("etl", "incremental", "pages", "first-views", "isolation", "browser", "auditpack",
         "server-concurrency", "share", "share-concurrency", "s3-publish", "replicas")  # fmt: skip
# Repeats per preset: tiny keeps CI's check of the runner short.
RUNS = {"tiny": 3, "demo": 20, "large": 20}
BROWSER_RUNS = {"tiny": 2, "demo": 20, "large": 20}  # p95 of 20 is their second slowest
# Users at once on a real server; then more, while page view p95 stays within 1 s; page
# views per user at each level (one user clicks three times as many). Tiny keeps CI short.
SERVER_LEVELS = {"tiny": (1, 4), "demo": (1, 5, 10, 20, 30, 50), "large": (1, 5, 10, 20, 30, 50)}
SERVER_MORE = {"tiny": (), "demo": (75, 100), "large": (75, 100)}
SERVER_VIEWS = {"tiny": 6, "demo": 24, "large": 24}
REPLICA_USERS = {"tiny": 4, "demo": 20, "large": 20}  # through nginx, 1 replica then 2
ISOLATION_SPONSORS = {"tiny": (5, 10, 20), "demo": (5, 50, 500), "large": (5, 50, 500)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--preset",
        choices=("tiny", "demo", "large"),
        default="large",
        help="large measures demo and large; demo and tiny measure demo only",
    )
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(NAMES)}")
    parser.add_argument("--runs", type=int, help="repeats per page (default by preset)")
    parser.add_argument(
        "--out", type=Path, default=report.HERE, help="folder for results.md and results.json"
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when a figure could not be measured (CI's check that the runner works)",
    )
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else set(NAMES)
    unknown = only - set(NAMES)
    if unknown:
        parser.error(f"unknown figures {sorted(unknown)}; choose from {', '.join(NAMES)}")
    # Pages read the portal store (access log, users) under the data root: keep it ours.
    os.environ["PORTAL_DATA_DIR"] = str(WORK / "data")
    from bench import figures

    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    started = time.perf_counter()
    results = figures.measure_all(args.preset, only, args.runs or RUNS[args.preset])
    args.out.mkdir(parents=True, exist_ok=True)
    written = report.write(results, command.strip(), args.out, merge=args.only is not None)
    if args.out.resolve() == report.HERE:
        # The committed results: README's headline table is rendered from them.
        headline.update(written)
    for figure in results:
        verdict = "met" if figure.met else ("not measured" if figure.value is None else "MISSED")
        print(f"{verdict:>12}  {figure.name} [{figure.preset}] {figure.value} {figure.unit} "
              f"ratio {figure.ratio} target {figure.target} {figure.note}")  # fmt: skip
    print(
        f"{len(results)} figures in {time.perf_counter() - started:.0f}s; "
        f"see {args.out / 'results.md'} and {args.out / 'results.json'}"
    )
    unmeasured = [figure.name for figure in results if figure.value is None]
    if args.strict and unmeasured:
        print(f"not measured: {', '.join(unmeasured)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
