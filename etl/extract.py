"""Extract stage: copy every contract table from the system of record, every value as text.

Reading as text lets hostile values (a word in a date column, 2.5 in an integer column)
reach validation, where they are quarantined, instead of crashing a typed reader. A table
the contract marks optional (`Table.optional`) that the source does not have is read as no
rows; a present optional table must still have every column.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import polars as pl

from warehouse.contract import Table

# Watermarks come from our own manifest, but they are still checked before they reach SQL.
SQLITE_NULL = "\x00"
# Tables this large are read in rowid ranges on parallel connections, one per core.
PARALLEL_READ_MIN_ROWS = 1_000_000
PARALLEL_READS = 2
# ... in more ranges than connections, so each raw part (and its transient copy) is small.
RANGES_PER_LARGE_TABLE = 8
# Changed keys are fetched in queries of this many; past MAX_CHANGED_KEYS the table is read
# whole (as cheap by then, and it sees deleted rows too).
KEYS_PER_QUERY = 500
MAX_CHANGED_KEYS = 50_000
_WATERMARK = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}:\d{2}(\.\d+)?)?$")


class SourceError(Exception):
    """The source cannot be read as the contracts describe; the run must fail."""


@dataclass(frozen=True)
class Source:
    """Where the system of record is: a database URI or a folder of CSV exports."""

    kind: str  # "sql" or "csv"
    location: str  # URI for sql, folder path for csv

    @property
    def display(self) -> str:
        """The location with any password removed, safe for manifests and logs."""
        if self.kind != "sql":
            return self.location
        parts = urlsplit(self.location)
        if parts.password is None:
            return self.location
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))


def open_source(source: str | Path) -> Source:
    """Interpret a CLI/API source: SQLite file path, database URI, or CSV folder."""
    text = str(source)
    if "://" in text:
        return Source("sql", text)
    path = Path(text).resolve()
    if path.is_dir():
        return Source("csv", str(path))
    if path.is_file():
        return Source("sql", f"sqlite://{path}")
    raise SourceError(f"source {text} does not exist")


def _absent(table: Table) -> Iterator[pl.DataFrame]:
    """An optional table the source does not keep: no rows, every column text."""
    yield pl.DataFrame(schema={c: pl.String for c in table.column_names})


def _sql_table_exists(source: Source, table: Table) -> bool | None:
    """Whether the database has the table, from its catalogue; None when that cannot be read."""
    name = table.name.replace("'", "''")
    if source.location.startswith("sqlite:"):
        sql = (
            "SELECT count(*) AS n FROM sqlite_master "
            f"WHERE type IN ('table', 'view') AND lower(name) = '{name}'"
        )
    else:
        sql = (
            "SELECT count(*) AS n FROM information_schema.tables "
            f"WHERE lower(table_name) = '{name}'"
        )
    try:
        found = pl.read_database_uri(sql, source.location)
    except Exception:  # noqa: BLE001 - a database without that catalogue: unknown
        return None
    return bool(found.height and found.item(0, 0))


def _read_sql(
    source: Source, table: Table, watermark: str | None, keys: pl.Series | None
) -> Iterator[pl.DataFrame]:
    try:
        probe = pl.read_database_uri(f"SELECT * FROM {table.name} WHERE 1=0", source.location)
    except Exception as exc:  # noqa: BLE001 - any driver error means the table is unreadable
        # An optional table is taken as absent only when the catalogue says so: any other
        # failure (rights, a broken connection) must fail the run, not publish it empty.
        if table.optional and _sql_table_exists(source, table) is False:
            yield from _absent(table)
            return
        raise SourceError(f"table {table.name}: cannot be read from the source ({exc})") from exc
    present = {c.lower() for c in probe.columns}
    for column in table.column_names:
        if column.lower() not in present:
            raise SourceError(f"table {table.name}: source is missing column '{column}'")
    if source.location.startswith("sqlite:"):
        # connectorx types SQLite results from the first row and fails on an all-NULL
        # column; a NUL-character stand-in keeps every column text and is undone below.
        cast = "IFNULL(CAST({c} AS VARCHAR(4000)), char(0))"
    else:
        cast = "CAST({c} AS VARCHAR(4000))"
    columns = ", ".join(f"{cast.format(c=c)} AS {c}" for c in table.column_names)
    query = f"SELECT {columns} FROM {table.name} WHERE 1=1"
    if watermark is not None:
        # >= rather than >: rows written in the same second as the watermark are re-read
        # (the upsert by key makes that harmless) instead of being missed.
        query += f" AND updated_at >= '{watermark}'"
    # A day's changes are few: one query lets the source use its index on updated_at, where
    # rowid ranges would make it scan the whole table for them.
    if keys is not None:
        ranges = [f"{query} AND ({where})" for where in _key_filters(table.key, keys)]
    elif watermark is not None:
        ranges = [query]
    else:
        ranges = _rowid_ranges(source, table, query)
    with ThreadPoolExecutor(min(len(ranges), PARALLEL_READS)) as pool:
        # One connection per range; connectorx releases the GIL while it reads. Each part
        # is normalised as it arrives and its raw copy dropped, so only a few parts of the
        # raw text are alive at once.
        for part in pool.map(lambda sql: pl.read_database_uri(sql, source.location), ranges):
            yield part.select(_text(pl.col(c).cast(pl.String), c) for c in table.column_names)
            del part


def _key_filters(key: str, keys: pl.Series) -> list[str]:
    """SQL conditions (a few hundred keys each) matching every row of `keys` as extracted
    text; a missing key matches the rows with no key or a blank one."""
    values = keys.drop_nulls().unique().sort().to_list()
    quoted = ["'" + value.replace("'", "''") + "'" for value in values]
    filters = [
        f"{key} IN ({', '.join(quoted[start : start + KEYS_PER_QUERY])})"
        for start in range(0, len(quoted), KEYS_PER_QUERY)
    ]
    if keys.null_count():
        filters.append(f"{key} IS NULL OR TRIM({key}) = ''")
    return filters


def _text(value: pl.Expr, name: str) -> pl.Expr:
    """The NUL stand-in and blank text are both a missing value, in one pass."""
    return pl.when((value != SQLITE_NULL) & (value.str.strip_chars() != "")).then(value).alias(name)


def _rowid_ranges(source: Source, table: Table, query: str) -> list[str]:
    """The query split into consecutive SQLite rowid ranges, read in parallel threads and
    concatenated in order (casting every value to text in SQLite is
    single-threaded: 100 s for 10M batch events in one query).
    """
    if not source.location.startswith("sqlite:"):
        return [query]
    try:
        bounds = pl.read_database_uri(
            f"SELECT MIN(rowid) AS low, MAX(rowid) AS high FROM {table.name}", source.location
        )
    except Exception:  # noqa: BLE001 - a table without rowid is read in one query
        return [query]
    low, high = bounds.row(0)
    if low is None or high - low < PARALLEL_READ_MIN_ROWS:
        return [query]
    step = (high - low) // RANGES_PER_LARGE_TABLE + 1
    starts = range(low, high + 1, step)
    return [f"{query} AND rowid >= {start} AND rowid < {start + step}" for start in starts]


def _read_csv(
    source: Source, table: Table, watermark: str | None, keys: pl.Series | None
) -> Iterator[pl.DataFrame]:
    path = Path(source.location) / f"{table.name}.csv"
    if not path.is_file() and table.optional and not path.exists():
        yield from _absent(table)
        return
    if not path.is_file():
        raise SourceError(f"table {table.name}: CSV export {path.name} is missing")
    frame = pl.read_csv(path, infer_schema=False, raise_if_empty=False)
    for column in table.column_names:
        if column not in frame.columns:
            raise SourceError(f"table {table.name}: CSV export is missing column '{column}'")
    frame = frame.select(pl.col(c).cast(pl.String) for c in table.column_names)
    if watermark is not None:
        frame = frame.filter(pl.col("updated_at") >= watermark)
    # Blank text is a missing value, the same in CSV and SQL sources.
    frame = frame.select(
        pl.when(pl.col(c).str.strip_chars() != "").then(pl.col(c)).alias(c) for c in frame.columns
    )
    if keys is not None:
        frame = frame.filter(pl.col(table.key).is_in(keys.implode(), nulls_equal=True))
    yield frame


def read_table(
    source: Source, table: Table, watermark: str | None = None, keys: pl.Series | None = None
) -> Iterator[pl.DataFrame]:
    """One table as string parts in source order; with a watermark, only rows changed since;
    with keys (as extracted, a null for a missing one), every row holding one of them."""
    if watermark is not None and not _WATERMARK.fullmatch(watermark):
        raise SourceError(f"table {table.name}: previous watermark {watermark!r} is invalid")
    reader = _read_csv if source.kind == "csv" else _read_sql
    return reader(source, table, watermark, keys)


def read_changes(source: Source, table: Table, watermark: str | None) -> pl.DataFrame | None:
    """Every row of every key changed since the watermark, as the source holds them now: a
    second row under a known key is a duplicate to quarantine, not that row's update. None
    when the changes are too many to fetch by key (then the whole table is read again).
    """
    changed = pl.concat(list(read_table(source, table, watermark)), rechunk=False)
    if not changed.height:
        return changed
    keys = changed.get_column(table.key).unique()
    if keys.len() > MAX_CHANGED_KEYS:
        return None
    return pl.concat(list(read_table(source, table, keys=keys)), rechunk=False)


def merge_changes(
    previous: Iterable[pl.DataFrame], changes: pl.DataFrame, key: str
) -> Iterator[pl.DataFrame]:
    """Upsert changed rows by key into the previous extracted state (all strings), given
    slice by slice: its unchanged rows in their order, then the changes, so the whole
    previous state (2 GB of text on the large preset) is never in memory.
    """
    changed = changes.select(key).unique()
    for part in previous:
        yield part.join(changed, on=key, how="anti", nulls_equal=True)
        del part
    yield changes
