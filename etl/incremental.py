"""What a day's changes reach: the batches whose entries an incremental run judges again.

Batch entries (`batch_event`) are nine rows in ten of a plant. A day adds a few hundred, so an
incremental run keeps every other entry as the live snapshot published it and re-judges only
the entries of *dirty* batches: those with a new or changed entry, whose batch row changed or
became valid or invalid, or with an entry quarantined as "in the future" (the source's as-of
moves every day). Everything else an entry's verdict, derived columns or partition depend on
(its operators, their training, the product's SOPs, the sponsors) is in `GLOBAL`: when any of
them changed, every entry is judged again, as in a full build. The result equals a full
build's, file for file; tests/etl/test_etl_demo.py and the bench check it.

The extracted text of the entries stays in the snapshot as the base file of the last full
extract and one delta file per incremental run since (`batch_event.parquet`,
`batch_event.delta-<run>.parquet`); a row of a later file replaces the rows of its key in
earlier ones. A run merges them back into one base after `MAX_DELTAS` runs. Beside the base,
a copy of its rows of the batches open when it was written (`OpenRows`) is where a day finds
its in-flight batches' live entries.

What the next run needs of this one is kept in the snapshot's `_state/` folder: a digest of
each table's valid rows, each keepable table's signature (etl.route), each table's latest
change, every quarantined entry with its batch and
reasons, the two facts other tables derive from all entries (each batch's first review,
each operator's batches), and what masking compares a day's identifiers with (every
identifier it searched for, the distinct free texts of the entries: etl.route.Before).
"""

from __future__ import annotations

import hashlib
import json
import os
from bisect import bisect_left
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from etl.publish import (
    SOURCE_COMPRESSION,
    SPLIT_FILES,
    RunStateError,
    SourceStateWriter,
    fsync_path,
    is_mapping_of,
    is_text,
    read_state_json,
    split_file,
)
from warehouse.contract import TABLES_BY_NAME
from warehouse.layout import RUN_STATE as STATE

EVENTS = "batch_event"
# Tables an entry's verdict, derived columns or partition read beyond its own batch: the
# operators named (and the sponsors, products and sites their validity rests on), their
# training and the product's SOPs (training_gap).
GLOBAL = ("sponsor", "site", "product", "operator", "sop", "product_sop", "training_record")
# Batches whose record a day rarely changes: their entries are published apart from the
# open batches' (etl.publish.SPLIT), so a day rewrites the small file of open batches and
# the bucket of settled ones of each batch released or corrected.
SETTLED_STATUSES = ("SPONSOR_RELEASED", "REJECTED")
MAX_DELTAS = 20
# Tables longer than this are read, and judged, in slices of this many rows.
SLICE_ROWS = 1_000_000
FUTURE = "in the future"  # the check whose verdict moves with the source's as-of
_PART = "__part"
_ROW, _ROW_TYPE = "__row", pl.UInt32  # a row's number in its file (polars' row index)


def delta_name(run_id: str) -> str:
    return f"{EVENTS}.delta-{run_id}.parquet"


def parts_of(folder: Path, table: str) -> list[Path]:
    """A table's extracted text files in a source state folder, oldest first: the base, then
    (the entries only) each incremental run's delta."""
    deltas = sorted(folder.glob(f"{EVENTS}.delta-*.parquet")) if table == EVENTS else []
    return [folder / f"{table}.parquet", *deltas]


def open_name() -> str:
    return f"{EVENTS}.open.parquet"


# Rows of open batches copied beside the base file (OpenRows) up to this many; a plant with
# more has no copy, and its base is scanned.
OPEN_ROWS = 1_000_000


