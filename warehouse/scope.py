"""Scoped DuckDB instances: the only way portal code reads the published warehouse.

A sponsor scope is a DuckDB instance that can physically read only that sponsor's partition
directory of each table (DESIGN.md, Read): `allowed_directories`, then
`enable_external_access=false`, then `lock_configuration=true`. On S3 (warehouse.s3_scope) it
holds the sponsor's tables, fetched with the sponsor's own identity, and reads no file at all.
Pages never see a path or a raw connection; they call named queries (warehouse.queries) with a
scope.
"""

from __future__ import annotations

import functools
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from warehouse import layout
from warehouse.contract import SITE_PARTITION, TABLES, is_safe_sponsor_id
from warehouse.s3 import is_s3


class ScopeError(Exception):
    """A scope cannot be opened; the message never names a path or another sponsor."""


class UnknownSponsor(ScopeError):
    """The snapshot holds nothing of this sponsor's (or the id is not one at all)."""

    def __init__(self) -> None:
        super().__init__("Unknown sponsor.")


class DataUnavailable(ScopeError):
    """The published data cannot be reached now (object storage does not answer)."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message or UNAVAILABLE)


UNAVAILABLE = (
    "The published data cannot be reached right now: the object store does not answer. "
    "Nothing was lost; try again in a minute."
)


class QueryError(Exception):
    """A named query failed; the message names the query, never a path."""


@dataclass(frozen=True)
class SnapshotInfo:
    run_id: str
    created_at: datetime
    path: Path | None  # the snapshot's directory (a local warehouse)
    location: str | None = None  # "s3://bucket/prefix" (a warehouse on S3: warehouse.s3_scope)


@functools.lru_cache(maxsize=16)
def _read_manifest(path: Path, mtime_ns: int, size: int) -> dict:
    """A parsed manifest, once per file version (it lists every file: MBs at 500 sponsors)."""
    return json.loads(path.read_bytes())  # UTF-8, whatever the locale


def _manifest(snapshot: Path) -> dict:
    # Snapshots are never rewritten in place; mtime and size still key the cache so a
    # replaced file is read again. Callers must not mutate the shared dict.
    path = snapshot / layout.MANIFEST
    stat = path.stat()
    return _read_manifest(path, stat.st_mtime_ns, stat.st_size)


def snapshot_info(warehouse_root: Path | str) -> SnapshotInfo | None:
    """The snapshot `current` points at, or None when nothing has been published yet."""
    if is_s3(warehouse_root):
        from warehouse import s3_scope

        return s3_scope.snapshot_info(str(warehouse_root))
    snapshot = layout.current_snapshot(Path(warehouse_root))
    if snapshot is None:
        return None
    manifest = _manifest(snapshot)
    return SnapshotInfo(
        run_id=manifest["run_id"],
        created_at=datetime.fromisoformat(manifest["created_at"]),
        path=snapshot,
    )


def sponsor_ids(warehouse_root: Path | str) -> list[str]:
    """Sponsors of the current snapshot, for CMO pickers (never call this for a sponsor)."""
    info = snapshot_info(warehouse_root)
    if info is None:
        return []
    if info.location is not None:
        from warehouse import s3_scope

        manifest = s3_scope.cmo_manifest(info)
    else:
        manifest = _manifest(info.path)
    ids = manifest.get("sponsors") or sorted(
        {m["sponsor_id"] for m in manifest["files"].values()} - {SITE_PARTITION}
    )
    return [s for s in ids if is_safe_sponsor_id(s)]


# DuckDB working memory per scope instance: a sponsor's partitions (about 200k batch events
# on the large preset) need a fraction of this; the site scope reads every sponsor's.
SPONSOR_SCOPE_MEMORY = "1GB"
SITE_SCOPE_MEMORY = "4GB"
# What one scope may hold in its memo: results of its own queries and what pages build from
# them. A snapshot never changes, so an entry is right until the scope itself is dropped.
MEMO_ENTRIES = 256
MEMO_BYTES = 64 << 20
MEMO_ENTRY_BYTES = 8 << 20  # larger results (a whole batch record export) are not kept


class Scope:
    """A confined, read-only DuckDB instance over one snapshot; one cursor per thread.

    It remembers its own query results and what pages build from them (`memo`): the memo
    lives inside the scope, so it holds one sponsor's data of one snapshot and nothing else,
    and a sponsor's rerun reuses it instead of scanning Parquet and rebuilding charts.
    """

    def __init__(
        self,
        snapshot: SnapshotInfo,
        sponsor_id: str | None,
        allowed: list[Path] | None = None,
        *,
        tables: Iterable[tuple[str, Any]] | None = None,
    ):
        """Over the Parquet files under `allowed` (a local snapshot), or over `tables` ((name,
        Arrow table) pairs fetched by warehouse.s3_scope), copied in: then no file at all."""
        self.snapshot = snapshot
        self.sponsor_id = sponsor_id  # None: every sponsor (CMO scopes)
        self._memo: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._memo_bytes = 0
        self._memo_lock = threading.Lock()
        self._local = threading.local()
        self._con = duckdb.connect(":memory:")
        # Trailing "/" confines to the directory itself: `sponsor_id=S1/` never admits S10.
        dirs = ", ".join(_sql_string(str(d) + "/") for d in allowed or [])
        self._con.execute(f"SET allowed_directories = [{dirs}]")
        # Each scope is its own DuckDB instance, whose default limit is 80% of the machine's
        # memory: with dozens of sessions' scopes in one server that bound means nothing.
        limit = SPONSOR_SCOPE_MEMORY if sponsor_id is not None else SITE_SCOPE_MEMORY
        self._con.execute(f"SET memory_limit = '{limit}'")
        # No query text may name a Python variable of the process as a table.
        self._con.execute("SET python_enable_replacements = false")
        for name, rows in tables or ():
            self._con.register("_loading", rows)
            self._con.execute(f"CREATE TABLE {name} AS SELECT * FROM _loading")
            self._con.unregister("_loading")
        self._con.execute("SET enable_external_access = false")
        self._con.execute("SET lock_configuration = true")
        if tables is not None:
            return
        for table in TABLES:
            glob = _table_glob(snapshot.path, table.name, sponsor_id)
            self._con.execute(
                f"CREATE VIEW {table.name} AS SELECT * FROM read_parquet("
                f"{_sql_string(glob)}, hive_partitioning = true, union_by_name = true)"
            )

    @property
    def label(self) -> str:
        return self.sponsor_id or "all sponsors"

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._local.cursor = self._con.cursor()
        return cursor

    def frame(self, name: str, sql: str, params: dict[str, Any] | None = None) -> pl.DataFrame:
        """Run one named query with bound parameters; errors never carry paths.

        Results are remembered per (sql, params): the snapshot under a scope never changes.
        """
        key: Hashable | None = ("frame", sql, _frozen(params or {}))
        try:
            hash(key)
        except TypeError:  # a parameter without a stable value (an array): not remembered
            key = None

        def run() -> pl.DataFrame:
            try:
                return self._cursor().sql(sql, params=params or None).pl()
            except duckdb.Error as exc:
                raise QueryError(f"query '{name}' failed ({type(exc).__name__})") from None

        if key is None:
            return run()
        # A clone shares the columns but not the frame object, so no caller can change the
        # remembered result in place.
        return self.memo(key, run, size=pl.DataFrame.estimated_size).clone()

    def memo(
        self, key: Hashable, build: Callable[[], Any], *, size: Callable[[Any], int] | None = None
    ) -> Any:
        """`build()` once per key for this scope, kept while it fits the memo's budget.

        `key` must name everything `build` reads besides this scope's data. Failures are not
        remembered. Callers must treat the value as read-only: other sessions of the same
        sponsor get the same object.
        """
        with self._memo_lock:
            hit = self._memo.get(key)
            if hit is not None:
                self._memo.move_to_end(key)
                return hit[0]
        value = build()
        nbytes = size(value) if size is not None else 0
        if nbytes > MEMO_ENTRY_BYTES:
            return value
        with self._memo_lock:
            if key not in self._memo:
                self._memo[key] = (value, nbytes)
                self._memo_bytes += nbytes
            while len(self._memo) > MEMO_ENTRIES or self._memo_bytes > MEMO_BYTES:
                _, (_, dropped) = self._memo.popitem(last=False)
                self._memo_bytes -= dropped
        return value

    def close(self) -> None:
        self._con.close()


def _frozen(value: Any) -> Hashable:
    """A hashable, order-preserving stand-in for query parameters (lists, dicts, dates)."""
    if isinstance(value, dict):
        return tuple((k, _frozen(v)) for k, v in sorted(value.items()))
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return (type(value).__name__, *(_frozen(v) for v in items))
    return (type(value).__name__, value)


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _table_glob(snapshot: Path, table: str, sponsor_id: str | None) -> str:
    if sponsor_id is None:
        return str(snapshot / table / f"{layout.PARTITION_KEY}=*" / "*.parquet")
    return str(layout.partition_dir(snapshot, table, sponsor_id) / "*.parquet")


def _require_snapshot(warehouse_root: Path | str) -> SnapshotInfo:
    info = snapshot_info(warehouse_root)
    if info is None:
        raise ScopeError("No data has been published yet.")
    return info


def open_sponsor_scope(warehouse_root: Path | str, sponsor_id: str) -> Scope:
    """A scope that can read only `sponsor_id`'s partitions of the current snapshot."""
    if not is_safe_sponsor_id(sponsor_id):
        raise UnknownSponsor()
    info = _require_snapshot(warehouse_root)
    if info.location is not None:
        from warehouse import s3_scope

        return s3_scope.open_sponsor_scope(info, sponsor_id)
    if sponsor_id not in sponsor_ids(warehouse_root):
        raise UnknownSponsor()
    allowed = [layout.partition_dir(info.path, t.name, sponsor_id) for t in TABLES]
    missing = [d for d in allowed if not d.is_dir()]
    if missing:
        raise ScopeError("The published snapshot is incomplete for this sponsor.")
    _check_partition_files(info, sponsor_id)
    scope = Scope(info, sponsor_id, allowed)
    _check_partition_labels(scope)
    return scope


