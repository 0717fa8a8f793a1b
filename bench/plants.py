"""Plants and warehouses the benchmarks read: generated presets, and derived N-sponsor plants.

Everything lands under bench/work/ (git-ignored) and is reused between runs: a plant is
built once per (preset, as-of) and its warehouse once per plant.
"""

from __future__ import annotations

import json
import secrets
import shutil
import sqlite3
from pathlib import Path

import polars as pl

from etl.demo_source import generate
from etl.run import run_etl
from etl.validate import parents_first
from warehouse import clock
from warehouse.contract import TABLES, TABLES_BY_NAME
from warehouse.layout import MANIFEST, SOURCE_STATE, code_version, current_snapshot

WORK = Path(__file__).resolve().parent / "work"
TRASH = WORK / "trash"  # folders the ETL figures set aside, deleted once they are measured
# Plants end today, so the pages' "current state" and "last 30 days" views hold data; a plant
# is reused from bench/work/ for the rest of its day.
AS_OF = clock.today()
# Source preset of each bench preset: "tiny" is the demo plant measured with fewer repeats.
SOURCE_PRESET = {"tiny": "demo", "demo": "demo", "large": "large"}
MEASURED_SPONSOR = "NWT"  # the sponsor whose pages are timed (demo plant, item 4)
CLONED_SPONSOR = "CTB"  # whose rows are copied under new ids to add sponsors
CLONE_BATCHES = 20  # batches per added sponsor: other sponsors exist, the plant stays small


def plant(preset: str) -> Path:
    """The generated demo plant of a bench preset (built on first use)."""
    source = SOURCE_PRESET[preset]
    path = WORK / "plants" / f"{source}-{AS_OF}" / "plant.sqlite"
    if not path.is_file():
        partial = path.with_suffix(".partial")
        shutil.rmtree(partial.parent, ignore_errors=True)
        generate(partial, preset=source, as_of=AS_OF)
        partial.with_suffix(".ground_truth.json").rename(path.with_suffix(".ground_truth.json"))
        partial.rename(path)
    return path


def discard(path: Path) -> None:
    """Set `path` aside for `empty_trash`: renamed, not deleted, so no timed ETL run follows
    thousands of deletions. This machine's ext4 has no journal, and there a new inode skips
    every one freed in the last 5 minutes of a block being written (`recently_deleted`):
    the 1,836 partition folders of an incremental run on `large` took 0.74-0.81 s just after
    a warehouse was deleted, against 0.06-0.10 s with no deletion before it."""
    if path.exists():
        TRASH.mkdir(parents=True, exist_ok=True)
        path.rename(TRASH / f"{path.name}-{secrets.token_hex(4)}")


def empty_trash() -> None:
    shutil.rmtree(TRASH, ignore_errors=True)


def warehouse(source: Path, name: str) -> Path:
    """A published warehouse of `source` under bench/work/warehouses/<name>, built again when
    the live one was published by other code (an older snapshot may lack a newer table)."""
    root = WORK / "warehouses" / name
    live = current_snapshot(root)
    if live is None or json.loads((live / MANIFEST).read_text()).get("code_version") != (
        code_version()
    ):
        run_etl(source, root, full=True)
    return root


def fresh_copy(source: Path, name: str) -> Path:
    """A scratch copy of a plant that a benchmark may change (simulate_day)."""
    target = WORK / "scratch" / name / source.name
    shutil.rmtree(target.parent, ignore_errors=True)
    target.parent.mkdir(parents=True)
    shutil.copyfile(source, target)
    truth = source.with_suffix(".ground_truth.json")
    if truth.is_file():
        shutil.copyfile(truth, target.with_suffix(".ground_truth.json"))
    return target