@dataclass(frozen=True)
class OpenRows:
    """Beside the base file of the entries (the first of parts_of): a copy of its rows of
    the batches open when it was written, each with its row number in the base (`_ROW`),
    those batches' ids in its metadata. A day's run wants the live entries of its in-flight
    batches: they are read from this small file (41k rows on `large`, 0.03 s), not from the
    base, over whose 80 row groups the ids of a day's 57 batches spread (54 read, 0.15 s).
    """

    path: Path
    batches: pl.Series  # every batch whose rows of the base are all here

    @classmethod
    def of(cls, path: Path, base: Path) -> OpenRows | None:
        """The copy at `path`, where it was written beside this `base` (its bytes and
        columns); None where it is missing or cannot be read: the base is then scanned."""
        try:
            facts = pl.read_parquet_metadata(path)
            if facts.get("base_bytes") != str(base.stat().st_size):
                return None
            columns = [(_ROW, _ROW_TYPE), *pl.read_parquet_schema(base).items()]
            if list(pl.read_parquet_schema(path).items()) != columns:
                return None
            batches = pl.Series("batch_id", json.loads(facts["batches"]), pl.String)
        except (OSError, KeyError, ValueError, TypeError, pl.exceptions.PolarsError):
            return None
        return cls(path, batches)

    def split(self, values: pl.Series) -> tuple[pl.Series, pl.Series]:
        """`values` of batch ids: those this copy holds every base row of, and the others."""
        here = values.is_in(self.batches.implode()).fill_null(False)
        return values.filter(here), values.filter(~here)

    def read(self, batches: pl.Series) -> pl.DataFrame:
        """The copied rows of these batches, with their row numbers in the base."""
        holds = pl.col("batch_id").is_in(batches.implode())
        return pl.scan_parquet(self.path).filter(holds).collect()


class EntriesWriter(SourceStateWriter):
    """The entries' base file, and beside it the copy of its rows of `open_batches`
    (OpenRows): filtered slice by slice as they are written, ~0.02 s a slice."""

    def __init__(self, staging: Path, open_batches: pl.Series) -> None:
        super().__init__(staging, EVENTS)
        self.open_batches = open_batches
        self.copied: list[pl.DataFrame] | None = []
        self.copied_rows = 0

    def write(self, part: pl.DataFrame) -> None:
        if self.copied is not None:
            rows = part.with_row_index(_ROW, offset=self.rows).filter(
                pl.col("batch_id").is_in(self.open_batches.implode())
            )
            self.copied_rows += rows.height
            self.copied.append(rows)
            if self.copied_rows > OPEN_ROWS:
                self.copied = None  # too many to copy: the base is scanned
        super().write(part)

    def close(self, keep: bool = False) -> pl.DataFrame | None:
        text = super().close(keep)
        if self.copied is not None:
            path = self.path.with_name(open_name())
            facts = {
                "batches": json.dumps(self.open_batches.unique().drop_nulls().sort().to_list()),
                "base_bytes": str(self.path.stat().st_size),
            }
            copy = pl.concat(self.copied)
            self.copied = None
            copy.write_parquet(path, compression=SOURCE_COMPRESSION, metadata=facts)
            fsync_path(path)
        return text


def _later_keys(files: list[Path], key: str) -> pl.DataFrame:
    """(key, newest part holding it) over the delta files (small), for keys they replace."""
    frames = [
        pl.read_parquet(path, columns=[key]).with_columns(pl.lit(number, pl.Int32).alias(_PART))
        for number, path in enumerate(files)
        if number > 0
    ]
    if not frames:
        return pl.DataFrame(schema={key: pl.String, _PART: pl.Int32})
    return pl.concat(frames).group_by(key).agg(pl.col(_PART).max())


def live_slices(
    files: list[Path], key: str, columns: list[str] | None = None
) -> Iterator[pl.DataFrame]:
    """Every live row of a table kept as a base and deltas (a key's rows in its newest
    file), slice by slice in file order; only `columns` (which hold the key) when given."""
    newest = _later_keys(files, key)
    for number, path in enumerate(files):
        replaced = newest.filter(pl.col(_PART) > number).select(key)
        for part in slices(path, columns):
            if replaced.height:
                part = part.join(replaced, on=key, how="anti", nulls_equal=True)
            yield part


def slices(path: Path, columns: list[str] | None = None) -> Iterator[pl.DataFrame]:
    """A stored table (only `columns`, when given) in row slices of SLICE_ROWS: polars reads
    only the row groups of each, 3.6x faster than Arrow's batch reader over 10M entries."""
    stored = pl.scan_parquet(path)
    if columns is not None:
        stored = stored.select(columns)
    rows = stored.select(pl.len()).collect().item()
    for start in range(0, rows, SLICE_ROWS):
        yield stored.slice(start, SLICE_ROWS).collect()


