"""Extract stage: copy every contract table from the system of record, every value as text,
into the run's staged source state (`extract_all`): the whole source in a full run; in an
incremental run only the rows changed since the live snapshot's watermarks, merged with the
live extracted text (the entries kept as the live files plus a delta, etl.incremental).

Reading as text lets hostile values (a word in a date column, 2.5 in an integer column,
bytes that are no UTF-8 text) reach validation, where they are quarantined, instead of
crashing a typed reader. A table the contract marks optional (`Table.optional`) that the
source does not have is read as no rows; a present optional table must still have every
column.
"""

from __future__ import annotations

import csv
import ctypes
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager, nullcontext, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

import polars as pl

from etl.incremental import (
    EVENTS,
    MAX_DELTAS,
    SETTLED_STATUSES,
    SLICE_ROWS,
    EntriesWriter,
    Events,
    OpenRows,
    State,
    delta_name,
    digest,
    live_slices,
    open_name,
    parts_of,
)
from etl.publish import SOURCE_COMPRESSION, SourceStateWriter
from etl.validate import UNDECODABLE, WRITTEN_AT, latest_change
from warehouse.contract import TABLES, Table
from warehouse.layout import SOURCE_STATE

# Watermarks come from our own manifest, but they are still checked before they reach SQL.
SQLITE_NULL = "\x00"
# Tables this large (their rowids this far apart) are read in rowid ranges on parallel
# connections, one per core: on `large`, the four of 200-310k rows besides the 10M entries
# (a full build's extraction 0.1-0.6 s less in 2 alternated pairs, the bare copy's 0.06-0.3
# in 3, as it reads in the same ranges).
PARALLEL_READ_MIN_ROWS = 100_000
PARALLEL_READS = 2
# ... in more ranges than connections, so each raw part (and its transient copy) is small.
RANGES_PER_LARGE_TABLE = 8
# Changed keys are fetched in queries of this many; past MAX_CHANGED_KEYS the table is read
# whole (as cheap by then, and it sees deleted rows too).
KEYS_PER_QUERY = 500
MAX_CHANGED_KEYS = 50_000
SMALL_QUERY_ROWS = 100_000  # a change query's rows past which connectorx reads them
# Tables whose changes a day's run asks before the main thread takes them (_ChangesAhead).
CHANGES_AHEAD = 2
# An incremental run hands validation the text of the tables it wrote, up to this many rows
# in all, instead of validation reading the files back (a day's batches: 0.04 s).
HANDOVER_ROWS = 1_000_000
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


def _sqlite_file(source: Source) -> Path | None:
    """The file of a SQLite source given by path."""
    if not source.location.startswith("sqlite://"):
        return None
    path = Path(source.location.removeprefix("sqlite://"))
    return path if path.is_file() else None


# The SQLite file's one read-only connection while `extract_all` runs, in its thread only: a
# connection per query read the file's schema each time (0.45 ms, 71 queries a day's run).
_CONNECTION: ContextVar[tuple[Path, sqlite3.Connection] | None] = ContextVar(
    "sqlite_connection", default=None
)


# The tables whose text read while `extract_all` runs holds an UNDECODABLE value.
_UNDECODED: ContextVar[set[str] | None] = ContextVar("undecoded", default=None)


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


@contextmanager
def _noting(undecoded: set[str]) -> Iterator[None]:
    """The tables read meanwhile whose text is not all UTF-8 are added to `undecoded`."""
    token = _UNDECODED.set(undecoded)
    try:
        yield
    finally:
        _UNDECODED.reset(token)


@contextmanager
def _one_connection(source: Source) -> Iterator[None]:
    """`_small_query` asks a SQLite source through one connection meanwhile."""
    path = _sqlite_file(source)
    if path is None:
        yield
        return
    with closing(_connect(path)) as conn:
        token = _CONNECTION.set((path, conn))
        try:
            yield
        finally:
            _CONNECTION.reset(token)


def _small_query(source: Source, sql: str) -> pl.DataFrame:
    """A query of a few rows, every column text. On a SQLite file it is answered by Python's
    sqlite3: a connectorx query costs ~3 ms however few its rows, and a day's run asks ~80
    of them (0.25 s). The text is a full read's: SQLite's cast, or a REAL as polars writes
    it (`_text_frame`). Past SMALL_QUERY_ROWS rows (a backfill that touched a whole table)
    connectorx reads it after all: Python's rows would cost minutes and gigabytes."""
    path = _sqlite_file(source)
    if path is None:
        return pl.read_database_uri(sql, source.location)
    shared = _CONNECTION.get()
    connection = (
        nullcontext(shared[1]) if shared is not None and shared[0] == path
        else closing(_connect(path))
    )  # fmt: skip
    with connection as conn, closing(conn.execute(sql)) as cursor:
        # The cursor closed at once: no statement left open holds the file's read lock.
        rows = cursor.fetchmany(SMALL_QUERY_ROWS + 1)
        names = [column[0] for column in cursor.description]
    if len(rows) > SMALL_QUERY_ROWS:
        return pl.read_database_uri(sql, source.location)
    return _text_frame(names, rows, _as_str)


