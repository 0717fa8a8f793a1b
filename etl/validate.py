"""Validate stage: check every extracted row against its contract; quarantine the bad ones.

Tables are checked parents first, so a reference must resolve to a VALID row and a row whose
parent was quarantined is quarantined too ("parent batch 'B-1' quarantined"). Checks are
polars expressions over whole columns, fast enough for ten million batch events.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from etl.incremental import (
    EVENTS,
    FUTURE,
    SLICE_ROWS,
    Events,
    digest,
    live_slices,
    slices,
    with_kind,
)
from warehouse.contract import (
    BOOL,
    DATE,
    DATETIME,
    FLOAT,
    INT,
    RESERVED_SPONSOR_IDS,
    SPONSOR_ID_PATTERN,
    TABLES,
    TABLES_BY_NAME,
    Table,
)
from warehouse.layout import QUARANTINE, RUN_STATE

POLARS_TYPES = {
    "str": pl.String, INT: pl.Int64, FLOAT: pl.Float64, BOOL: pl.Boolean, DATE: pl.Date,
    DATETIME: pl.Datetime("us"),
}  # fmt: skip
FUTURE_GRACE = timedelta(days=1)
VALID_STATE = "valid"  # in a snapshot's _state/: each table's valid rows as judged (typed)
# batch_event: an entry recorded long before it was performed is impossible (clock or
# data error); one recorded more than a year later is a reconstruction, not a record.
RECORDED_BEFORE_LIMIT = timedelta(days=1)
RECORDED_AFTER_LIMIT = timedelta(days=365)
# Columns naming a sponsor-owned record that must belong to the row's own sponsor, so a
# partition never carries another sponsor's batch or product id: table -> (column, owner of
# the row given as the column that decides it).
SAME_SPONSOR_REFS = {
    "batch": (("product_id", "sponsor_id"),),
    "deviation_link": (("product_id", "sponsor_id"), ("batch_id", "sponsor_id")),
    "change_impact": (("product_id", "sponsor_id"),),
    "complaint": (("batch_id", "product_id"),),
}


@dataclass(frozen=True)
class Reuse:
    """What an incremental run takes from the live snapshot instead of judging again. A
    table's verdicts read only its own text, the keys of the tables it refers to (valid and
    all), the owners of those whose sponsor it checks, and the as-of (only a row "in the
    future" changes with it). So a table whose text is unchanged, whose recorded inputs
    have the live run's digests, and with no row in the future, has the live run's valid
    rows and quarantine. The live snapshot must have been written by the same code.
    """

    live: Path  # the live snapshot
    unchanged: frozenset[str]  # tables whose extracted text is the live one
    inputs: dict[str, dict[str, str]]  # table -> "<table>:<kind>" -> digest, of the live run
    future: frozenset[str]  # tables with a row quarantined as in the future
    # Tables merged from the live text and the day's changes: the keys of the changed rows
    # (every row of such a key is the source's now; a null key stands for the rows without).
    changed: dict[str, pl.Series] = field(default_factory=dict)

    def valid_file(self, table: str) -> Path:
        return self.live / RUN_STATE / VALID_STATE / f"{table}.parquet"

    def quarantine_file(self, table: str) -> Path:
        return self.live / QUARANTINE / f"{table}.parquet"

    def prefetch(self) -> dict[str, Future]:
        """The live valid rows and quarantine of every table that may be reused, read by
        threads while the changed tables are judged (read one after the other when reused,
        the ~60 files of `large` took 0.2 s): table -> future of (valid, quarantine). In the
        order validation takes them (in name order, it waited 0.1 s of a day's run for them)."""
        wanted = (self.unchanged - self.future) & self.inputs.keys()
        names = [table.name for table in parents_first() if table.name in wanted]
        pool = ThreadPoolExecutor(2, thread_name_prefix="reuse")
        futures = {name: pool.submit(_read_verdicts, self, name) for name in names}
        pool.shutdown(wait=False)  # its threads end with the reads
        return futures


def _read_verdicts(reuse: Reuse, table: str) -> tuple[pl.DataFrame, pl.DataFrame] | None:
    """A table's valid rows and quarantine as the live run judged them; None where they
    cannot be read (the table is then judged again)."""
    source, judged = reuse.valid_file(table), reuse.quarantine_file(table)
    if not (source.is_file() and judged.is_file()):
        return None
    try:
        return pl.read_parquet(source), pl.read_parquet(judged)
    except (OSError, pl.exceptions.PolarsError):
        return None


@dataclass
class Validated:
    """Typed valid rows, quarantined rows and reason counts of one run."""

    valid: dict[str, pl.DataFrame]
    quarantine: dict[str, pl.DataFrame]
    reason_counts: dict[str, int]
    as_of: datetime
    inputs: dict[str, dict[str, str]] = field(default_factory=dict)  # see Reuse
    reused: dict[str, Path] = field(default_factory=dict)  # table -> live valid file
    partly: list[str] = field(default_factory=list)  # tables of which only changed rows were judged

    def future(self) -> list[str]:
        """Tables (the entries aside) with a row quarantined as in the future."""
        return sorted(
            name
            for name, frame in self.quarantine.items()
            if name != EVENTS and with_kind(frame, FUTURE).height
        )

    def count_every_entry(self, events: Events) -> None:
        """Make the entries' quarantine every quarantined entry after this run (those of
        batches an incremental run did not judge again included), and their reason counts
        those of that whole quarantine."""
        self.quarantine[EVENTS] = events.quarantine(self.quarantine[EVENTS])
        kinds = self.quarantine[EVENTS].get_column("kinds").explode().drop_nulls()
        self.reason_counts = {
            label: count
            for label, count in self.reason_counts.items()
            if not label.startswith(f"{EVENTS}: ")
        } | {f"{EVENTS}: {kind}": count for kind, count in kinds.value_counts().iter_rows()}


def write_valid_state(
    snapshot: Path, valid: dict[str, pl.DataFrame], reused: dict[str, Path]
) -> None:
    """Each table's valid rows (the entries aside) for the next run to reuse: a table
    reused from the live snapshot keeps its file (a hard link)."""
    folder = snapshot / RUN_STATE / VALID_STATE
    folder.mkdir(parents=True)
    for name, frame in valid.items():
        if name == EVENTS:
            continue
        if name in reused:
            os.link(reused[name], folder / f"{name}.parquet")
        else:
            # lz4: the next run reads the unchanged tables' files back (~60 on `large`)
            # in 0.09 s of CPU, zstd's in 0.14 s; written in 0.21 s against 0.31 s.
            frame.write_parquet(folder / f"{name}.parquet", compression="lz4")


# Text that is not UTF-8 (SQLite stores what it is given) is extracted as this mark (a
# Unicode noncharacter, which no text exchanged carries) and its bytes, \xNN for each one
# that is not UTF-8: its row is quarantined here, where the driver failed the whole run.
UNDECODABLE = "\ufdd0"


@dataclass(frozen=True)
class Check:
    kind: str  # reason category, counted in the manifest
    failed: pl.Expr
    message: pl.Expr


def _as_written_or_stripped(text: pl.Expr, convert: Callable[[pl.Expr], pl.Expr]) -> pl.Expr:
    """`convert` of the text as written, and of the stripped text only where that gave
    nothing: stripping every value of a clean column cost as much as parsing it."""
    first = convert(text)
    return pl.coalesce(first, convert(pl.when(first.is_null()).then(text).str.strip_chars()))


# Each parsed type's conversion of text written as our sources write it (a clean value).
# No cache for date-times: they rarely repeat, and memoising them cost a third more CPU.
_WRITTEN: dict[str, Callable[[pl.Expr], pl.Expr]] = {
    INT: lambda t: t.cast(pl.Int64, strict=False),
    FLOAT: lambda t: t.cast(pl.Float64, strict=False),
    DATE: lambda t: t.str.to_date("%Y-%m-%d", strict=False),
    DATETIME: lambda t: t.str.to_datetime(
        "%Y-%m-%dT%H:%M:%S", strict=False, time_unit="us", cache=False
    ),
}


def _datetime(text: pl.Expr) -> pl.Expr:
    # Whole seconds parse ~4x faster without %.f and give the same value; only the rest
    # (fractions, a space separator, garbage) takes the general formats.
    whole = _WRITTEN[DATETIME](text)
    rest = pl.when(whole.is_null()).then(text)
    return pl.coalesce(
        whole,
        rest.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us", cache=False),
        rest.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False, time_unit="us", cache=False),
    )


def _finite(kind: str, value: pl.Expr) -> pl.Expr:
    """A float's infinities and NaN are no values."""
    return pl.when(value.is_finite()).then(value) if kind == FLOAT else value


def as_written(kind: str, text: pl.Expr) -> pl.Expr | None:
    """`parse` of text written as our sources write it (a clean column), or None where
    `kind` has no such shortcut. Where some text does not parse this way, `parse` must be
    taken: it tries stripped text and other formats too, at 2-3x the cost."""
    return _finite(kind, _WRITTEN[kind](text)) if kind in _WRITTEN else None


def parse(kind: str, text: pl.Expr) -> pl.Expr:
    """Typed value of a text column (surrounding whitespace ignored); null where the text
    does not parse."""
    if kind == BOOL:
        lowered = text.str.strip_chars().str.to_lowercase()
        return (
            pl.when(lowered.is_in(["1", "true"]))
            .then(True)
            .when(lowered.is_in(["0", "false"]))
            .then(False)
        )
    if kind == DATETIME:
        return _as_written_or_stripped(text, _datetime)
    if kind in _WRITTEN:
        return _finite(kind, _as_written_or_stripped(text, _WRITTEN[kind]))
    return text


# A date-time written as our sources write it: as text, it sorts as its time does.
WRITTEN_AT = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}$"