def live_rows(
    files: list[Path], wanted: dict[str, pl.Series], copy: OpenRows | None = None
) -> pl.DataFrame:
    """The live rows of the entries whose column holds one of its `wanted` values (a null
    matches a null). Each column is looked up on its own: a filter over two columns reads
    both whole (0.28 s over 10M entries), one over the batch ids only the row groups that
    can hold them. Where the statistics narrow a column's values to a few row groups (the
    keys of a day's new entries: none of the earlier files'), only those are read. The base
    file's rows of the batches its `copy` holds are read there (OpenRows)."""
    key = TABLES_BY_NAME[EVENTS].key
    newest = _later_keys(files, key)
    frames = []
    for number, path in enumerate(files):
        found, seen = [], []
        for column, values in wanted.items():
            holds = pl.col(column).is_in(values.implode(), nulls_equal=True)
            if number == 0 and copy is not None and column == "batch_id":
                copied, others = copy.split(values)
                part = pl.concat([copy.read(copied), _scan(path, column, others, _ROW)])
                part = part.sort(_ROW).drop(_ROW)  # the base's order
            else:
                part = _scan(path, column, values)
            if seen:  # rows an earlier column found already
                part = part.filter(~pl.any_horizontal(seen))
            found.append(part)
            seen.append(holds)
        rows_found = pl.concat(found)
        replaced = newest.filter(pl.col(_PART) > number).select(key)
        if replaced.height:
            rows_found = rows_found.join(replaced, on=key, how="anti", nulls_equal=True)
        frames.append(rows_found)
    return pl.concat(frames)


def _scan(path: Path, column: str, values: pl.Series, row: str | None = None) -> pl.DataFrame:
    """The rows of the file at `path` whose `column` holds one of `values` (a null matches a
    null), with their row numbers in a column `row` when given; a file's row groups whose
    statistics cannot hold them are not read, unless they are most of it."""
    stored = pl.scan_parquet(path, row_index_name=row)
    holds = pl.col(column).is_in(values.implode(), nulls_equal=True)
    if not values.len():
        return stored.head(0).collect()
    runs, rows = _row_groups(path, column, values)
    if sum(length for _, length in runs) > rows // 4:
        return stored.filter(holds).collect()
    return pl.concat(
        [stored.slice(start, length).filter(holds).collect() for start, length in runs]
        or [stored.head(0).collect()]
    )


def _row_groups(path: Path, column: str, wanted: pl.Series) -> tuple[list[tuple[int, int]], int]:
    """(first row, rows) of each run of consecutive row groups of a Parquet file whose
    `column` may hold one of the `wanted` values, by the groups' min and max; and the
    file's rows."""
    meta = pq.ParquetFile(path).metadata
    position = next(i for i in range(meta.num_columns) if meta.schema.column(i).name == column)
    values = sorted(wanted.drop_nulls().unique().to_list())
    null = wanted.null_count() > 0
    runs: list[tuple[int, int]] = []
    start = 0
    for number in range(meta.num_row_groups):
        group = meta.row_group(number)
        if _may_hold(group.column(position).statistics, values, null):
            if runs and sum(runs[-1]) == start:
                runs[-1] = (runs[-1][0], runs[-1][1] + group.num_rows)
            else:
                runs.append((start, group.num_rows))
        start += group.num_rows
    return runs, start


def _may_hold(stats: pq.Statistics | None, values: list[str], null: bool) -> bool:
    """Whether a row group with these statistics may hold one of the sorted `values` (or a
    null, when `null`); without statistics it may."""
    if stats is None or not stats.has_min_max:
        return True
    if null and (not stats.has_null_count or stats.null_count):
        return True
    # UTF-8 bytes, which Parquet's statistics compare, sort as Python's strings do.
    at = bisect_left(values, stats.min)
    return at < len(values) and values[at] <= stats.max


@cache
def etl_code() -> str:
    """What decides a run's output besides its source: the ETL's code (its files' bytes, not
    a git description, which an edit or a missing .git blurs) and the dataframe libraries.
    A live snapshot written by other code is not built on: the run is a full build."""
    root = Path(__file__).resolve().parent.parent
    files = sorted(root.glob("etl/**/*.py")) + [
        root / "warehouse" / "contract.py",
        root / "warehouse" / "layout.py",
    ]
    digest = hashlib.sha256(f"polars {pl.__version__} pyarrow {pa.__version__}".encode())
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