def _owned_keys(base_warehouse: Path, sponsor: str) -> dict[str, set[str]]:
    """Per table, keys of rows published to `sponsor` alone (shared and SITE rows excluded)."""
    snapshot = current_snapshot(base_warehouse)
    owned: dict[str, set[str]] = {}
    for table in TABLES:
        if table.key == "sponsor_id":
            # Its files carry no key column: the partition is the sponsor row itself.
            owned[table.name] = {sponsor}
            continue
        files = snapshot / table.name / "sponsor_id=*" / "*.parquet"
        rows = (
            pl.scan_parquet(files, hive_partitioning=False, include_file_paths="__file")
            .select(
                table.key,
                pl.col("__file").str.extract(r"sponsor_id=([^/]+)/").alias("__partition"),
            )
            .collect()
        )
        per_key = rows.group_by(table.key).agg(pl.col("__partition").unique())
        mine = per_key.filter(pl.col("__partition").list.len() == 1).filter(
            pl.col("__partition").list.first() == sponsor
        )
        owned[table.name] = set(mine.get_column(table.key).to_list())
    return owned


def _clone_selection(base_warehouse: Path, sponsor: str, batches: int) -> dict[str, set[str]]:
    """Owned rows of `sponsor` trimmed to its first `batches` batches, parents first.

    A row stays when every owned record it references stays, so a clone has no orphans.
    """
    snapshot = current_snapshot(base_warehouse)
    owned = _owned_keys(base_warehouse, sponsor)
    selected: dict[str, set[str]] = {}
    for table in parents_first():
        source = pl.read_parquet(snapshot / SOURCE_STATE / f"{table.name}.parquet")
        rows = source.filter(pl.col(table.key).is_in(list(owned[table.name])))
        if table.name == "batch":
            rows = rows.sort(table.key).head(batches)
        for column in table.columns:
            if column.ref and column.ref != table.name:
                dropped = owned[column.ref] - selected[column.ref]
                rows = rows.filter(~pl.col(column.name).is_in(list(dropped)).fill_null(False))
        selected[table.name] = set(rows.get_column(table.key).to_list())
    return selected


def derived_plant(base_source: Path, base_warehouse: Path, sponsors: int) -> Path:
    """The base plant plus copies of CLONED_SPONSOR under new ids, `sponsors` in all.

    The measured sponsor's own rows are untouched, so its partitions hold the same data in
    every derived plant; only the number of other sponsors grows.
    """
    target = WORK / "plants" / f"{base_source.parent.name}-sponsors-{sponsors}" / "plant.sqlite"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    shutil.copyfile(base_source, partial)
    selection = _clone_selection(base_warehouse, CLONED_SPONSOR, CLONE_BATCHES)
    conn = sqlite3.connect(partial, isolation_level=None)  # one explicit transaction
    try:
        existing = conn.execute("SELECT count(*) FROM sponsor").fetchone()[0]
        conn.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;")
        for name, keys in selection.items():
            conn.execute(f"CREATE TEMP TABLE sel_{name} (k TEXT PRIMARY KEY)")
            conn.executemany(f"INSERT INTO temp.sel_{name} VALUES (?)", [(k,) for k in keys])
        statements = [_clone_statement(TABLES_BY_NAME[name]) for name in selection]
        conn.execute("BEGIN")
        for number in range(1, sponsors - existing + 1):
            suffix = f"-C{number:04d}"
            for statement in statements:
                conn.execute(statement, {"suffix": suffix})
        conn.commit()
    finally:
        conn.close()
    partial.rename(target)
    return target


def _clone_statement(table) -> str:
    """INSERT ... SELECT copying the selected rows with owned ids suffixed by :suffix."""
    columns = []
    for column in table.columns:
        if column.name == table.key:
            columns.append(f"{column.name} || :suffix")
        elif column.ref:
            columns.append(
                f"CASE WHEN {column.name} IN (SELECT k FROM temp.sel_{column.ref}) "
                f"THEN {column.name} || :suffix ELSE {column.name} END"
            )
        else:
            columns.append(column.name)
    names = ", ".join(table.column_names)
    return (
        f"INSERT INTO {table.name} ({names}) SELECT {', '.join(columns)} FROM {table.name} "
        f"WHERE {table.key} IN (SELECT k FROM temp.sel_{table.name})"
    )