def _as_str(value: object) -> str | None:
    """A value of a query's row as text. A BLOB (which a REAL column, read as it is stored,
    hands over as bytes) is refused: `_read_sql` reads the rows again value by value, as a
    full read of them does (`_Decoder`), and gets the same text."""
    if isinstance(value, bytes):
        raise TypeError("a BLOB: to be read value by value")
    return None if value is None else str(value)


def _text_frame(
    names: list[str], rows: Sequence[Sequence[object]], text: Callable[[object], str | None]
) -> pl.DataFrame:
    """Rows Python's sqlite3 gave as text columns: a float (a REAL column's value) as polars
    writes it, as a full read makes its typed value text (`_as_text`); each other value as
    `text` makes it. SQLite's own text of a REAL has 15 significant digits, and its releases
    differ in the last (Python's 3.40 and connectorx's 3.50: 613 of 300k random doubles)."""
    columns = list(zip(*rows, strict=True)) or [() for _ in names]
    frame = []
    for name, values in zip(names, columns, strict=True):
        texts = [None if isinstance(value, float) else text(value) for value in values]
        at = [number for number, value in enumerate(values) if isinstance(value, float)]
        if at:
            floats = pl.Series([values[number] for number in at], dtype=pl.Float64)
            for number, written in zip(at, floats.cast(pl.String), strict=True):
                texts[number] = written
        frame.append(pl.Series(name, texts, pl.String))
    return pl.DataFrame(frame)


class _Decoder:
    """Text some of which is not UTF-8 (which connectorx, polars' CSV reader and Python's
    sqlite3 rows refuse), value by value: one that is not UTF-8 becomes UNDECODABLE and its
    bytes, each byte that is not UTF-8 as \\xNN; `marked` says whether one was. Also the
    rows where a REAL column holds text or a BLOB, which the driver refuses as doubles."""

    def __init__(self) -> None:
        self.marked = False

    def text(self, value: object) -> str | None:
        if not isinstance(value, bytes):
            return None if value is None else str(value)
        try:
            return value.decode()
        except UnicodeDecodeError:
            self.marked = True
            return UNDECODABLE + value.decode(errors="backslashreplace")

    def frame(self, names: list[str], rows: Iterable[Sequence[object]]) -> pl.DataFrame:
        return _text_frame(names, list(rows), self.text)

    def query(self, path: Path, sql: str) -> pl.DataFrame:
        """The rows of `sql` over a SQLite file, a slice of rows at a time."""
        with closing(_connect(path)) as conn:
            conn.text_factory = bytes
            with closing(conn.execute(sql)) as cursor:
                names = [column[0] for column in cursor.description]
                frames = [self.frame(names, [])]
                while rows := cursor.fetchmany(SMALL_QUERY_ROWS):
                    frames.append(self.frame(names, rows))
        return pl.concat(frames)

    def csv(self, path: Path) -> pl.DataFrame:
        """A CSV export, header first; its bytes that are not UTF-8 kept as they are."""
        with path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as handle:
            rows = csv.reader(handle)
            names = next(rows, [])
            return self.frame(
                names,
                ([value.encode(errors="surrogateescape") for value in row] for row in rows),
            )


def _cast(source: Source, column: str) -> str:
    if source.location.startswith("sqlite:"):
        # connectorx types SQLite results from the first row and fails on an all-NULL
        # column; a NUL-character stand-in keeps every column text and is undone below.
        return f"IFNULL(CAST({column} AS VARCHAR(4000)), char(0)) AS {column}"
    return f"CAST({column} AS VARCHAR(4000)) AS {column}"


# Declared types whose values connectorx reads as SQLite stores them: a text, an integer, a
# double (or NULL), each made text by polars (`_as_text`). Another value in such a column (a
# BLOB, text in an INTEGER column) fails the read, and `_read_sql` reads the range cast, or
# value by value where a REAL column holds it: a REAL is never cast, on any path
# (`_text_frame` says why). Casting every value cost ~2 s of CPU over the 10M entries of
# `large`, their `seq` ~1 s more, and the REALs of its 309k test results 0.3 s.
_READ_AS_STORED = frozenset({"TEXT", "INTEGER", "REAL"})


def _declared(source: Source, table: Table) -> dict[str, str]:
    """The table's columns (lower case) and their declared types (upper case) in a SQLite
    source; nothing for another."""
    if not source.location.startswith("sqlite:"):
        return {}
    name = table.name.replace("'", "''")
    declared = _small_query(source, f"SELECT name, type FROM pragma_table_info('{name}')")
    return {
        column.lower(): kind.strip().upper()
        for column, kind in declared.iter_rows()
        if kind is not None
    }