# --- what the next run keeps of this one -----------------------------------------------------


def digest(frame: pl.DataFrame) -> str:
    """A fingerprint of a frame's rows in any order (polars' fixed-seed row hash: sums of
    its 64-bit row hashes): a table's valid rows, a key set, rows read again."""
    hashes = frame.hash_rows(seed=0)
    # Two sums of 32-bit halves: order-free, and no overflow below 2**31 rows.
    high, low = (hashes // 2**32).sum(), (hashes % 2**32).sum()
    return f"polars {pl.__version__}: {frame.height} rows, {frame.columns}, {high}, {low}"


class LiveSnapshotError(Exception):
    """The live snapshot an incremental run builds on cannot be read as it was published."""


@dataclass
class EventFacts:
    """What other tables derive from all valid entries."""

    review: pl.DataFrame  # batch_id, __review: each batch's first REVIEW entry
    people: pl.DataFrame  # operator_id, batch_id: who performed or verified on which batch
    # Those of the facts equal to the live run's ("review", "people"): their files are kept.
    unchanged: frozenset[str] = frozenset()

    @classmethod
    def of(cls, events: pl.DataFrame) -> EventFacts:
        review = (
            events.lazy()
            .filter(pl.col("event_type") == "REVIEW")
            .group_by("batch_id")
            .agg(pl.col("performed_at").min().alias("__review"))
            .collect()
        )
        # Distinct (operator, batch) per column before the union: a union of both columns
        # copied 20M rows (1.4 GB on the large preset) only to deduplicate them.
        people = (
            pl.concat(
                [
                    events.lazy()
                    .select(pl.col(column).alias("operator_id"), "batch_id")
                    .drop_nulls()
                    .unique()
                    for column in ("performed_by", "verified_by")
                ]
            )
            .unique()
            .collect()
        )
        return cls(review, people)

    def replaced(self, dirty: pl.Series, fresh: EventFacts) -> EventFacts:
        """These facts with the dirty batches' taken from `fresh` (their entries judged again)."""
        mine = pl.col("batch_id").is_in(dirty.implode(), nulls_equal=True)
        unchanged = frozenset(
            name
            for name in ("review", "people")
            if _same_rows(getattr(self, name).filter(mine), getattr(fresh, name))
        )
        review = (
            self.review
            if "review" in unchanged
            else pl.concat([self.review.filter(~mine), fresh.review])
        )
        # The dirty batches' pairs are all fresh ones: the two parts hold distinct pairs.
        people = (
            self.people
            if "people" in unchanged
            else pl.concat([self.people.filter(~mine), fresh.people])
        )
        return EventFacts(review, people, unchanged)


def _live_batches(live: Path) -> pl.DataFrame:
    """The live snapshot's batches, their contract columns (LiveSnapshotError where their
    files cannot be read)."""
    columns = [c.name for c in TABLES_BY_NAME["batch"].columns]
    try:
        return pl.read_parquet(
            live / "batch" / "*" / "*.parquet",
            hive_partitioning=True,
            hive_schema={"sponsor_id": pl.String},
        ).select(columns)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise LiveSnapshotError(
            f"the live snapshot's batch files ({live / 'batch'}) cannot be read, so "
            f"the day's changed batches cannot be found: {exc}; run the job with --full"
        ) from exc


def _same_rows(one: pl.DataFrame, other: pl.DataFrame) -> bool:
    """Whether two frames hold the same distinct rows, in any order."""
    columns = one.columns
    return one.unique().sort(columns).equals(other.select(columns).unique().sort(columns))


@dataclass
class State:
    """The `_state/` folder of a snapshot."""

    digests: dict[str, str]  # digest of each table's valid rows (the entries aside)
    latest: dict[str, datetime | None]  # table -> latest parseable updated_at of its rows
    as_of: datetime
    quarantine: pl.DataFrame  # table, key, reason, values, batch_id, kinds
    facts: EventFacts
    # What the next run may reuse of the other tables' validation (etl.validate.Reuse): the
    # digests of what each table's verdicts read, and the tables with a row in the future.
    inputs: dict[str, dict[str, str]] = field(default_factory=dict)
    future: list[str] = field(default_factory=list)
    # Per table (the entries aside), digest of the rows the next run reads again when
    # nothing changed (etl.extract._reread): equal, the table is unchanged, its file unread.
    reread: dict[str, str] = field(default_factory=dict)
    # Per keepable table, what its published rows are made of (etl.route.Router.signature):
    # equal in the next run, that run keeps the table's files whole.
    signatures: dict[str, str] = field(default_factory=dict)
    # Tables whose extracted text may hold a value that is not UTF-8 (etl.validate's
    # UNDECODABLE): a run that builds on that text checks it again.
    undecodable: list[str] = field(default_factory=list)
    code: str | None = None  # the etl_code() that wrote a state read back (written: this one)
    # What masking compares the next run's identifiers with (etl.route.Before): every
    # identifier searched for (needle, kind, sponsor_id), and the distinct free texts of
    # the entries published, those of batches judged again since included (a superset).
    names: pl.DataFrame | None = None
    entry_texts: pl.Series | None = None

    def write(self, snapshot: Path, live: Path | None = None) -> None:
        """The state folder of `snapshot`; facts equal to the live run's keep the files of
        the `live` snapshot (hard links)."""
        folder = snapshot / STATE
        folder.mkdir()
        meta = {
            "digests": self.digests,
            "latest": {
                name: value.isoformat() if value else None for name, value in self.latest.items()
            },
            "as_of": self.as_of.isoformat(),
            "inputs": self.inputs,
            "future": self.future,
            "reread": self.reread,
            "signatures": self.signatures,
            "undecodable": self.undecodable,
            "code": etl_code(),
        }
        (folder / "state.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        self.quarantine.write_parquet(folder / "quarantine.parquet")
        assert self.names is not None and self.entry_texts is not None
        self.names.unique().write_parquet(folder / "identifiers.parquet")
        self.entry_texts.to_frame("text").write_parquet(folder / "entry_texts.parquet")
        # In no particular order (sorting the 484k pairs of `large` took 0.17 s of a day's
        # run): only this code reads them, as sets.
        for name in ("review", "people"):
            if live is not None and name in self.facts.unchanged:
                os.link(live / STATE / f"{name}.parquet", folder / f"{name}.parquet")
            else:
                getattr(self.facts, name).write_parquet(folder / f"{name}.parquet")

    @classmethod
    def read(cls, snapshot: Path) -> State | None:
        """The run state of `snapshot`; None for a snapshot of an older release, and
        RunStateError where a file of it cannot be read."""
        folder = snapshot / STATE
        if not (folder / "state.json").is_file():
            return None  # a snapshot of an older release: the next run judges every entry
        meta = read_state_json(folder / "state.json", _is_state)
        try:
            latest = {
                name: datetime.fromisoformat(value) if value else None
                for name, value in meta["latest"].items()
            }
            as_of = datetime.fromisoformat(meta["as_of"])
        except ValueError as exc:  # not an ISO date-time
            raise RunStateError(f"state.json cannot be read ({exc})") from exc
        return cls(
            digests=meta["digests"],
            latest=latest,
            as_of=as_of,
            quarantine=_state_frame(folder / "quarantine.parquet"),
            facts=EventFacts(
                _state_frame(folder / "review.parquet"), _state_frame(folder / "people.parquet")
            ),
            inputs=meta.get("inputs", {}),
            future=meta.get("future", []),
            reread=meta.get("reread", {}),
            signatures=meta.get("signatures", {}),
            undecodable=meta.get("undecodable", []),
            code=meta.get("code"),
            names=_state_frame(folder / "identifiers.parquet"),
            entry_texts=_state_column(folder / "entry_texts.parquet", "text"),
        )


def _is_state(value: object) -> bool:
    """state.json as State.write writes it."""
    return (
        isinstance(value, dict)
        and is_mapping_of(value.get("digests"), is_text)
        and is_mapping_of(value.get("latest"), lambda at: at is None or is_text(at))
        and is_text(value.get("as_of"))
        and is_mapping_of(value.get("inputs", {}), lambda read: is_mapping_of(read, is_text))
        and isinstance(value.get("future", []), list)
        and all(map(is_text, value.get("future", [])))
        and is_mapping_of(value.get("reread", {}), is_text)
        and is_mapping_of(value.get("signatures", {}), is_text)
        and isinstance(value.get("undecodable", []), list)
        and all(map(is_text, value.get("undecodable", [])))
        and (value.get("code") is None or is_text(value.get("code")))
    )


def _state_frame(path: Path) -> pl.DataFrame:
    try:
        return pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise RunStateError(f"{STATE}/{path.name} cannot be read ({exc})") from exc


def _state_column(path: Path, column: str) -> pl.Series:
    frame = _state_frame(path)
    if column not in frame.columns:
        raise RunStateError(f"{STATE}/{path.name} cannot be read (no column {column})")
    return frame.get_column(column)


def with_kind(quarantine: pl.DataFrame, suffix: str) -> pl.DataFrame:
    """Quarantined rows with a reason of a kind ending in `suffix`."""
    return quarantine.filter(
        pl.col("kinds").list.eval(pl.element().str.ends_with(suffix)).list.any()
    )


def _future(state: State) -> pl.Series:
    """Batches with an entry quarantined as in the future: the source's as-of has moved."""
    return with_kind(state.quarantine, FUTURE).get_column("batch_id")


# --- the entries of one run ----------------------------------------------------------------


@dataclass
class Events:
    """How one run treats the entries: all judged (a full extract, a merge, or something in
    `GLOBAL` changed) or only the dirty batches' (a delta run whose inputs allow it).
    """

    files: list[Path]  # the run's extracted text of the entries, oldest first
    earlier: list[Path] = field(default_factory=list)  # of them, the live snapshot's
    changes: pl.DataFrame | None = None  # this run's delta; None: every entry is judged
    previous: State | None = None  # the live snapshot's state (delta runs)
    live: Path | None = None  # the live snapshot (delta runs)
    replaced: pl.DataFrame | None = None  # live rows of earlier files that `changes` replace
    dirty: pl.Series | None = None  # batch ids judged again; None: every entry
    # (partition, file) whose published entries change: where the dirty batches were
    touched: frozenset[tuple[str, str]] = frozenset()
    near: pl.DataFrame | None = None  # live rows of earlier files, not replaced, maybe judged
    scanned: pl.Series | None = None  # batches whose live entries are all in `near`
    copy: OpenRows | None = None  # of the first earlier file, the rows of open batches
    every: bool = False  # every entry judged, whatever `choose` would allow (`judge_every`)
    # The live snapshot's batches, read by a thread while the run extracts (`choose`
    # compares them with the valid ones; read when asked, 0.03-0.07 s of a day's run).
    _before: Future[pl.DataFrame] | None = None

    @property
    def key(self) -> str:
        return TABLES_BY_NAME[EVENTS].key

    def find_replaced(self, batches: pl.Series) -> None:
        """The live rows of the earlier files whose keys this run's changes carry; and, in
        the same scan, every other live row this run is likely to judge again (`near`): the
        entries of the changes' batches, of `batches` (those the day's batch changes name)
        and of batches with an entry "in the future", and every copy of a duplicated key.
        A scan reads the row groups that may hold a wanted batch or key (live_rows)."""
        if self.changes is None:
            return
        assert self.previous is not None
        keys = self.changes.get_column(self.key).unique()  # a null: the rows without a key
        # A key with copies among earlier files had them at the last run: they are all
        # quarantined as duplicates (a changed key's copies are replaced, not added).
        copied = with_kind(self.previous.quarantine, f"duplicate {self.key}").get_column("key")
        self.scanned = pl.concat(
            [self.changes.get_column("batch_id"), batches, _future(self.previous)]
        ).unique()
        changed = pl.col(self.key).is_in(keys.implode(), nulls_equal=True)
        found = live_rows(
            self.earlier,
            {"batch_id": self.scanned, self.key: pl.concat([keys, copied])},
            self.copy,
        )
        self.replaced = found.filter(changed)
        self.near = found.filter(~changed)

    def rows(self, previous_rows: int) -> int:
        """Live rows now, from the live snapshot's count."""
        if self.changes is None or self.replaced is None:
            raise ValueError("not a delta run")
        return previous_rows - self.replaced.height + self.changes.height

    def read_live_batches(self) -> None:
        """Start reading the live snapshot's batches (`choose` waits for them), in a
        thread of its own."""
        if self.live is not None and self._before is None:
            pool = ThreadPoolExecutor(1, thread_name_prefix="live-batches")
            self._before = pool.submit(_live_batches, self.live)
            pool.shutdown(wait=False)  # its thread ends with the task

    def choose(self, valid: dict[str, pl.DataFrame], as_of: datetime) -> None:
        """Decide which batches' entries this run judges (sets `dirty` and `touched`)."""
        state = self.previous
        if (
            self.every
            or state is None
            or self.changes is None
            or self.live is None
            or as_of < state.as_of
        ):
            return
        if any(digest(valid[name]) != state.digests.get(name) for name in GLOBAL):
            return
        self.read_live_batches()
        assert self._before is not None
        before = self._before.result()
        columns = before.columns
        now = valid["batch"].select(columns)
        changed = pl.concat(
            [
                before.join(now, on=columns, how="anti", nulls_equal=True),
                now.join(before, on=columns, how="anti", nulls_equal=True),
            ]
        ).get_column("batch_id")
        assert self.replaced is not None
        dirty = pl.concat(
            [
                self.changes.get_column("batch_id"),
                self.replaced.get_column("batch_id"),
                changed,
                _future(state),
            ]
        ).unique()
        owners = before.filter(pl.col("batch_id").is_in(dirty.implode(), nulls_equal=True))
        self.dirty = dirty
        settled = pl.col("status").is_in(list(SETTLED_STATUSES))
        places = owners.select("sponsor_id", split_file(pl.col("batch_id"), settled))
        self.touched = frozenset(
            (sponsor, SPLIT_FILES[number]) for sponsor, number in places.iter_rows()
        )

    def judge_every(self) -> None:
        """Judge every entry after all (a judged run's choice undone): the run is judged
        again so."""
        self.every, self.dirty, self.touched = True, None, frozenset()

    def to_judge(self) -> tuple[pl.Series, list[pl.DataFrame]]:
        """The dirty batches' live entries, and every live key among theirs (for copies)."""
        assert self.dirty is not None and self.near is not None and self.changes is not None
        unseen = self.dirty.filter(~self.dirty.is_in(self.scanned.implode(), nulls_equal=True))
        if unseen.len():
            # Batches the first scan did not know dirty (one whose row became valid or
            # invalid, or an entry moved away from it): a second scan. Copies of their keys
            # are duplicates, already scanned.
            of_unseen = pl.col("batch_id").is_in(unseen.implode(), nulls_equal=True)
            more = live_rows(self.earlier, {"batch_id": unseen}, self.copy)
            replaced = pl.col(self.key).is_in(
                self.changes.get_column(self.key).implode(), nulls_equal=True
            )
            self.near = pl.concat([self.near.filter(~of_unseen), more.filter(~replaced)])
        # Every live row of the earlier files that the scans found, then the changes. Not in
        # file order across batches (rows found by key follow those found by batch), but a
        # batch's rows keep their order; derive sorts entries by batch and step, publish
        # by key.
        live = pl.concat([self.near, self.changes.select(self.near.columns)])
        rows = live.filter(pl.col("batch_id").is_in(self.dirty.implode(), nulls_equal=True))
        keys = rows.get_column(self.key).drop_nulls().unique()
        copies = live.filter(pl.col(self.key).is_in(keys.implode()))
        return copies.get_column(self.key), [rows]

    def quarantine(self, judged: pl.DataFrame) -> pl.DataFrame:
        """Every quarantined entry after this run: the judged ones, and the live snapshot's
        of batches not judged again; in key order (a full build's order too)."""
        fresh = judged.with_columns(
            pl.col("values").str.json_path_match("$.batch_id").alias("batch_id")
        )
        if self.dirty is not None:
            assert self.previous is not None
            kept = self.previous.quarantine.filter(
                ~pl.col("batch_id").is_in(self.dirty.implode(), nulls_equal=True)
            )
            fresh = pl.concat([kept, fresh.select(kept.columns)])
        return fresh.sort("key", "values", nulls_last=True)