def open_cmo_scope(warehouse_root: Path | str) -> Scope:
    """A scope over every sponsor of one warehouse root (CMO staff, or the demo plant)."""
    info = _require_snapshot(warehouse_root)
    if info.location is not None:
        from warehouse import s3_scope

        return s3_scope.open_cmo_scope(info)
    return Scope(info, None, [info.path])


def open_demo_scope(sponsor_id: str | None = None) -> Scope:
    """The BD demo scope: the demo warehouse root only, whatever else exists on disk."""
    root = layout.demo_warehouse()
    if sponsor_id is None:
        return open_cmo_scope(root)
    return open_sponsor_scope(root, sponsor_id)


def partition_files(info: SnapshotInfo, sponsor_id: str) -> dict[str, dict]:
    """The sponsor's files of the snapshot ("table/sponsor_id=S/part-0.parquet" -> manifest
    entry: table, rows, bytes, sha256), refusing a partition whose files are not exactly the
    ones the manifest lists for that sponsor, each of the size it was written with: a file
    copied in by hand, by a bad run or by an attacker is never read, whatever its label says."""
    if info.location is not None:
        from warehouse import s3_scope

        return s3_scope.partition_files(info, sponsor_id)
    listed = {
        name: entry
        for name, entry in _manifest(info.path)["files"].items()
        if entry.get("sponsor_id") == sponsor_id
    }
    present = {}
    for table in TABLES:
        directory = layout.partition_dir(info.path, table.name, sponsor_id)
        if not directory.is_dir():
            raise ScopeError("The published snapshot is incomplete for this sponsor.")
        for entry in directory.iterdir():
            name = f"{table.name}/{directory.name}/{entry.name}"
            present[name] = entry.stat().st_size if entry.is_file() else -1
    sizes_differ = any(
        "bytes" in listed[name] and listed[name]["bytes"] != size
        for name, size in present.items()
        if name in listed
    )
    if set(present) != set(listed) or sizes_differ:
        raise ScopeError("The published snapshot failed its integrity check for this sponsor.")
    return listed


def _check_partition_files(info: SnapshotInfo, sponsor_id: str) -> None:
    partition_files(info, sponsor_id)


def _check_partition_labels(scope: Scope) -> None:
    """Refuse a partition holding a file labelled for another sponsor (a bad ETL run)."""
    globs = [_table_glob(scope.snapshot.path, t.name, scope.sponsor_id) for t in TABLES]
    listed = ", ".join(_sql_string(g) for g in globs)
    labels = scope.frame(
        "partition labels",
        f"""
        SELECT f.file_name, decode(kv.value) AS sponsor
        FROM parquet_file_metadata([{listed}]) AS f
        LEFT JOIN (
            SELECT file_name, value FROM parquet_kv_metadata([{listed}])
            WHERE decode(key) = 'sponsor_id'
        ) AS kv USING (file_name)
        """,
    )
    if labels.height == 0 or (labels["sponsor"] != scope.sponsor_id).fill_null(True).any():
        scope.close()
        raise ScopeError("The published snapshot failed its integrity check for this sponsor.")