def _select(source: Source, table: Table, bare: Callable[[str], bool]) -> str:
    """A query of the table's columns, each cast to text but those `bare` takes (lower case)
    as they are stored, named as the contract names them (SQLite names a bare column as its
    table declares it)."""
    columns = ", ".join(
        f"{c} AS {c}" if bare(c.lower()) else _cast(source, c) for c in table.column_names
    )
    return f"SELECT {columns} FROM {table.name} WHERE 1=1"


def _read_sql(
    source: Source, table: Table, watermark: str | None, keys: pl.Series | None
) -> Iterator[pl.DataFrame]:
    declared = _declared(source, table)
    query = _select(source, table, lambda column: declared.get(column) == "REAL")
    found, path = _UNDECODED.get(), _sqlite_file(source)

    def decoded(sql: str, error: Exception) -> pl.DataFrame:
        """`sql` read again value by value where the driver failed (_Decoder)."""
        if path is None:
            raise error
        decoder = _Decoder()
        frame = decoder.query(path, sql)
        if decoder.marked and found is not None:
            found.add(table.name)
        return frame

    def asked(sql: str) -> pl.DataFrame:
        try:
            return _small_query(source, sql)
        except Exception as exc:  # noqa: BLE001 - text that is not UTF-8, or the probe says
            return decoded(sql, exc)

    if watermark is not None:
        query += f" AND {_changed_sql(source, watermark)}"
    if watermark is not None or keys is not None:
        # A day's changes are few: one query lets the source use its index on updated_at,
        # where rowid ranges would make it scan the whole table for them. Asked straight
        # away (36 tables' probes cost a day's run 0.05 s); why it failed is asked after.
        ranges = [query]
        if keys is not None:
            ranges = [f"{query} AND ({where})" for where in _key_filters(table.key, keys)]
        try:
            parts = [asked(sql) for sql in ranges]
        except Exception as exc:  # noqa: BLE001 - the probe below says why, or this does
            absent = _probe(source, table)
            if absent:
                yield from absent
                return
            raise SourceError(
                f"table {table.name}: cannot be read from the source ({exc})"
            ) from exc
        for part in parts:
            yield _as_text(part, table.column_names)
        return
    absent = _probe(source, table)
    if absent:
        yield from absent
        return
    head = _select(source, table, lambda column: declared.get(column) in _READ_AS_STORED)

    def read(where: str) -> pl.DataFrame:
        if head != query:
            try:
                return pl.read_database_uri(head + where, source.location)
            except Exception:  # noqa: BLE001 - a value of another type: the range cast
                pass
        try:
            return pl.read_database_uri(query + where, source.location)
        except Exception as exc:  # noqa: BLE001 - text that is not UTF-8: value by value
            return decoded(query + where, exc)

    ranges = rowid_ranges(source, table)
    with ThreadPoolExecutor(min(len(ranges), PARALLEL_READS)) as pool:
        # One connection per range; connectorx releases the GIL while it reads. Each part
        # is normalised as it arrives and its raw copy dropped, so only a few parts of the
        # raw text are alive at once.
        for part in pool.map(read, ranges):
            yield _as_text(part, table.column_names)
            del part


def _probe(source: Source, table: Table) -> list[pl.DataFrame]:
    """An optional table the catalogue says is absent: its empty frame (in a list); else
    nothing, or SourceError where the table cannot be read or lacks a column."""
    try:
        probe = _small_query(source, f"SELECT * FROM {table.name} WHERE 1=0")
    except Exception as exc:  # noqa: BLE001 - any driver error means the table is unreadable
        # An optional table is taken as absent only when the catalogue says so: any other
        # failure (rights, a broken connection) must fail the run, not publish it empty.
        if table.optional and _sql_table_exists(source, table) is False:
            return list(_absent(table))
        raise SourceError(f"table {table.name}: cannot be read from the source ({exc})") from exc
    present = {c.lower() for c in probe.columns}
    for column in table.column_names:
        if column.lower() not in present:
            raise SourceError(f"table {table.name}: source is missing column '{column}'")
    return []


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


# The NUL stand-in and blank text are both a missing value, in one pass over each column;
# one expression for every column (built per column, each query's took 2 ms). Blank: no
# character outside White_Space (the regex's \s, what strip_chars() strips), found without
# making the stripped copy of every value (0.8 s of CPU less over the 10M entries). A value
# that starts with a printable ASCII character other than a space is neither: two byte-wise
# comparisons settle it, and only the other values are searched (0.26 -> 0.18 s of CPU per
# 1.2M entries).
def _printable(column: pl.Expr) -> pl.Expr:
    return (column >= "!") & (column < "\x7f")