def latest_change(frame: pl.DataFrame) -> datetime | None:
    """Latest parseable updated_at of one extracted table (None when it has none)."""
    if not frame.height:
        return None
    text = frame.get_column("updated_at")
    # Of the values written so, the latest is of the greatest one's day (its text first: the
    # day, then "T" or " "); only those, and the values written otherwise, are parsed (10M
    # entries: 0.6 -> 0.4 s of CPU). Where the greatest is no date-time, every value is.
    written = text.str.contains(WRITTEN_AT)
    greatest = text.filter(written).max()
    if greatest is not None and _parsed(pl.Series([greatest])).item() is not None:
        text = text.filter(~written.fill_null(True) | text.str.starts_with(greatest[:10]))
    return _parsed(text).max()


def _parsed(text: pl.Series) -> pl.Series:
    # Lazily: parse repeats its subexpressions, which only the lazy engine evaluates once
    # (and not inside an aggregation: the maximum is taken after).
    return text.to_frame("at").lazy().select(parse(DATETIME, pl.col("at"))).collect()["at"]


def as_of_from(latest: Iterable[datetime | None], now: datetime) -> datetime:
    """Latest change in the source (never past the wall clock), plus a day of grace."""
    changes = [value for value in latest if value is not None and value <= now]
    return (max(changes) if changes else now) + FUTURE_GRACE


