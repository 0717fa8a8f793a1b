"""ETL figures: full build against a bare copy (same driver), and one day's incremental run.

Each run happens in a child process so its peak memory (ru_maxrss) is its own.
"""

from __future__ import annotations

import compileall
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import polars as pl

from etl import ALLOCATOR
from etl.extract import PARALLEL_READS, open_source, rowid_ranges
from warehouse.contract import TABLES
from warehouse.layout import PARTITION_KEY
from warehouse.s3 import is_s3

ROOT = Path(__file__).resolve().parents[1]


def bare_copy(source: Path, out: Path) -> int:
    """Read every source table with the ETL's driver and write sponsor-partitioned Parquet.

    No validation, no transformation: tables with a sponsor_id column are split by it, the
    others are written whole. Tables of PARALLEL_READ_MIN_ROWS rows or more are read in
    rowid ranges on parallel connections, as the ETL reads them. Returns the rows read.
    """
    source_of = open_source(source)
    location = source_of.location
    shutil.rmtree(out, ignore_errors=True)
    rows = 0
    for table in TABLES:
        names = ", ".join(table.column_names)
        count = pl.read_database_uri(
            f"SELECT COUNT(*) AS n FROM (SELECT 1 FROM {table.name} LIMIT 1)", location
        ).item()
        if count == 0:  # an empty table (the optional decision_receipt): nothing to copy
            continue
        # As the ETL reads: a table of PARALLEL_READ_MIN_ROWS or more in its rowid ranges, on
        # parallel connections. (connectorx's own partitioning asks for the bounds and each
        # part through a subquery SQLite cannot bound by rowid: 11.3-13.0 s for the entries
        # of `large` against 7.9 s for these ranges, which made the floor look higher.)
        select = f"SELECT {names} FROM {table.name} WHERE 1=1"
        queries = [select + where for where in rowid_ranges(source_of, table)]
        with ThreadPoolExecutor(PARALLEL_READS) as pool:
            frame = pl.concat(pool.map(lambda sql: pl.read_database_uri(sql, location), queries))
        rows += frame.height
        if PARTITION_KEY in frame.columns and table.key != PARTITION_KEY:
            for (sponsor,), part in frame.partition_by(PARTITION_KEY, as_dict=True).items():
                target = out / table.name / f"{PARTITION_KEY}={sponsor}" / "part-0.parquet"
                target.parent.mkdir(parents=True, exist_ok=True)
                part.drop(PARTITION_KEY).write_parquet(target)
        else:
            target = out / table.name / "part-0.parquet"
            target.parent.mkdir(parents=True, exist_ok=True)
            frame.write_parquet(target)
    return rows


DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def settle(source: Path, *, drop: bool = True) -> bool:
    """Flush pending writes, drop the page cache where allowed (root) when `drop`, then read
    `source` once: a measured run neither waits for another's write-back, nor is the first
    to read the file from disk, nor reclaims pages others filled. Whether it was dropped.

    A page cache full of earlier runs' files slowed the bare copy from 11.1 s to 16.9 s on
    `large` and hardly moved the full build, so without the drop the ratio followed what the
    machine had done before the bench."""
    os.sync()
    dropped = False
    if drop:
        try:
            DROP_CACHES.write_text("3\n")
            dropped = True
        except OSError:  # not root, or a container that does not allow it
            pass
    with source.open("rb") as handle:
        while handle.read(1 << 24):
            pass
    return dropped


def _child(kind: str, source: str, target: str, full: bool) -> None:
    """Entry point in the child process: run one job, print its figures as JSON."""
    started = time.perf_counter()
    if kind == "etl":
        from etl.run import run_etl

        result = run_etl(Path(source), target if is_s3(target) else Path(target), full=full)
        rows = sum(result.extracted.values())
    else:
        rows = bare_copy(Path(source), Path(target))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "rows": rows, "peak_bytes": peak}))


@cache
def _compiled() -> None:
    """The code byte-compiled, as an installed release of it is: this machine sets
    PYTHONDONTWRITEBYTECODE, so each child compiled the ETL's modules from their source
    (0.05 s of a day's ~2 s run; an installed package's, polars' among them, are compiled)."""
    for folder in ("etl", "warehouse", "bench"):
        compileall.compile_dir(ROOT / folder, quiet=1)


def measure(
    kind: str, source: Path, target: Path | str, *, full: bool = True, env: dict | None = None
) -> dict:
    """Run one ETL ("etl") or bare copy ("bare") in a child process; seconds, rows, peak.
    `target` may be an s3:// warehouse (`env` then carries the store's AWS_* variables).
    Both run with the job's allocator settings (etl.ALLOCATOR), as `python -m etl` does."""
    _compiled()
    done = subprocess.run(
        [sys.executable, "-m", "bench.etl_bench", kind, str(source), str(target), str(full)],
        cwd=ROOT, capture_output=True, text=True, check=False,
        env=os.environ | ALLOCATOR | (env or {}),
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{kind} run failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "True")