def _missing_as_null(column: pl.Expr) -> pl.Expr:
    printable = _printable(column)
    other = pl.when(~printable).then(column)
    return pl.when(printable | ((other != SQLITE_NULL) & other.str.contains(r"[^\s]"))).then(column)


_MISSING_AS_NULL = _missing_as_null(pl.all())
# Whether each column's every value is one such: then the column holds neither, and is kept
# as it is (most are: ids, codes, date-times). The check alone costs half the expression's
# comparisons, and no column is rebuilt (0.21 -> 0.09 s of CPU per 1.2M entries).
_ALL_PRINTABLE = _printable(pl.all()).all()


# The characters polars' strip_chars() strips (Rust's White_Space): a value of only these
# is blank. Python's str.strip() strips U+001C-U+001F too.
_WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
_WHITESPACE += "\u2028\u2029\u202f\u205f\u3000"
# Parts of at most this many values are made text in Python: the expression costs ~0.9 ms
# whatever the rows, and a day's run asks ~70 small queries (0.06 s); Python, 0.06 ms.
_PYTHON_VALUES = 20_000


def _as_text(part: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """A part as read, as the table's `columns` in order, all text, no blank value."""
    text = part.select(pl.col(columns).cast(pl.String))
    if text.height * text.width > _PYTHON_VALUES:
        clean = text.select(_ALL_PRINTABLE).row(0)
        others = [name for name, ok in zip(text.columns, clean, strict=True) if not ok]
        return text.with_columns(_missing_as_null(pl.col(others))) if others else text
    rows = [
        tuple(
            None if value is None or value == SQLITE_NULL or not value.strip(_WHITESPACE)
            else value
            for value in row
        )
        for row in text.iter_rows()
    ]  # fmt: skip
    return pl.DataFrame(rows, schema=text.schema, orient="row")


def rowid_ranges(source: Source, table: Table) -> list[str]:
    """Conditions that split a query of the table into consecutive SQLite rowid ranges,
    read in parallel threads and concatenated in order (casting every value to text in
    SQLite is single-threaded: 100 s for 10M batch events in one query); one empty
    condition where the table is read in one query.
    """
    if not source.location.startswith("sqlite:"):
        return [""]
    try:
        # One subquery each: SQLite finds a lone MIN or MAX at an end of the b-tree, but
        # scans the table for both in one query (0.7 s over 10M batch events).
        bounds = pl.read_database_uri(
            f"SELECT (SELECT MIN(rowid) FROM {table.name}) AS low, "
            f"(SELECT MAX(rowid) FROM {table.name}) AS high",
            source.location,
        )
    except Exception:  # noqa: BLE001 - a table without rowid is read in one query
        return [""]
    low, high = bounds.row(0)
    if low is None or high - low < PARALLEL_READ_MIN_ROWS:
        return [""]
    step = (high - low) // RANGES_PER_LARGE_TABLE + 1
    starts = range(low, high + 1, step)
    return [f" AND rowid >= {start} AND rowid < {start + step}" for start in starts]


def _read_csv(
    source: Source, table: Table, watermark: str | None, keys: pl.Series | None
) -> Iterator[pl.DataFrame]:
    path = Path(source.location) / f"{table.name}.csv"
    if not path.is_file() and table.optional and not path.exists():
        yield from _absent(table)
        return
    if not path.is_file():
        raise SourceError(f"table {table.name}: CSV export {path.name} is missing")
    try:
        frame = pl.read_csv(path, infer_schema=False, raise_if_empty=False)
    except pl.exceptions.ComputeError as exc:
        frame = _undecodable_csv(path, table, exc)
    for column in table.column_names:
        if column not in frame.columns:
            raise SourceError(f"table {table.name}: CSV export is missing column '{column}'")
    frame = frame.select(pl.col(c).cast(pl.String) for c in table.column_names)
    if watermark is not None:
        frame = frame.filter(_changed_since(source, pl.col("updated_at"), watermark))
    # Blank text is a missing value, the same in CSV and SQL sources.
    frame = frame.select(
        pl.when(pl.col(c).str.strip_chars() != "").then(pl.col(c)).alias(c) for c in frame.columns
    )
    if keys is not None:
        frame = frame.filter(pl.col(table.key).is_in(keys.implode(), nulls_equal=True))
    yield frame


def _undecodable_csv(path: Path, table: Table, error: Exception) -> pl.DataFrame:
    """A CSV export polars refused, read value by value where that was for text that is not
    UTF-8 (_Decoder); else polars' error stands."""
    decoder = _Decoder()
    try:
        frame = decoder.csv(path)
    except Exception:  # noqa: BLE001 - the file is unreadable for another reason
        raise error from None
    if not decoder.marked:
        raise error
    found = _UNDECODED.get()
    if found is not None:
        found.add(table.name)
    return frame


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
    # A key that is not UTF-8 text cannot be asked for: its rows are those read.
    unreadable = pl.col(table.key).str.starts_with(UNDECODABLE).fill_null(False)
    if not keys.to_frame().select(unreadable.any()).item():
        return pl.concat(list(read_table(source, table, keys=keys)), rechunk=False)
    asked = keys.to_frame().filter(~unreadable).get_column(table.key)
    kept = [changed.filter(unreadable)]
    return pl.concat([*read_table(source, table, keys=asked), *kept], rechunk=False)


def merge_changes(
    previous: Iterable[pl.DataFrame], changes: pl.DataFrame, key: str
) -> Iterator[pl.DataFrame]:
    """Upsert changed rows by key into the previous extracted state (all strings), given
    slice by slice: its unchanged rows in their order, then the changes (the state's writer
    holds one table's text at a time, never its raw copy beside it).
    """
    changed = changes.select(key).unique()
    for part in previous:
        yield part.join(changed, on=key, how="anti", nulls_equal=True)
        del part
    yield changes


@dataclass
class Extracted:
    """What the run needs of one extracted table once its text is on disk."""

    rows: int = 0
    watermark: str | None = None  # latest updated_at text, as in the source
    latest: datetime | None = None  # latest parseable updated_at
    unchanged: bool = False  # the live snapshot's extracted text, kept as it was
    reread: str | None = None  # digest of the rows the next run reads again (_reread)
    # Merged from the live text and the day's changes: the changed rows' keys (a null: the
    # rows without a key), which validation judges again (etl.validate.Reuse.changed).
    changed: pl.Series | None = field(default=None, repr=False)
    # The text written to the source state, kept for validation (HANDOVER_ROWS); else None.
    text: pl.DataFrame | None = field(default=None, repr=False)
    undecodable: bool = False  # its text may hold an UNDECODABLE value (validation checks)

    def due(self, now: datetime) -> datetime | None:
        """The table's latest change no later than `now`: `latest`, or where that is ahead
        (a device's clock runs days ahead), the watermark, the latest date-time text no
        later than the run's clock (a value written in another form is not one of its
        candidates). Left out, the table's changes before it had been too: a weekend's
        entries were "in the future" of an as-of taken from the other tables alone."""
        if self.latest is None or self.latest <= now:
            return self.latest
        return None if self.watermark is None else datetime.fromisoformat(self.watermark)

    def add(self, part: pl.DataFrame, ceiling: str, latest: bool = True) -> None:
        """Count a part of the table's text, and its updated_at (parsed only if `latest`);
        the watermark is no later than `ceiling`, the run's clock (`watermark_of`)."""
        self.rows += part.height
        mark = watermark_of(part.get_column("updated_at"), ceiling) if part.height else None
        if mark is not None and (self.watermark is None or mark > self.watermark):
            self.watermark = mark
        value = latest_change(part) if latest else None
        if value is not None and (self.latest is None or value > self.latest):
            self.latest = value


def watermark_of(updated_at: pl.Series, ceiling: str) -> str | None:
    """The latest updated_at text a later run may ask `>=` of: one written as a date-time
    (_WATERMARK) and no later than `ceiling`. A future or malformed value (which validation
    quarantines) would make every later run miss the rows changed before it, or fail on it."""
    mark = updated_at.max()
    if mark is None or _usable(mark, ceiling):
        return mark  # the common case: the latest text is a date-time already past
    usable = updated_at.str.contains(_WATERMARK.pattern) & (
        updated_at.str.replace(" ", "T", literal=True, n=1) <= ceiling
    )
    return updated_at.filter(usable).max()


def _usable(mark: str, ceiling: str) -> bool:
    return bool(_WATERMARK.fullmatch(mark)) and _iso(mark) <= ceiling


def _iso(mark: str) -> str:
    """A date-time text with its date and time parted by "T", as the ceiling's are."""
    return mark.replace(" ", "T", 1)


# A date-time as our sources write it, a fraction of a second allowed: text that sorts as
# its time does (with one separator).
_WRITTEN_AS_TIME = WRITTEN_AT.removesuffix("$") + r"(\.[0-9]+)?$"


# Text below every date-time of our years: blank, led by a space or by a 0. Not "0": SQLite
# takes that for the number 0 in a column declared DATETIME (numeric affinity), and then no
# text is below it.
_BELOW_DATES = "0:"


def _text_stamps(source: Source) -> bool:
    """Whether the source holds updated_at as text as it was written (a SQLite file, whose
    column holds whatever it is given, or a CSV export); a database's may be typed."""
    return source.kind == "csv" or source.location.startswith("sqlite:")


def _since(watermark: str) -> tuple[str, str, str]:
    """Text bounds of the times from `watermark` on: from it written with "T", and from it
    written with a space up to the end of its day's such text ("2026-12-07 10:00:00" sorts
    below "2026-12-07T09:00:00", and is later)."""
    return _iso(watermark), watermark.replace("T", " ", 1), f"{watermark[:10]}T"


def _changed_sql(source: Source, watermark: str) -> str:
    """The condition on updated_at of the rows a run reads after `watermark`: those written
    since (>=: a row of the watermark's second is read again, harmless, instead of missed),
    and on a SQLite file those whose updated_at is missing or sorts below `_BELOW_DATES`
    (blank, led by a space): such a row sorts below every watermark, and a full build judges
    it as it stands now. Each term is a range of the source's index on updated_at. A database's
    column may be typed (a timestamp compares with no other text): missing is asked there."""
    if not _text_stamps(source):
        return f"(updated_at >= '{watermark}' OR updated_at IS NULL)"
    iso, spaced, end = _since(watermark)
    return (
        f"(updated_at >= '{iso}' OR (updated_at >= '{spaced}' AND updated_at < '{end}') "
        f"OR updated_at IS NULL OR updated_at < '{_BELOW_DATES}')"
    )


def _changed_since(source: Source, updated_at: pl.Expr, watermark: str) -> pl.Expr:
    """`_changed_sql` over the text of a table as extracted (or a CSV export's, whose every
    row is read anyway: there also every row whose updated_at is not written as a date-time,
    which a full build judges as it stands now). Blank text is missing there."""
    if not _text_stamps(source):
        return (updated_at >= watermark) | updated_at.is_null()
    iso, spaced, end = _since(watermark)
    changed = (
        (updated_at >= iso)
        | ((updated_at >= spaced) & (updated_at < end))
        | updated_at.is_null()
        | (updated_at < _BELOW_DATES)
    )
    if source.kind == "csv":
        changed |= ~updated_at.str.contains(_WRITTEN_AS_TIME)
    return changed


class _Known(NamedTuple):
    value: datetime | None


def _merged_latest(changes: pl.DataFrame, state: State | None, name: str) -> _Known | None:
    """Latest parseable updated_at of a table merged from its live rows and `changes`, where
    the changes answer it: no live row is later than the live run's latest (`state`), so
    changes as late or later hold it. None where the live rows must be parsed (the changes
    are older: one may have replaced the latest row)."""
    if state is None or name not in state.latest:
        return None
    before, changed = state.latest[name], latest_change(changes)
    if before is None or (changed is not None and changed >= before):
        return _Known(changed)
    return None


def extract_all(
    origin: Source,
    staging: Path,
    previous: tuple[dict, Path] | None,
    state: State | None,
    run_id: str,
    note: Callable[[str], None],
    now: datetime,
) -> tuple[dict[str, Extracted], Events]:
    """Extract every table into the staging source state, one table's text in memory at a
    time; incremental when the live snapshot's manifest and state folder are given. The
    entries of a delta run are kept as the live files plus this run's changes (see
    etl.incremental); every other table is merged into one file.
    """
    facts: dict[str, Extracted] = {}
    folder = staging / SOURCE_STATE
    events = Events(files=[folder / f"{EVENTS}.parquet"])
    # Batches the day changed (parents come first): their entries are judged again.
    changed_batches = pl.Series("batch_id", [], pl.String)
    handover = HANDOVER_ROWS
    statuses: list[pl.DataFrame] = []  # the batches' extracted text, when read (_open_batches)
    # A table's file is written by a thread of its own while the next tables are read
    # (their queries and merges hold the main thread: a day's 15 written tables cost it
    # 0.05 s); the entries of a full build are written at once, so that their 1.3 GB of
    # text (on `large`) is gone before the next table's is read.
    written: list[tuple[Extracted, Future[pl.DataFrame | None]]] = []
    ceiling = now.strftime("%Y-%m-%dT%H:%M:%S")  # no watermark is later (watermark_of)
    undecoded: set[str] = set()  # the tables whose text read holds an UNDECODABLE value
    ahead = None if previous is None else _ChangesAhead(origin, previous[0], undecoded)
    with (
        _noting(undecoded),
        _one_connection(origin),
        ThreadPoolExecutor(1, thread_name_prefix="source") as writes,
        ahead or nullcontext(),
    ):
        for number, table in enumerate(TABLES, start=1):
            seen = facts[table.name] = Extracted()
            known: _Known | None = None  # the table's latest change, where known unparsed
            if previous is None:
                parts = read_table(origin, table)
            else:
                assert ahead is not None
                manifest, before = previous
                mark = ahead.marks[table.name]
                changes = ahead.changes(table)
                # Built on the live text (kept, merged or beside it): its values that are
                # not UTF-8 stay.
                seen.undecodable = (
                    changes is not None and state is not None and (table.name in state.undecodable)
                )
                if changes is None:  # too many to fetch by key: the table is read again
                    parts = read_table(origin, table)
                elif table.name == EVENTS:
                    events = _delta_events(state, before, folder, run_id, changes, changed_batches)
                if changes is not None and events.changes is not None and table.name == EVENTS:
                    seen.add(changes, ceiling)
                    seen.rows = events.rows(manifest["tables"][EVENTS]["extracted"])
                    seen.watermark = max(filter(None, (mark, seen.watermark)), default=None)
                    seen.latest = _latest_entry(events, seen.latest)
                    note(f"extract {number}/{len(TABLES)} {table.name}: {changes.height} changed")
                    continue
                if (
                    changes is not None
                    and _as_live(
                        changes,
                        parts_of(before, table.name),
                        table.key,
                        state.reread.get(table.name) if state else None,
                    )
                    and _keep_unchanged(table.name, manifest, before, folder, seen, state)
                ):
                    # Rows ahead of the live run's clock are read again every day (above its
                    # watermark): one now due is no change, but the watermark's, as a full
                    # build's is (Extracted.due).
                    due = watermark_of(changes.get_column("updated_at"), ceiling)
                    seen.watermark = max(
                        filter(None, (seen.watermark, due)), key=_iso, default=None
                    )
                    note(f"extract {number}/{len(TABLES)} {table.name}: unchanged")
                    continue
                if changes is not None:
                    earlier = parts_of(before, table.name)
                    parts = merge_changes(live_slices(earlier, table.key), changes, table.key)
                    # Parsing every live row's updated_at took 0.03 s of a day's run on
                    # `large`: the day's changes are its latest rows.
                    known = _merged_latest(changes, state, table.name)
                    seen.changed = changes.get_column(table.key).unique()
                if table.name == "batch" and changes is not None:
                    changed_batches = changes.get_column(table.key)
                del changes
            if table.name == EVENTS:
                writer = EntriesWriter(staging, _open_batches(statuses, folder))
            else:
                writer = SourceStateWriter(staging, table.name)
            for part in parts:
                writer.write(part)
                seen.add(part, ceiling, latest=known is None)
                if table.name == "batch":
                    statuses.append(part.select("batch_id", "status"))
                del part
            if known is not None:
                seen.latest = known.value
            if table.name != EVENTS and seen.watermark is not None:
                seen.reread = _reread(writer.parts, table.key, seen.watermark, origin)
            keep = previous is not None and table.name != EVENTS and seen.rows <= handover
            if keep:
                handover -= seen.rows
            if seen.rows <= SLICE_ROWS:
                written.append((seen, writes.submit(writer.close, keep=keep)))
            else:
                seen.text = writer.close(keep=keep)
            note(f"extract {number}/{len(TABLES)} {table.name}: {seen.rows}")
        for seen, future in written:  # every file on disk before validation reads it
            seen.text = future.result()
    for name in undecoded:
        facts[name].undecodable = True
    _release_driver_memory()
    return facts, events


class _ChangesAhead:
    """Each table's changes since the live snapshot's watermarks (read_changes), asked by a
    thread of its own on its own connection, in table order, while the main thread merges
    and writes the tables before: the ~40 small queries of a day's run took 0.1-0.18 s of
    its extraction on `large`. The thread stays at most CHANGES_AHEAD tables ahead, so a
    backfill day holds no more tables' changes at once than that. What a query raises is
    raised where its table's changes are taken; leaving the `with` block stops the queries
    not yet asked."""

    def __init__(self, origin: Source, manifest: dict, undecoded: set[str]) -> None:
        self.undecoded = undecoded
        self.marks = {t.name: manifest.get("watermark", {}).get(t.name) for t in TABLES}
        self._futures: dict[str, Future[pl.DataFrame | None]] = {t.name: Future() for t in TABLES}
        self._room = threading.Semaphore(CHANGES_AHEAD)
        self._thread = threading.Thread(
            target=self._ask, args=(origin,), name="source-changes", daemon=True
        )

    def __enter__(self) -> _ChangesAhead:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for future in self._futures.values():
            future.cancel()  # a query not yet asked is not asked
        self._room.release(len(TABLES))  # a waiting thread goes on, past the cancelled ones
        self._thread.join()

    def _ask(self, origin: Source) -> None:
        with _noting(self.undecoded), _one_connection(origin):
            for table in TABLES:
                self._room.acquire()
                future = self._futures[table.name]
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    future.set_result(read_changes(origin, table, self.marks[table.name]))
                except BaseException as exc:  # noqa: BLE001 - raised where it is taken
                    future.set_exception(exc)

    def changes(self, table: Table) -> pl.DataFrame | None:
        try:
            return self._futures[table.name].result()
        finally:
            self._room.release()  # taken: the thread may ask one table further


def _open_batches(statuses: list[pl.DataFrame], folder: Path) -> pl.Series:
    """Batches whose extracted status is not a settled one (SETTLED_STATUSES, as written):
    the base file of the entries keeps a copy of their rows (OpenRows). From the batches'
    text this run read, or else the live one's it kept (linked in `folder`)."""
    if not statuses:
        statuses = [pl.read_parquet(folder / "batch.parquet", columns=["batch_id", "status"])]
    text = pl.concat(statuses)
    return text.filter(~pl.col("status").is_in(SETTLED_STATUSES)).get_column("batch_id")


def _reread(parts: list[pl.DataFrame], key: str, watermark: str, source: Source) -> str:
    """Digest of the rows the next run reads again if nothing changes: every row of each key
    with a row it asks for (read_changes: the watermark's second, a missing updated_at...)."""
    text = pl.concat(parts, rechunk=False)
    again = _changed_since(source, pl.col("updated_at"), watermark)
    keys = text.filter(again).get_column(key).unique()
    return digest(text.filter(pl.col(key).is_in(keys.implode(), nulls_equal=True)))


def _as_live(changes: pl.DataFrame, files: list[Path], key: str, reread: str | None = None) -> bool:
    """Whether the rows read as changed are the live extracted rows of their keys: those
    written in the watermark's second are read again each run (`read_table`), unchanged.
    With the live run's digest of them (`reread`), the live file is not read."""
    if not changes.height:
        return True
    if reread is not None:
        return digest(changes) == reread
    if len(files) > 1:
        return False
    keys = changes.get_column(key)
    if keys.null_count():
        return False
    live = pl.scan_parquet(files[0]).filter(pl.col(key).is_in(keys.implode())).collect()
    columns = changes.columns
    return live.columns == columns and live.sort(columns).equals(changes.sort(columns))


def _keep_unchanged(
    name: str, manifest: dict, before: Path, folder: Path, seen: Extracted, state: State | None
) -> bool:
    """A table without changes keeps the live extracted text (a hard link), with its facts
    from the live snapshot; False when that snapshot does not have them (then it is merged).
    """
    if state is None or name not in state.latest or len(parts_of(before, name)) > 1:
        return False
    os.link(before / f"{name}.parquet", folder / f"{name}.parquet")
    seen.rows = manifest["tables"][name]["extracted"]
    seen.watermark = manifest.get("watermark", {}).get(name)
    seen.latest = state.latest[name]
    seen.unchanged = True
    seen.reread = state.reread.get(name)
    return True


def _delta_events(
    state: State | None,
    before: Path,
    folder: Path,
    run_id: str,
    changes: pl.DataFrame,
    batches: pl.Series,
) -> Events:
    """The entries of an incremental run: the live files linked, the changes beside them;
    or, without the live snapshot's state or after MAX_DELTAS runs, a plain merge."""
    live = before.parent
    earlier = parts_of(before, EVENTS)
    if state is None or len(earlier) > MAX_DELTAS:
        return Events(files=[folder / f"{EVENTS}.parquet"])
    linked = []
    for path in earlier:
        os.link(path, folder / path.name)
        linked.append(folder / path.name)
    copy = OpenRows.of(before / open_name(), earlier[0])
    if copy is not None:  # it goes with the base to the next run
        os.link(copy.path, folder / open_name())
        copy = OpenRows(folder / open_name(), copy.batches)
    files = list(linked)
    if changes.height:
        files.append(folder / delta_name(run_id))
        changes.write_parquet(files[-1], compression=SOURCE_COMPRESSION)
        with files[-1].open("rb") as handle:
            os.fsync(handle.fileno())
    events = Events(
        files=files, earlier=linked, changes=changes, previous=state, live=live, copy=copy
    )
    events.read_live_batches()
    events.find_replaced(batches)
    return events


def _latest_entry(events: Events, changed: datetime | None) -> datetime | None:
    """Latest parseable updated_at over the live entries, without reading them all unless a
    replaced row was the latest one."""
    assert events.previous is not None and events.replaced is not None
    before = events.previous.latest.get(EVENTS)
    if changed is not None and (before is None or changed >= before):
        return changed  # no live entry is later than the day's latest change
    replaced = latest_change(events.replaced)
    if before is not None and (replaced is None or replaced < before):
        return before  # the live snapshot's latest entry is still there
    latest = None
    for part in live_slices(events.files, events.key, [events.key, "updated_at"]):
        value = latest_change(part)
        if value is not None and (latest is None or value > latest):
            latest = value
    return latest


def _release_driver_memory() -> None:
    """Give back the C heap the driver's reader threads freed: glibc keeps it in per-thread
    arenas that polars (its own allocator) never reuses, ~1 GB after a large extract.
    """
    with suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)