def parents_first() -> list[Table]:
    """Contract tables ordered so every referenced table comes before its referrers."""
    ordered: list[Table] = []
    placed: set[str] = set()
    pending = list(TABLES)
    while pending:
        for table in pending:
            refs = {c.ref for c in table.columns if c.ref and c.ref != table.name}
            if refs <= placed:
                ordered.append(table)
                placed.add(table.name)
                pending.remove(table)
                break
        else:
            raise ValueError("contract references form a cycle")
    return ordered


def _quote(column: str) -> pl.Expr:
    return pl.concat_str(pl.lit("'"), pl.col(column).fill_null(""), pl.lit("'"))


def _fail(kind: str, failed: pl.Expr, *parts: str | pl.Expr) -> Check:
    message = pl.concat_str([pl.lit(p) if isinstance(p, str) else p for p in parts])
    return Check(kind, failed.fill_null(False), message)


class _Validator:
    def __init__(self, as_of: datetime, undecodable: frozenset[str] = frozenset()) -> None:
        self.as_of = as_of
        self.undecodable = undecodable  # tables whose text may hold UNDECODABLE values
        self.valid: dict[str, pl.DataFrame] = {}
        self.quarantine: dict[str, pl.DataFrame] = {}
        self.reason_counts: dict[str, int] = {}
        self._keys: dict[tuple[str, bool], pl.Series] = {}
        # What judging the current table read of other tables ((table, kind): "valid" or
        # "all" keys, "owners"), and per judged table the digests of what it read (Reuse).
        self.reads: set[tuple[str, str]] = set()
        self.inputs: dict[str, dict[str, str]] = {}
        self._digests: dict[tuple[str, str], str] = {}
        # Tables whose verdicts are the live run's (`reuse`): what a table's verdicts read of
        # one is what it read when the live run judged or took them, so it is not digested
        # to be compared (the key sets of a day's run cost 0.1 s).
        self.taken: set[str] = set()

    def keys(self, table: str, *, valid: bool) -> pl.Series:
        """Keys of a judged table: its valid rows, or every extracted row (valid or not)."""
        self.reads.add((table, "valid" if valid else "all"))
        return self._key_set(table, valid)

    def _key_set(self, table: str, valid: bool) -> pl.Series:
        if (table, valid) not in self._keys:  # a judged table's keys do not change
            key = TABLES_BY_NAME[table].key
            keys = self.valid[table].get_column(key)
            if not valid:
                # Every extracted row is valid or quarantined, so the text need not stay alive.
                keys = pl.concat([keys, self.quarantine[table].get_column("key")])
            self._keys[table, valid] = keys.drop_nulls().unique()
        return self._keys[table, valid]

    def owner(self, table: str) -> pl.DataFrame:
        """key -> sponsor_id of valid product or batch rows."""
        self.reads.add((table, "owners"))
        return self._owners(table)

    def _owners(self, table: str) -> pl.DataFrame:
        key = TABLES_BY_NAME[table].key
        return self.valid[table].select(pl.col(key).alias("__ref"), pl.col("sponsor_id"))

    def digest_of(self, table: str, kind: str) -> str:
        """Digest of what a table's verdicts may read of a judged table (`reads`)."""
        if (table, kind) not in self._digests:
            if kind == "owners":
                frame = self._owners(table)
            else:
                frame = self._key_set(table, kind == "valid").to_frame()
            self._digests[table, kind] = digest(frame)
        return self._digests[table, kind]

    def reuse(
        self, table: Table, reuse: Reuse | None, fetched: dict[str, Future] | None = None
    ) -> Path | None:
        """Take a table's valid rows and quarantine from the live snapshot when `reuse`
        allows it (read already when in `fetched`: Reuse.prefetch); the live file of its
        valid rows, else None."""
        if reuse is None or table.name not in reuse.unchanged or table.name in reuse.future:
            return None
        before = reuse.inputs.get(table.name)
        if before is None or not self._as_live(before):
            return None
        future = (fetched or {}).get(table.name)
        verdicts = _read_verdicts(reuse, table.name) if future is None else future.result()
        if verdicts is None:
            return None  # the live run's verdicts cannot be read: the table is judged again
        self.valid[table.name], self.quarantine[table.name] = verdicts
        source = reuse.valid_file(table.name)
        self._count(table, self.quarantine[table.name].get_column("kinds"))
        self.inputs[table.name] = dict(before)
        self.taken.add(table.name)
        return source

    def _as_live(self, inputs: dict[str, str]) -> bool:
        """Whether what a table's verdicts read of the others (`inputs`, "<table>:<kind>"
        -> digest) is as the live run read it."""
        for name, value in inputs.items():
            other, _, kind = name.rpartition(":")
            if other not in self.valid:
                return False
            if other not in self.taken and self.digest_of(other, kind) != value:
                return False
        return True

    def unreached(
        self, table: Table, reuse: Reuse | None
    ) -> tuple[pl.Series, pl.DataFrame, pl.DataFrame] | None:
        """Of a table whose own text the day changed (only that: what its verdicts read of
        the others is as the live run read it, and no row of it is in the future), the keys
        of its changed rows, and the live run's valid rows and quarantine of every other
        row: a row's verdict reads no other row of its table but the copies of its key,
        which are changed with it. None where the table is judged whole (also when it
        refers to itself: a row's verdict then reads the others')."""
        if reuse is None or table.name not in reuse.changed or table.name in reuse.future:
            return None
        if any(c.ref == table.name for c in table.columns):
            return None
        before = reuse.inputs.get(table.name)
        if before is None or not self._as_live(before):
            return None
        verdicts = _read_verdicts(reuse, table.name)
        if verdicts is None:
            return None
        changed = reuse.changed[table.name]
        valid, judged = verdicts
        reached = changed.implode()
        return (
            changed,
            valid.filter(~pl.col(table.key).is_in(reached, nulls_equal=True)),
            judged.filter(~pl.col("key").is_in(reached, nulls_equal=True)),
        )

    def add_unreached(self, table: Table, valid: pl.DataFrame, quarantine: pl.DataFrame) -> None:
        """The live verdicts of the rows `unreached` kept, before those judged again (the
        merged text has the live rows first, then the changes)."""
        self.valid[table.name] = pl.concat([valid, self.valid[table.name]], rechunk=False)
        self.quarantine[table.name] = pl.concat([quarantine, self.quarantine[table.name]])
        self._count(table, quarantine.get_column("kinds"))

    def _count(self, table: Table, kinds: pl.Series) -> None:
        for kind, count in kinds.explode().value_counts().iter_rows():
            if kind is not None:
                label = f"{table.name}: {kind}"
                self.reason_counts[label] = self.reason_counts.get(label, 0) + count

    def row_checks(self, table: Table) -> list[Check]:
        """Checks of each row on its own (duplicates from the table-wide `__copies`)."""
        checks: list[Check] = []
        key = table.key
        checks.append(
            _fail(
                f"duplicate {key}",
                pl.col("__copies").is_not_null(),
                "duplicate key ",
                _quote(key),
                pl.format(" (all {} copies quarantined)", pl.col("__copies")),
            )
        )
        for column in table.columns:
            name, raw, typed = column.name, pl.col(column.name), pl.col(f"__t_{column.name}")
            if column.required:
                checks.append(_fail(f"missing {name}", raw.is_null(), f"{name} is missing"))
            if column.type != "str":
                checks.append(
                    _fail(
                        f"unparseable {column.type} in {name}",
                        raw.is_not_null() & typed.is_null(),
                        f"{name} is not a valid {column.type}: ",
                        _quote(name),
                    )
                )
            if column.enum:
                checks.append(
                    _fail(
                        f"{name} not an allowed value",
                        raw.is_not_null() & ~raw.is_in(list(column.enum)),
                        f"{name} ",
                        _quote(name),
                        " is not an allowed value",
                    )
                )
            if column.min_value is not None:
                checks.append(
                    _fail(
                        f"{name} below minimum",
                        typed < column.min_value,
                        f"{name} ",
                        raw,
                        f" is below the minimum {column.min_value:g}",
                    )
                )
            if column.type == DATETIME:
                checks.append(
                    _fail(
                        f"{name} in the future",
                        typed > self.as_of,
                        f"{name} ",
                        raw,
                        f" is in the future (source as-of {self.as_of:%Y-%m-%dT%H:%M:%S})",
                    )
                )
            if name == "sponsor_id":
                unsafe = raw.is_not_null() & ~(
                    raw.str.contains(SPONSOR_ID_PATTERN.pattern)
                    & ~raw.is_in(list(RESERVED_SPONSOR_IDS))
                )
                checks.append(
                    _fail("unsafe sponsor id", unsafe, "unsafe sponsor id ", _quote(name))
                )
        if table.name in self.undecodable:
            for column in table.column_names:
                checks.append(
                    _fail(
                        f"{column} not UTF-8",
                        pl.col(column).str.starts_with(UNDECODABLE),
                        f"{column} is not valid UTF-8 text: ",
                        _quote(column).str.replace(UNDECODABLE, "", literal=True),
                    )
                )
        if table.name == "batch_event":
            performed = pl.col("__t_performed_at")
            recorded = pl.col("__t_recorded_at")
            checks.append(
                _fail(
                    "recorded before performed",
                    recorded < performed - RECORDED_BEFORE_LIMIT,
                    "recorded_at ",
                    pl.col("recorded_at"),
                    " is more than a day before performed_at ",
                    pl.col("performed_at"),
                )
            )
            checks.append(
                _fail(
                    "recorded over a year after performed",
                    recorded > performed + RECORDED_AFTER_LIMIT,
                    "recorded_at ",
                    pl.col("recorded_at"),
                    " is more than a year after performed_at ",
                    pl.col("performed_at"),
                )
            )
        return checks

    def reference_checks(
        self,
        table: Table,
        frame: pl.DataFrame,
        self_keys: pl.Series | None,
        all_self_keys: pl.Series | None,
    ) -> list[Check]:
        """Each reference of `frame`'s rows resolves to a valid row; `all_self_keys` (every
        extracted key of the table) and `self_keys` (its valid ones so far) for a table that
        refers to itself."""
        checks: list[Check] = []
        for column in table.columns:
            if not column.ref:
                continue
            name, raw = column.name, pl.col(column.name)
            if column.ref == table.name:
                assert all_self_keys is not None
                valid_keys = self_keys if self_keys is not None else all_self_keys
                all_keys = all_self_keys
            else:
                valid_keys = self.keys(column.ref, valid=True)
                all_keys = self.keys(column.ref, valid=False)
                if frame.height < all_keys.len():
                    # Only the keys these rows name: each check builds a set of its keys, and
                    # 32 OOS investigations looked up 309k test results' (70 ms).
                    named = frame.get_column(name)
                    valid_keys = valid_keys.filter(valid_keys.is_in(named.implode()))
                    all_keys = all_keys.filter(all_keys.is_in(named.implode()))
            if name == "sponsor_id":
                # An unsafe id already has its own reason; it is never a known sponsor.
                raw_checked = raw.str.contains(SPONSOR_ID_PATTERN.pattern) & ~raw.is_in(
                    list(RESERVED_SPONSOR_IDS)
                )
            else:
                raw_checked = pl.lit(True)
            unresolved = raw.is_not_null() & raw_checked & ~raw.is_in(valid_keys.implode())
            parent = column.ref.replace("_", " ")
            orphan = unresolved
            if column.ref == table.name or valid_keys.len() < all_keys.len():
                known = raw.is_in(all_keys.implode())
                checks.append(
                    _fail(
                        f"parent {column.ref} quarantined",
                        unresolved & known,
                        f"parent {parent} ",
                        _quote(name),
                        " quarantined",
                    )
                )
                orphan = unresolved & ~known
            # Else no parent these rows can name is quarantined (each key once in both, the
            # valid ones among all): a key no valid parent has, no parent has. The entries'
            # three references were looked up twice each over 10M rows (~0.8 s of CPU).
            kind = "unknown sponsor" if column.ref == "sponsor" else f"orphan {name}"
            checks.append(_fail(kind, orphan, f"{name} ", _quote(name), f" has no {parent}"))
        for column, decider in SAME_SPONSOR_REFS.get(table.name, ()):
            ref = table.column(column).ref
            mine = pl.col("__row_sponsor") if decider != "sponsor_id" else pl.col("sponsor_id")
            checks.append(
                _fail(
                    f"{ref} of another sponsor",
                    pl.col(f"__owner_{column}").is_not_null()
                    & mine.is_not_null()
                    & (pl.col(f"__owner_{column}") != mine),
                    f"{ref} ",
                    _quote(column),
                    " belongs to sponsor ",
                    pl.col(f"__owner_{column}"),
                    ", not to this row's sponsor ",
                    mine,
                )
            )
        if table.name == "change_impact":
            with_agreement = self.owner("quality_agreement").get_column("sponsor_id").unique()
            checks.append(
                _fail(
                    "sponsor without quality agreement",
                    pl.col("sponsor_id").is_in(self.keys("sponsor", valid=True).implode())
                    & ~pl.col("sponsor_id").is_in(with_agreement.implode()),
                    "sponsor ",
                    _quote("sponsor_id"),
                    " has no quality agreement",
                )
            )
        return checks

    def with_owners(self, table: Table, frame: pl.DataFrame) -> pl.DataFrame:
        """Add the sponsor owning each sponsored record the row names (for same-sponsor
        checks), the rows in their order (a join, then a sort back into it, took 0.026 s of
        the 49k batches)."""
        for column, decider in SAME_SPONSOR_REFS.get(table.name, ()):
            owners = self.owner(table.column(column).ref).rename(
                {"sponsor_id": f"__owner_{column}"}
            )
            frame = frame.join(
                owners, left_on=column, right_on="__ref", how="left", maintain_order="left"
            )
            if decider != "sponsor_id":
                deciders = self.owner(table.column(decider).ref).rename(
                    {"sponsor_id": "__row_sponsor"}
                )
                frame = frame.join(
                    deciders, left_on=decider, right_on="__ref", how="left", maintain_order="left"
                )
        return frame

    def run_table(self, table: Table, keys: pl.Series, slices: Iterable[pl.DataFrame]) -> int:
        """Judge a table given as row slices in source order (one slice for a table that
        refers to itself); `keys` is its whole key column. Returns the rows judged.
        """
        self.reads = set()
        present = keys.drop_nulls()
        copies = _copied(present).value_counts(name="__copies")
        # Only a table that refers to itself needs its distinct keys (1.8 s over 10M entries).
        self_ref = any(c.ref == table.name for c in table.columns)
        all_keys = present.unique() if self_ref else None
        valid, quarantine, rows = [], [], 0
        for raw in slices:
            rows += raw.height
            judged_valid, judged_bad = self.judge(table, raw, copies, all_keys)
            # One chunk per slice (the engine hands back ~100k-row pieces): a frame of many
            # chunks is copied whole into one by the next operation on it.
            valid.append(judged_valid.rechunk())
            quarantine.append(judged_bad)
            del raw
        # Slices stay chunks of one frame: joining them into one chunk would hold the table
        # twice; transform keeps derived columns in the same chunks.
        self.valid[table.name] = pl.concat(valid, rechunk=False)
        del valid
        self.quarantine[table.name] = pl.concat(quarantine, rechunk=False)
        self.inputs[table.name] = {
            f"{other}:{kind}": self.digest_of(other, kind) for other, kind in sorted(self.reads)
        }
        return rows

    def judge(
        self, table: Table, raw: pl.DataFrame, copies: pl.DataFrame, all_keys: pl.Series | None
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Valid typed rows and quarantined rows of one slice; counts the reasons."""
        frame = _typed(raw, table)
        if copies.height:
            frame = frame.join(copies, on=table.key, how="left", maintain_order="left")
        else:
            frame = frame.with_columns(pl.lit(None, pl.UInt32).alias("__copies"))
        frame = self.with_owners(table, frame)
        row_checks = self.row_checks(table)
        self_ref = any(c.ref == table.name for c in table.columns)
        self_keys = None
        while True:
            checks = row_checks + self.reference_checks(table, frame, self_keys, all_keys)
            failed = pl.any_horizontal([c.failed for c in checks])
            if not self_ref:
                break
            # A self reference (recurrence_of) must name a valid row of the same table.
            new_keys = frame.filter(~failed).get_column(table.key).unique()
            if self_keys is not None and new_keys.len() == self_keys.len():
                break
            self_keys = new_keys
        # Each check's verdict is kept as a flag over every row, but reasons are written only
        # for the failed rows: building ~30 message strings per row dominated at 10M events.
        flags = [f"__f{number}" for number in range(len(checks))]
        named = list(zip(checks, flags, strict=True))
        judged = frame.with_columns(c.failed.alias(flag) for c, flag in named)
        failed = pl.any_horizontal(flags)
        bad = judged.filter(failed).with_columns(
            pl.concat_str(
                [pl.when(pl.col(flag)).then(c.message) for c, flag in named],
                separator="; ",
                ignore_nulls=True,
            ).alias("__reason"),
            pl.concat_list([pl.when(pl.col(flag)).then(pl.lit(c.kind)) for c, flag in named])
            .list.drop_nulls()
            .alias("__kinds"),
        )
        # Lazily, so only the typed columns are filtered, not the raw text beside them.
        valid = (
            judged.lazy()
            .filter(~failed)
            .select(
                pl.col(f"__t_{c.name}").cast(POLARS_TYPES[c.type]).alias(c.name)
                for c in table.columns
            )
            .collect()
        )
        quarantine = bad.select(
            pl.lit(table.name).alias("table"),
            pl.col(table.key).alias("key"),
            pl.col("__reason").alias("reason"),
            pl.struct(table.column_names).struct.json_encode().alias("values"),
            pl.col("__kinds").alias("kinds"),
        )
        self._count(table, bad.get_column("__kinds"))
        return valid, quarantine


def _copied(keys: pl.Series) -> pl.Series:
    """The keys (no null among them) that more than one row holds, each row's."""
    if not keys.is_sorted():
        return keys.filter(keys.is_duplicated())
    # Copies of a key are neighbours: 10x cheaper than hashing 10M keys. Whether there is
    # any is one comparison of neighbours, views of the keys; most tables have none
    # (0.21 -> 0.13 s on one core over the 10M entries of `large`).
    if not (keys.slice(1) == keys.slice(0, max(keys.len() - 1, 0))).any():
        return keys.clear()
    copied = (keys == keys.shift(1)) | (keys == keys.shift(-1))
    return keys.filter(copied.fill_null(False))


def _typed(raw: pl.DataFrame, table: Table) -> pl.DataFrame:
    """`raw` with each column's `parse` beside it (`__t_<column>`): where every value of a
    column parses as written, that is its parse; only the other columns are parsed again
    the general way."""
    quick = {c.name: as_written(c.type, pl.col(c.name)) for c in table.columns}
    # Lazily: parse repeats its subexpressions, which only the lazy engine evaluates once
    # (eagerly, a date-time column was parsed four times).
    frame = (
        raw.lazy()
        .with_columns(
            (parse(c.type, pl.col(c.name)) if quick[c.name] is None else quick[c.name]).alias(
                f"__t_{c.name}"
            )
            for c in table.columns
        )
        .collect()
    )
    missed = frame.select(
        (pl.col(c.name).is_not_null() & pl.col(f"__t_{c.name}").is_null()).any().alias(c.name)
        for c in table.columns
        if quick[c.name] is not None
    )
    again = [c for c in table.columns if c.name in missed.columns and missed.item(0, c.name)]
    if not again:
        return frame
    return (
        frame.lazy()
        .with_columns(parse(c.type, pl.col(c.name)).alias(f"__t_{c.name}") for c in again)
        .collect()
    )


def validate_files(
    folder: Path,
    as_of: datetime,
    events: Events | None = None,
    reuse: Reuse | None = None,
    texts: Mapping[str, pl.DataFrame] | None = None,
    undecodable: frozenset[str] = frozenset(),
) -> Validated:
    """Validation of tables stored as `<table>.parquet` text files in `folder`, read one
    table at a time and large tables in row slices, so little raw text is alive at once;
    a table in `texts` is that file's text, handed over by extraction, not read again.
    The entries are judged last, all of them or, when `events` allows, the dirty batches'.
    """

    def sliced(table: Table, valid: dict[str, pl.DataFrame]) -> tuple[pl.Series, Iterable]:
        if texts and table.name in texts:
            text = texts[table.name].rechunk()  # as the file reads back: one chunk
            return text.get_column(table.key), iter([text])
        path = folder / f"{table.name}.parquet"
        if table.name == EVENTS and events is not None:
            events.choose(valid, as_of)
            if events.dirty is not None:
                return events.to_judge()
            if len(events.files) > 1:
                live = live_slices(events.files, table.key, [table.key])
                keys = pl.concat([part.get_column(table.key) for part in live])
                return keys, live_slices(events.files, table.key)
        keys = pl.read_parquet(path, columns=[table.key]).get_column(table.key)
        if any(c.ref == table.name for c in table.columns) or keys.len() <= SLICE_ROWS:
            return keys, iter([pl.read_parquet(path)])
        return keys, slices(path)

    return validate_tables(sliced, as_of, reuse, undecodable)


def validate_tables(
    load: Callable[[Table, dict[str, pl.DataFrame]], tuple[pl.Series, Iterable[pl.DataFrame]]],
    as_of: datetime,
    reuse: Reuse | None = None,
    undecodable: frozenset[str] = frozenset(),
) -> Validated:
    """Judge tables parents first, the entries (no table's parent) last, once every table
    they depend on is judged; `load` gives a table's key column and its row slices, and
    sees the valid rows judged so far. A table `reuse` allows is taken from the live
    snapshot instead.
    """
    validator = _Validator(as_of, undecodable)
    fetched = {} if reuse is None else reuse.prefetch()
    reused: dict[str, Path] = {}
    partly: list[str] = []
    ordered = [t for t in parents_first() if t.name != EVENTS] + [TABLES_BY_NAME[EVENTS]]
    for table in ordered:
        unreached = None
        if table.name != EVENTS:
            live = validator.reuse(table, reuse, fetched)
            if live is not None:
                reused[table.name] = live
                continue
            unreached = validator.unreached(table, reuse)
        keys, slices = load(table, validator.valid)
        if unreached is None:
            extracted_rows = validator.run_table(table, keys, slices)
        else:
            # Only the changed rows are judged: the 49k batches of `large` took 0.12 s of a
            # day's run for its 4 changed ones.
            changed, kept_valid, kept_quarantine = unreached
            reached = pl.col(table.key).is_in(changed.implode(), nulls_equal=True)
            extracted_rows = keys.len()
            keys = keys.filter(keys.is_in(changed.implode(), nulls_equal=True))
            validator.run_table(table, keys, (part.filter(reached) for part in slices))
            validator.add_unreached(table, kept_valid, kept_quarantine)
            partly.append(table.name)
        judged_rows = validator.valid[table.name].height + validator.quarantine[table.name].height
        if extracted_rows != judged_rows:
            raise RuntimeError(
                f"table {table.name}: extracted {extracted_rows} != valid + quarantined "
                f"{judged_rows}"
            )
    return Validated(
        validator.valid,
        validator.quarantine,
        validator.reason_counts,
        as_of,
        inputs=validator.inputs,
        reused=reused,
        partly=partly,
    )
