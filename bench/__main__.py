"""`python -m bench [--preset tiny|demo|large] [--only NAMES] [--runs N]`: measure the
portal and write bench/results.md and bench/results.json.

Figures (names for --only): etl, incremental, pages, isolation, browser, auditpack,
concurrency. Plants and warehouses are cached under bench/work/ for the day.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from bench.plants import WORK

NAMES = ("etl", "incremental", "pages", "isolation", "browser", "auditpack", "concurrency")
# Repeats per preset: tiny keeps CI's check of the runner short.
RUNS = {"tiny": 3, "demo": 20, "large": 20}
BROWSER_RUNS = {"tiny": 2, "demo": 10, "large": 10}
SESSIONS = {"tiny": 4, "demo": 20, "large": 20}
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
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else set(NAMES)
    unknown = only - set(NAMES)
    if unknown:
        parser.error(f"unknown figures {sorted(unknown)}; choose from {', '.join(NAMES)}")
    # Pages read the portal store (access log, users) under the data root: keep it ours.
    os.environ["PORTAL_DATA_DIR"] = str(WORK / "data")
    from bench import figures, report

    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    started = time.perf_counter()
    results = figures.measure_all(args.preset, only, args.runs or RUNS[args.preset])
    report.write(results, command.strip(), merge=args.only is not None)
    for figure in results:
        verdict = "met" if figure.met else ("not measured" if figure.value is None else "MISSED")
        print(f"{verdict:>12}  {figure.name} [{figure.preset}] {figure.value} {figure.unit} "
              f"ratio {figure.ratio} target {figure.target} {figure.note}")  # fmt: skip
    print(
        f"{len(results)} figures in {time.perf_counter() - started:.0f}s; "
        "see bench/results.md and bench/results.json"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
