"""The ETL's declarations hold: routing is declared per table in the contract, and each
derivation reads exactly the valid tables it declares (what incremental runs rely on to know
what a change can affect)."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.derive import DERIVED
from etl.incremental import EVENTS, EventFacts
from warehouse.contract import (
    TABLES,
    TABLES_BY_NAME,
    Backref,
    Both,
    Everyone,
    Ref,
    check_routes,
)
from warehouse.layout import current_snapshot


class _Reads(dict):
    """The valid tables, recording which ones are read."""

    def __init__(self, frames: dict[str, pl.DataFrame]) -> None:
        super().__init__(frames)
        self.read: set[str] = set()

    def __getitem__(self, name: str) -> pl.DataFrame:
        self.read.add(name)
        return super().__getitem__(name)


@pytest.fixture(scope="module")
def valid(demo_warehouse: Path) -> dict[str, pl.DataFrame]:
    """Every table's rows as the live snapshot publishes them, one copy per key, in the
    contract's columns (a shared record's copies differ only in masked free text)."""
    live = current_snapshot(demo_warehouse)
    frames = {}
    for t in TABLES:
        # A direct table's sponsor_id is its partition directory.
        files = live / t.name / "sponsor_id=*" / "*.parquet"
        frame = pl.read_parquet(files, hive_partitioning=True)
        columns = [c for c in t.column_names if c in frame.columns]
        frames[t.name] = frame.select(columns).unique(t.key, keep="first", maintain_order=True)
    return frames


@pytest.mark.parametrize("table", sorted(DERIVED))
def test_each_derivation_reads_exactly_what_it_declares(table, valid) -> None:
    reads = _Reads(valid)
    facts = _Facts(EventFacts.of(valid[EVENTS]))
    derived = DERIVED[table].of(table, reads, facts)
    assert derived.height == valid[table].height
    assert reads.read == set(DERIVED[table].reads), (
        f"{table} reads {sorted(reads.read)}, declares {sorted(DERIVED[table].reads)}"
    )
    # What an incremental run keeps whole on its signature must not read the facts unsaid.
    assert facts.read == DERIVED[table].facts, f"{table} reads the facts: {facts.read}"


def test_a_derivation_is_handed_only_the_columns_it_declares(valid) -> None:
    """Of a table whose columns a derivation declares (the batches' sponsor, for the
    equipment's previous occupant), it is handed those of the rows its own rows name: one
    more column read is an error, not a read the incremental signature misses."""
    from dataclasses import replace

    facts = EventFacts.of(valid[EVENTS])
    declared = DERIVED["equipment_usage"]
    assert declared.columns == {"batch": ("batch_id", "sponsor_id")}
    seen: dict[str, pl.DataFrame] = {}

    def spy(v, facts):  # noqa: ANN001, ANN202 - the derivation's own signature
        seen["batch"] = v["batch"]
        return declared.derive(v, facts)

    derived = replace(declared, derive=spy).of("equipment_usage", valid, facts)
    assert derived.height == valid["equipment_usage"].height
    used = valid["equipment_usage"].get_column("batch_id").unique()
    assert seen["batch"].columns == ["batch_id", "sponsor_id"]
    assert set(seen["batch"].get_column("batch_id")) == set(used.drop_nulls())
    narrower = replace(declared, columns={"batch": ("batch_id",)})
    with pytest.raises(pl.exceptions.ColumnNotFoundError):
        narrower.of("equipment_usage", valid, facts)


@pytest.mark.parametrize("table", sorted(t for t, d in DERIVED.items() if d.groups))
def test_a_derivation_by_group_derives_a_group_alone_as_among_all(table, valid) -> None:
    """A derivation declaring `groups` (an incremental run derives only the groups a change
    reaches: etl.route.regrouped) gives a group's rows derived alone what it gives them
    derived with every other group, for groups taken one by one and together."""
    declared, key = DERIVED[table], TABLES_BY_NAME[table].key
    facts = EventFacts.of(valid[EVENTS])
    everything = declared.of(table, valid, facts)
    groups = valid[table].get_column(declared.groups).unique().sort()
    assert groups.len() >= 4
    for some in (groups[:1], groups[1:2], groups[-1:], groups[::3]):
        rows = valid[table].filter(pl.col(declared.groups).is_in(some.implode()))
        alone = declared.of(table, {**valid, table: rows}, facts)
        among = everything.filter(pl.col(declared.groups).is_in(some.implode()))
        assert alone.height == rows.height
        assert alone.sort(key).equals(among.sort(key)), list(some)


class _Facts:
    """The entries' facts, noting whether any was read."""

    def __init__(self, facts: EventFacts) -> None:
        self._facts, self.read = facts, False

    def __getattr__(self, name: str) -> object:
        self.read = True
        return getattr(self._facts, name)


def test_the_contract_declares_every_shared_table_s_reach() -> None:
    check_routes(TABLES)
    shared = {t.name for t in TABLES if t.route == "fanout"}
    assert shared == {t.name for t in TABLES if t.reach}
    assert {"deviation", "change_control", "operator", "equipment", "sop"} <= shared


def _with(name: str, **changes) -> tuple:
    return (dataclasses.replace(TABLES_BY_NAME[name], **changes),)


@pytest.mark.parametrize(
    ("tables", "says"),
    [
        (_with("deviation", reach=()), "declares its reach"),
        (_with("sponsor", reach=(Everyone(),)), "declares its reach"),
        (_with("deviation", route="everywhere"), "unknown route"),
        (_with("product_sop", parent=None), "names its parent"),
        (_with("deviation", reach=(Ref("title"),)), "names no table"),
        (_with("deviation", reach=(Ref("no_such_column"),)), "names no table"),
        (
            _with("deviation", reach=(Backref("change_impact", ("change_id",)),)),
            "does not reference",
        ),
        (
            _with("deviation", reach=(Backref("deviation_link", ("sponsor_id",)),)),
            "does not reference",
        ),
        (_with("deviation", reach=(Backref("deviation_link", ()),)), "does not reference"),
        (_with("sop", reach=(Everyone(when=("scope", "GLOBAL")),)), "is not a value"),
        (_with("sop", reach=(Everyone(when=("title", "x")),)), "is not a value"),
        (
            _with("training_record", reach=(Both(Ref("operator_id"), Ref("trained_at")),)),
            "names no table",
        ),
    ],
)
def test_a_badly_declared_route_is_refused(tables, says) -> None:
    with pytest.raises(ValueError, match=says):
        check_routes(tables)


def _frames(keys: dict[str, list[str]]) -> dict[str, pl.DataFrame]:
    """One frame per contract table: `keys` for the tables named, no rows for the others."""
    return {
        t.name: pl.DataFrame({t.key: keys.get(t.name, [])}, schema={t.key: pl.String})
        for t in TABLES
    }


@pytest.mark.parametrize(
    ("published", "refused"),
    [
        (["E1", "E2", "E3"], False),  # one copy each
        (["E3", "E1", "E2", "E2"], False),  # a shared row in two partitions
        (["E1", "E1", "E3"], True),  # as many rows, but E2 lost and E1 twice
        (["E1", "E2", "E9"], True),  # as many rows, but one that is no valid row
        (["E1", "E2"], True),  # a valid row reaches no partition
    ],
)
def test_every_valid_row_is_published_and_nothing_else(published, refused) -> None:
    from etl.run import EtlError, _reconcile

    valid = _frames({EVENTS: ["E1", "E2", "E3"]})
    if refused:
        with pytest.raises(EtlError, match=f"table {EVENTS}: 3 valid rows"):
            _reconcile(valid, _frames({EVENTS: published}))
    else:
        _reconcile(valid, _frames({EVENTS: published}))


def _stripped_first(kind: str, text: pl.Expr) -> pl.Expr:
    """Validation's parsing as it was: every value stripped, then parsed (the reference)."""
    from etl.validate import parse

    return parse(kind, text.str.strip_chars())


_PADDING = st.sampled_from(["", " ", "  ", "\t", "\n", " \r\n", "\u00a0", "\u2003"])
_TEXT = {
    "datetime": st.sampled_from([
        "2026-11-30T08:15:00", "2026-11-30T08:15:00.250", "2026-11-30 08:15:00",
        "2026-11-30 08:15:00.5", "2026-02-30T08:15:00", "2026-11-30T24:00:00", "2026-11-30",
        "30/11/2026 08:15", "2026-11-30T08:15:00Z", "yesterday", "2026-11-30T08:15",
    ]),
    "date": st.sampled_from(["2026-11-30", "2026-02-30", "2026-11-30T08:15:00", "30.11.2026",
                              "20261130", "soon"]),
    "int": st.sampled_from(["5", "-5", "+5", "05", "5.0", "2.5", "1e3", "five", "9" * 20]),
    "float": st.sampled_from(["2.5", "-0.5", "5", "1e3", "1e400", "inf", "-inf", "nan", "NaN",
                               "2,5", "two"]),
}  # fmt: skip


@given(data=st.data())
@settings(max_examples=150, deadline=None)
def test_parsing_as_written_first_equals_stripping_every_value(data) -> None:
    """Parsing each value as written, and stripped only where that fails, gives what stripping
    every value first gave, for clean, padded and malformed text of every parsed type."""
    from etl.validate import parse

    for kind, values in _TEXT.items():
        texts = data.draw(st.lists(st.builds(lambda a, v, b: a + v + b, _PADDING, values,
                                             _PADDING), min_size=1, max_size=12))  # fmt: skip
        frame = pl.DataFrame({"t": texts}, schema={"t": pl.String})
        ours = frame.select(parse(kind, pl.col("t"))).to_series()
        reference = frame.select(_stripped_first(kind, pl.col("t"))).to_series()
        assert ours.to_list() == reference.to_list(), (kind, texts)


_CLEAN = {"datetime": "2026-11-30T08:15:00", "date": "2026-11-30", "int": "5", "float": "2.5"}


@given(data=st.data())
@settings(max_examples=150, deadline=None)
def test_a_column_parsed_as_written_is_parsed_as_in_general(data) -> None:
    """Validation takes a column's quick parse where every value of it parses as written, and
    the general parse otherwise: either way each column's values are the general parse's."""
    from types import SimpleNamespace

    from etl.validate import _typed, parse

    columns, texts = [], {}
    for kind, values in _TEXT.items():
        clean = st.one_of(st.just(_CLEAN[kind]), st.none())
        hostile = st.builds(lambda a, v, b: a + v + b, _PADDING, values, _PADDING)
        # Clean columns often, so the quick path is taken, and some hostile values otherwise.
        value = data.draw(st.sampled_from([clean, st.one_of(clean, hostile)]))
        texts[kind] = data.draw(st.lists(value, min_size=1, max_size=8))
        columns.append(SimpleNamespace(name=kind, type=kind))
    length = min(len(values) for values in texts.values())
    frame = pl.DataFrame({k: v[:length] for k, v in texts.items()},
                         schema={k: pl.String for k in texts})  # fmt: skip
    typed = _typed(frame, SimpleNamespace(columns=columns))
    for kind in texts:
        general = frame.select(parse(kind, pl.col(kind))).to_series()
        assert typed.get_column(f"__t_{kind}").to_list() == general.to_list(), (kind, frame)


def test_a_partition_s_fingerprint_is_its_rows_in_any_order() -> None:
    """A partition file is kept unread when its rows have the live file's fingerprint, so the
    fingerprint must change with any row, value, column type or partition, and never with
    row order."""
    from etl.publish import fingerprints

    frame = pl.DataFrame(
        {
            "key": ["a", "b", "c", "d"],
            "value": [1.5, None, 3.0, 4.0],
            "text": ["x", "y", None, "z"],
            "sponsor_id": ["S1", "S1", "S2", "S1"],
        }
    )
    parts = ["S1", "S2", "S3"]
    prints = fingerprints(frame, parts, "v1")
    assert set(prints) == set(parts) and len(set(prints.values())) == 3
    assert fingerprints(frame.reverse(), parts, "v1") == prints
    assert fingerprints(frame.sample(fraction=1, shuffle=True, seed=3), parts, "v1") == prints
    # Another value, a row moved to another partition, another type, another writer.
    changed = frame.with_columns(
        pl.when(pl.col("key") == "d").then(4.5).otherwise("value").alias("value")
    )
    assert fingerprints(changed, parts, "v1")["S1"] != prints["S1"]
    assert fingerprints(changed, parts, "v1")["S2"] == prints["S2"]
    moved = frame.with_columns(pl.when(pl.col("key") == "b").then(pl.lit("S2")).otherwise(
        "sponsor_id").alias("sponsor_id"))  # fmt: skip
    assert fingerprints(moved, parts, "v1")["S1"] != prints["S1"]
    assert fingerprints(moved, parts, "v1")["S2"] != prints["S2"]
    signed = frame.with_columns(pl.Series("value", [1.5, None, -0.0, 4.0]))
    zero = frame.with_columns(pl.Series("value", [1.5, None, 0.0, 4.0]))
    assert fingerprints(signed, parts, "v1")["S2"] != fingerprints(zero, parts, "v1")["S2"]
    retyped = frame.with_columns(pl.col("value").cast(pl.Float32))
    assert fingerprints(retyped, parts, "v1")["S1"] != prints["S1"]
    assert fingerprints(frame, parts, "v2")["S1"] != prints["S1"]
    # Rows that swap values between them are other rows.
    swapped = frame.with_columns(pl.Series("text", ["y", "x", None, "z"]))
    assert fingerprints(swapped, parts, "v1")["S1"] != prints["S1"]
    # A partition emptied is another file than one holding rows.
    emptied = frame.filter(pl.col("sponsor_id") != "S2")
    assert fingerprints(emptied, parts, "v1")["S2"] == prints["S3"]


_DAY0 = date(2026, 1, 1)
_dates = st.integers(0, 12).map(lambda n: _DAY0 + timedelta(days=n))


@settings(max_examples=300, deadline=None)
@given(
    links=st.lists(st.tuples(st.sampled_from("PQ"), st.sampled_from("ABC")), max_size=6),
    records=st.lists(
        st.tuples(st.sampled_from("xy"), st.sampled_from("ABC"), _dates,
                  st.one_of(st.none(), _dates)),
        max_size=14,
    ),
    days=st.lists(st.tuples(st.sampled_from("xyz"), st.sampled_from("PQR"), _dates),
                  min_size=1, max_size=30),
)  # fmt: skip
def test_a_training_gap_is_a_day_some_sop_of_the_product_is_not_covered(
    links, records, days
) -> None:
    """The derived training_gap equals its definition (DOMAIN.md), day by day: some SOP of
    the batch's product has no training record of the operator with trained_at <= day <=
    due_at, a missing due_at never expiring."""
    from etl.derive import _training_gaps

    product_sop = pl.DataFrame(
        links, schema={"product_id": pl.String, "sop_id": pl.String}, orient="row"
    )
    training = pl.DataFrame(
        records, schema={"operator_id": pl.String, "sop_id": pl.String,
                         "trained_at": pl.Date, "due_at": pl.Date}, orient="row",
    )  # fmt: skip
    asked = pl.DataFrame(
        days, schema={"performed_by": pl.String, "product_id": pl.String, "__day": pl.Date},
        orient="row",
    ).unique()  # fmt: skip
    gaps = _training_gaps(asked, product_sop, training)
    found = {
        (op, product, day): gap
        for op, product, day, gap in gaps.select(
            "performed_by", "product_id", "__day", "training_gap"
        ).iter_rows()
    }
    for op, product, day in asked.iter_rows():
        sops = {sop for p, sop in links if p == product}
        expected = any(
            not any(o == op and s == sop and start <= day <= (due or date.max)
                    for o, s, start, due in records)
            for sop in sops
        )  # fmt: skip
        assert found.get((op, product, day), False) == expected, (op, product, day)


_T0 = datetime(2026, 1, 1)
_instants = st.integers(0, 8).map(lambda n: _T0 + timedelta(hours=12 * n))


@settings(max_examples=300, deadline=None)
@given(
    uses=st.lists(
        st.tuples(st.sampled_from("EF"), st.sampled_from(["B1", "B2", "B3", "B4"]), _instants),
        max_size=10,
    ),
    owners=st.fixed_dictionaries(
        {"B1": st.sampled_from(["S1", "S2"]), "B2": st.sampled_from(["S1", "S2"]),
         "B3": st.sampled_from(["S1", "S2"])}
    ),
    events=st.lists(
        st.tuples(st.sampled_from("EF"), st.sampled_from(["CALIBRATION", "QUALIFICATION"]),
                  _instants, st.sampled_from(["PASS", "FAIL"]),
                  st.integers(-1, 4).map(lambda n: _T0.date() + timedelta(days=n))),
        max_size=10,
    ),
)  # fmt: skip
def test_equipment_use_is_derived_as_defined(uses, owners, events) -> None:
    """Each use's previous occupant and fitness equal their definitions (DOMAIN.md): the
    use before it on the same equipment (by start, then id), named only if its batch is the
    same sponsor's; and the latest calibration or qualification performed up to the start
    (of one instant, a PASS counts; then the later id), fit if it passed and is due no
    earlier than the day of use. B4 has no valid batch row."""
    from etl.derive import _equipment_usage

    usage = pl.DataFrame(
        [(f"U{n}", eq, batch, at, at + timedelta(hours=1)) for n, (eq, batch, at) in
         enumerate(uses)],
        schema={"usage_id": pl.String, "equipment_id": pl.String, "batch_id": pl.String,
                "started_at": pl.Datetime("us"), "ended_at": pl.Datetime("us")},
        orient="row",
    )  # fmt: skip
    batch = pl.DataFrame({"batch_id": list(owners), "sponsor_id": list(owners.values())})
    equipment_event = pl.DataFrame(
        [(f"EV{n}", *event) for n, event in enumerate(events)],
        schema={"equipment_event_id": pl.String, "equipment_id": pl.String,
                "event_type": pl.String, "performed_at": pl.Datetime("us"),
                "result": pl.String, "next_due": pl.Date},
        orient="row",
    )  # fmt: skip
    derived = _equipment_usage(
        {"equipment_usage": usage, "batch": batch, "equipment_event": equipment_event}
    )
    assert derived.height == usage.height
    rows = {row["usage_id"]: row for row in derived.iter_rows(named=True)}
    for n, (eq, batch_id, at) in enumerate(uses):
        row = rows[f"U{n}"]
        before = sorted(
            (other_at, f"U{m}", other_batch)
            for m, (other_eq, other_batch, other_at) in enumerate(uses)
            if other_eq == eq and (other_at, f"U{m}") < (at, f"U{n}")
        )
        if not before:
            assert (row["previous_occupant"], row["previous_batch_id"]) == (None, None)
            assert row["previous_ended_at"] is None
        else:
            previous_at, _, previous_batch = before[-1]
            mine, theirs = owners.get(batch_id), owners.get(previous_batch)
            same = mine is not None and mine == theirs
            assert row["previous_occupant"] == ("SAME_SPONSOR" if same else "ANOTHER_CLIENT")
            assert row["previous_batch_id"] == (previous_batch if same else None)
            assert row["previous_ended_at"] == previous_at + timedelta(hours=1)
        for kind in ("CALIBRATION", "QUALIFICATION"):
            what = kind.lower()
            done = sorted(
                (performed, result == "PASS", f"EV{m}", result, due)
                for m, (other_eq, event_kind, performed, result, due) in enumerate(events)
                if other_eq == eq and event_kind == kind and performed <= at
            )
            latest = done[-1] if done else None
            assert row[f"latest_{what}_at"] == (latest[0] if latest else None)
            assert row[f"latest_{what}_result"] == (latest[3] if latest else None)
            assert row[f"latest_{what}_due"] == (latest[4] if latest else None)
            fit = latest is not None and latest[3] == "PASS" and latest[4] >= at.date()
            assert row[f"{what}_valid_at_use"] == fit, (n, kind)


def test_row_groups_are_read_only_where_their_statistics_allow_a_wanted_value(
    tmp_path: Path,
) -> None:
    """live_rows reads a file only in the row groups whose min and max may hold a wanted
    value: a group with a null is read for a wanted null, and a file without statistics is
    read whole."""
    from etl.incremental import _row_groups

    keys = [f"EV-{n:04d}" for n in range(100)]
    keys[55] = None  # a null in the sixth group of ten
    frame = pl.DataFrame({"event_id": keys})
    path = tmp_path / "text.parquet"
    frame.write_parquet(path, row_group_size=10, statistics=True)

    def wanted(*values: str | None) -> tuple[list[tuple[int, int]], int]:
        return _row_groups(path, "event_id", pl.Series(list(values), dtype=pl.String))

    assert wanted("EV-0003") == ([(0, 10)], 100)
    assert wanted("EV-0003", "EV-0012", "EV-0099") == ([(0, 20), (90, 10)], 100)
    assert wanted("EV-0100", "A", "EV-0035x") == ([(30, 10)], 100)  # within a group, absent
    assert wanted("ZZ") == ([], 100)
    assert wanted(None) == ([(50, 10)], 100)
    bare = tmp_path / "bare.parquet"
    frame.write_parquet(bare, row_group_size=10, statistics=False)
    assert _row_groups(bare, "event_id", pl.Series(["ZZ"])) == ([(0, 100)], 100)


@given(
    live=st.dictionaries(st.integers(0, 60), st.sampled_from(("B-1", "B-2", "B-3")), max_size=30),
    new=st.dictionaries(st.integers(0, 60), st.sampled_from(("B-1", "B-2")), max_size=10),
    dirty=st.sets(st.sampled_from(("B-1", "B-2", "B-3")), min_size=1),
    shuffled=st.booleans(),
)
@settings(max_examples=150, deadline=None)
def test_a_merged_file_of_entries_is_its_other_batches_rows_and_the_new_ones_in_key_order(
    live, new, dirty, shuffled
) -> None:
    """An incremental run rewrites a file of entries (etl.publish.Carried) as the live
    file's rows of the batches not judged again and the judged rows, in key order, merged
    when both are in key order (a file's are) and sorted when not; and says whether that is
    exactly the live file."""
    import tempfile

    from etl.publish import Carried

    def frame(rows: dict[int, str]) -> pl.DataFrame:
        keys = sorted(rows)
        return pl.DataFrame(
            {"event_id": [f"EV-{key:02d}" for key in keys], "batch_id": [rows[k] for k in keys],
             "seq": [key * 10 for key in keys]},
            schema={"event_id": pl.String, "batch_id": pl.String, "seq": pl.Int64},
        )  # fmt: skip

    live_rows = frame(live)
    judged = {key: batch for key, batch in new.items() if batch in dirty}
    judged |= {key: batch for key, batch in live.items() if batch in dirty and shuffled}
    rows = frame(judged)
    if shuffled:
        rows = rows.reverse()
    carried = Carried("batch_event", pl.Series("batch_id", sorted(dirty)), frozenset())
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "part-1.parquet"
        live_rows.write_parquet(path)
        merged, same = carried.merged(path, rows, "event_id")
        missing, _ = carried.merged(Path(folder) / "none.parquet", rows, "event_id")
    others = {key: batch for key, batch in live.items() if batch not in dirty}
    expected = frame({**others, **{k: b for k, b in judged.items() if k not in others}})
    if not set(others) & set(judged):
        assert merged.equals(expected)
    assert merged.get_column("event_id").is_sorted()
    assert same == merged.equals(live_rows)
    assert missing.equals(rows)


_OWNERS = st.dictionaries(
    st.sampled_from(("B-1", "B-2", "B-3", "B-4")), st.sampled_from(("S-1", "S-2", "S-3"))
)


@given(
    before=_OWNERS,
    now=_OWNERS,
    named=st.lists(st.sampled_from(("B-1", "B-2", "B-3", "B-4", "B-5")), max_size=8),
)
@settings(max_examples=200, deadline=None)
def test_a_partition_is_unmoved_only_where_its_rows_are_the_live_ones(before, now, named) -> None:
    """etl.route.unmoved: of a table routed via its batch, whose valid rows are the live
    run's, a partition said unmoved holds the same rows as in the live run whatever batches
    changed sponsor, appeared or went (their rows then in SITE); a partition its rows left
    or joined is not said unmoved."""
    from etl.route import Router, unmoved
    from warehouse.contract import SITE_PARTITION

    def owners(mapping: dict[str, str]) -> pl.DataFrame:
        return pl.DataFrame(
            {"batch_id": list(mapping), "sponsor_id": list(mapping.values())},
            schema={"batch_id": pl.String, "sponsor_id": pl.String},
        )

    tests = pl.DataFrame(
        {"test_id": [f"T-{n}" for n in range(len(named))], "batch_id": named},
        schema={"test_id": pl.String, "batch_id": pl.String},
    )
    partitions = ["S-1", "S-2", "S-3", SITE_PARTITION]
    valid = {"sponsor": pl.DataFrame({"sponsor_id": partitions[:-1]}), "batch": owners(now),
             "test_result": tests}  # fmt: skip
    facts = EventFacts(pl.DataFrame(), pl.DataFrame())
    said = unmoved(Router(valid, facts), {"test_result"}, lambda _: owners(before), partitions)
    assert set(said) == {"test_result"}

    def rows_in(mapping: dict[str, str], partition: str) -> set[str]:
        return {f"T-{n}" for n, batch in enumerate(named)
                if mapping.get(batch, SITE_PARTITION) == partition}  # fmt: skip

    for partition in partitions:
        same = rows_in(before, partition) == rows_in(now, partition)
        assert (partition in said["test_result"]) == same, partition
    assert unmoved(Router(valid, facts), {"test_result"}, lambda _: None, partitions) == {}
    assert unmoved(Router(valid, facts), set(), lambda _: owners(before), partitions) == {}


_BATCHES = ("B-1", "B-2", "B-3", "B-4", "B-5", None)


@given(
    batches=st.lists(st.sampled_from(_BATCHES), min_size=1, max_size=60),
    cuts=st.lists(st.integers(min_value=1, max_value=59), max_size=3),
    open_batches=st.sets(st.sampled_from(("B-1", "B-2", "B-3", "B-4", "B-9"))),
    wanted=st.lists(st.sampled_from((*_BATCHES, "B-9")), max_size=5),
    keys=st.lists(st.integers(min_value=0, max_value=70), max_size=4),
    moved=st.lists(st.integers(min_value=0, max_value=70), max_size=5),
)
@settings(max_examples=120, deadline=None)
def test_the_copy_of_open_batches_rows_reads_as_the_base(
    batches, cuts, open_batches, wanted, keys, moved
) -> None:
    """A day's run reads the base file's rows of the batches open when it was written from
    their copy beside it (OpenRows): the rows live_rows finds, and their order, are those
    it finds in the base, whatever batches are open or wanted (a null, one with no row),
    the base written in slices, and a delta file replacing some keys."""
    import tempfile

    from etl.incremental import EntriesWriter, OpenRows, delta_name, live_rows, open_name
    from warehouse.layout import SOURCE_STATE

    rows = pl.DataFrame(
        {"event_id": [f"EV-{n:03d}" for n in range(len(batches))], "batch_id": batches,
         "seq": [str(n) for n in range(len(batches))]},
        schema=dict.fromkeys(("event_id", "batch_id", "seq"), pl.String),
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        staging = Path(folder)
        (staging / SOURCE_STATE).mkdir()
        writer = EntriesWriter(staging, pl.Series("batch_id", sorted(open_batches), pl.String))
        bounds = [0, *sorted({cut for cut in cuts if cut < rows.height}), rows.height]
        for start, end in zip(bounds, bounds[1:], strict=False):
            writer.write(rows.slice(start, end - start))
        writer.close()
        base = writer.path
        copy = OpenRows.of(base.with_name(open_name()), base)
        assert copy is not None
        copied = rows.with_row_index("__row").filter(pl.col("batch_id").is_in(open_batches))
        assert pl.read_parquet(copy.path).equals(copied)
        delta = base.with_name(delta_name("20261206T000000Z-000000"))
        replaced = rows.filter(pl.col("seq").cast(pl.Int64).is_in(moved))
        replaced.with_columns(pl.lit("B-2").alias("batch_id")).write_parquet(delta)
        asked = {
            "batch_id": pl.Series("batch_id", wanted, pl.String),
            "event_id": pl.Series("event_id", [f"EV-{key:03d}" for key in keys], pl.String),
        }
        assert live_rows([base, delta], asked, copy).equals(live_rows([base, delta], asked))

        # A copy is read only beside the base it was written with, and only when whole.
        assert OpenRows.of(base.with_name("missing.parquet"), base) is None
        base.write_bytes(base.read_bytes() + b"")  # the same bytes: still its base
        assert OpenRows.of(copy.path, base) is not None
        rows.head(1).write_parquet(base)  # another base
        assert OpenRows.of(copy.path, base) is None
        copy.path.write_bytes(copy.path.read_bytes()[:-10])  # cut short
        assert OpenRows.of(copy.path, base) is None


@given(
    chunks=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=5),
    data=st.data(),
)
@settings(max_examples=150, deadline=None)
def test_a_partition_s_rows_are_its_rows_whatever_the_chunks_of_the_table(chunks, data) -> None:
    """Publish gathers a partition's rows one chunk of the table at a time (validation hands
    the entries over in slices): the rows, their order and their single chunk (a file is
    written a row group per chunk) must be those of one gather over the whole table, and
    the entries' files its open rows and each bucket of its settled rows."""
    from etl.publish import (
        _FILE,
        OPEN_FILE,
        SETTLED_FILES,
        SPLIT_FILES,
        _files_of,
        _gather,
        _mark_settled,
        _partition_rows,
        _parts,
        split_file,
    )

    parts, start = [], 0
    for size in chunks:
        parts.append(
            pl.DataFrame(
                {
                    "event_id": [f"E{n:03d}" for n in range(start, start + size)],
                    "batch_id": [f"B{n % 3}" for n in range(start, start + size)],
                    "sponsor_id": [f"S{n % 2}" for n in range(start, start + size)],
                },
                schema={"event_id": pl.String, "batch_id": pl.String, "sponsor_id": pl.String},
            )
        )
        start += size
    frame = pl.concat(parts, rechunk=False)
    assert frame.n_chunks() == len(chunks)
    wanted = sorted(data.draw(st.sets(st.integers(min_value=0, max_value=start - 1))))
    positions = pl.Series(wanted, dtype=pl.UInt32)
    gathered = _gather(frame, positions)
    assert gathered.equals(frame.rechunk()[positions])
    assert gathered.n_chunks("all") == [1] * gathered.width or not gathered.height

    settled = pl.Series("batch_id", ["B0", "B1", "B9"])  # B9: settled, without rows here
    files_of = pl.select(split_file(pl.Series(["B0", "B1"]), pl.lit(True))).to_series()
    settled_file = dict(zip(["B0", "B1"], (SPLIT_FILES[n] for n in files_of), strict=True))
    assert settled_file["B0"] != settled_file["B1"]  # two buckets
    marked = _mark_settled("batch_event", frame, settled)
    body = marked.drop("sponsor_id", _FILE)
    files = {
        name: _partition_rows(body, "event_id", mine)
        for name, mine in _files_of("batch_event", marked, positions)
    }
    assert list(files) == [*SETTLED_FILES, OPEN_FILE]
    expected = frame.rechunk()[positions].drop("sponsor_id")
    for batch in ("B0", "B1"):
        assert files[settled_file[batch]].equals(expected.filter(pl.col("batch_id") == batch))
    assert files[OPEN_FILE].equals(expected.filter(pl.col("batch_id") == "B2"))
    others = set(SETTLED_FILES) - set(settled_file.values())
    assert all(files[name].height == 0 for name in others)
    assert all(files[name].columns == expected.columns for name in files)
    empty = {
        name: _partition_rows(body, "event_id", mine)
        for name, mine in _files_of("batch_event", marked, None)
    }
    assert list(empty) == list(files)
    assert all(part.height == 0 and part.columns == expected.columns for part in empty.values())

    # A table of one file per partition is split at once (`_parts`): each partition's rows
    # of the whole table, in order, or of the partitions to write only; none where it has none.
    todo = data.draw(st.lists(st.sampled_from(["S0", "S1", "S2"]), unique=True))
    split = dict(_parts(frame, todo, ["S0", "S1", "S2"]))
    assert list(split) == todo
    for sponsor, part in split.items():
        rows = frame.rechunk().filter(pl.col("sponsor_id") == sponsor).drop("sponsor_id")
        made = _partition_rows(frame.clear(), "event_id", part)
        assert made.equals(rows) and made.n_chunks() == 1
        assert (part is None) == (rows.height == 0)


_moments = st.integers(0, 40).map(lambda n: datetime(2026, 1, 1) + timedelta(hours=n))


@given(
    entries=st.lists(
        st.tuples(st.sampled_from(["A", "B", "C", "Z"]), st.integers(0, 4), _moments),
        max_size=24,
    ),
    windows=st.lists(
        st.tuples(st.one_of(st.none(), _moments),
                  st.sampled_from([None, "RELEASED", "REJECTED", "ON_HOLD"]),
                  st.one_of(st.none(), _moments)),
        min_size=3, max_size=3,
    ),
    sort=st.booleans(),
    cuts=st.lists(st.integers(1, 8), max_size=4),
)  # fmt: skip
@settings(max_examples=300, deadline=None)
def test_steps_out_of_order_and_outside_the_window_are_their_definitions(
    entries, windows, sort, cuts
) -> None:
    """out_of_sequence and outside_batch_window equal their definitions (DOMAIN.md), entry
    by entry, whatever the entries' order (a batch's entries together and in step order, as
    the source gives them, or interleaved), their chunks, a batch without a valid row ("Z")
    and a window without a start or an end."""
    from etl.derive import FINAL_DECISIONS, _sequence_flags

    if sort:
        entries = sorted(entries, key=lambda entry: entry[:2])
    batch = pl.DataFrame(
        [("A", *windows[0]), ("B", *windows[1]), ("C", *windows[2])],
        schema={"batch_id": pl.String, "mfg_start": pl.Datetime("us"),
                "cmo_decision": pl.String, "cmo_decided_at": pl.Datetime("us")},
        orient="row",
    )  # fmt: skip
    schema = {"batch_id": pl.String, "seq": pl.Int64, "performed_at": pl.Datetime("us")}
    pieces, start = [], 0
    for size in [*cuts, len(entries)]:
        pieces.append(pl.DataFrame(entries[start : start + size], schema=schema, orient="row"))
        start += size
    events = pl.concat([p for p in pieces if p.height] or pieces[:1], rechunk=False)
    early, outside = _sequence_flags(events, batch)
    assert early.len() == outside.len() == len(entries)
    known = {name: rest for name, *rest in batch.iter_rows()}
    for number, (name, seq, at) in enumerate(entries):
        overtaken = name in known and any(
            other == name and lower < seq and later > at for other, lower, later in entries
        )
        begun, decision, decided = known.get(name, (None, None, None))
        closed = decided if decision in FINAL_DECISIONS else None
        out = (begun is not None and at < begun) or (closed is not None and at > closed)
        assert early[number] == overtaken, (number, entries)
        assert outside[number] == out, (number, entries)


def test_the_steps_out_of_order_found_on_a_thread_are_those_found_inline(
    valid, monkeypatch
) -> None:
    """Many entries (a full build's) have their steps out of order found on a thread of
    their own while training is judged; the derived entries are those of the inline path
    (a day's few), value for value, flags set among them."""
    import etl.derive as derive_module
    from etl.derive import derive

    facts = EventFacts.of(valid[EVENTS])
    inline = derive(valid, facts, EVENTS)
    assert inline.get_column("out_of_sequence").any()
    assert inline.get_column("outside_batch_window").any()
    monkeypatch.setattr(derive_module, "SEQUENCE_THREAD_ROWS", 1)
    threaded = derive(valid, facts, EVENTS)
    assert threaded.equals(inline)


def test_only_tables_whose_rows_follow_from_their_signature_are_kept_whole(valid) -> None:
    """What an incremental run may keep whole on a signature (etl.route.keepable): never
    the entries, a table masking reads identifiers from, a table derived from the entries'
    facts, or a shared record with free text; and each keepable table has a signature."""
    from etl.route import Router, keepable, partitions

    kept = {t.name for t in TABLES if keepable(t)}
    assert kept == {
        "agreement_term", "bom_item", "capa_effectiveness", "change_impact", "change_market",
        "decision_receipt", "deviation_link", "equipment_event", "equipment_usage",
        "master_batch_record", "material_consumption", "product_review", "product_sop",
        "quality_agreement", "tech_transfer", "test_result", "training_record", "tt_milestone",
    }  # fmt: skip
    router = Router(valid, EventFacts.of(valid[EVENTS]))
    digests = {name: "d" for name in valid}
    for table in TABLES:
        signature = router.signature(table, digests, partitions(valid))
        assert (signature is not None) == (table.name in kept), table.name


_VALUES = st.one_of(
    st.none(),
    st.sampled_from(["", " ", "\x00", "\x1c", "\u3000", "\u200b", "\t\n", " a ", "x\x00"]),
    st.text(max_size=4),
)


# Mostly text that starts with a printable ASCII character other than a space (a column of
# only these is kept as it is read), now and then a value that starts otherwise.
_PRINTED = st.one_of(
    st.none(),
    st.from_regex(r"[!-~][ -~\u00a0\u3000]{0,3}", fullmatch=True),
    st.from_regex(r"[!-~][ -~]{0,3}", fullmatch=True),
    st.from_regex(r"[0-9A-Z-]{1,4}", fullmatch=True),
    st.sampled_from(["\u00a0", "\u3000", "\x85", "\x7f", " x", "\x00", "\u00e9t\u00e9"]),
)


@given(
    rows=st.lists(st.tuples(_VALUES, _VALUES, _PRINTED), max_size=40),
    wide=st.booleans(),
)
@settings(max_examples=200, deadline=None)
def test_a_small_part_is_made_text_as_a_large_one_is(rows, wide) -> None:
    """Extraction makes a small part text in Python (a day's ~70 small queries) and a large
    one with a polars expression: a blank value (what polars strips, not Python's
    str.strip: U+001C is kept) and SQLite's NUL stand-in are missing either way. A large
    part's column whose every value starts printable is kept as read: the same values."""
    from etl import extract

    schema = {"a": pl.String, "b": pl.String, "c": pl.String}
    part = pl.DataFrame(rows, schema=schema, orient="row")
    if wide:  # past the Python path's size: the expression
        part = pl.concat([part] * (extract._PYTHON_VALUES // 3 // max(len(rows), 1) + 1))
    made = extract._as_text(part, ["b", "c", "a"])
    expected = part.select("b", "c", "a").select(extract._MISSING_AS_NULL)
    assert made.schema == expected.schema
    assert made.equals(expected)


def test_a_value_is_blank_exactly_where_polars_strips_it_to_nothing() -> None:
    """The extraction's blank test (a regex, no stripped copy made) agrees with polars'
    strip_chars() on every character of the Basic Multilingual Plane, alone and between
    others, and the NUL stand-in is missing only alone."""
    from etl import extract

    chars = [chr(code) for code in range(1, 0x10000) if not 0xD800 <= code <= 0xDFFF]
    values = chars + [f" {c}\t" for c in chars] + ["", "\x00", "\x00 ", " \x00", "a\x00"]
    frame = pl.DataFrame({"v": values})
    made = frame.select(extract._MISSING_AS_NULL).get_column("v")
    stripped = frame.select(
        pl.when((pl.col("v") != "\x00") & (pl.col("v").str.strip_chars() != "")).then("v")
    ).get_column("v")
    assert made.equals(stripped)
    assert made.null_count() == 2 * len(extract._WHITESPACE) + 2  # alone and padded; "", NUL


@pytest.mark.parametrize(
    ("values", "watermark"),
    [
        (["2026-05-01T10:00:00", "2026-05-31T23:00:00", None], "2026-05-31T23:00:00"),
        (["2026-05-01T10:00:00", "2026-05-31 23:00:00"], "2026-05-31 23:00:00"),
        (["2026-05-01T10:00:00", "2026-06-01 00:00:01"], "2026-05-01T10:00:00"),
        (["2026-05-01T10:00:00", "2036-01-01T00:00:00"], "2026-05-01T10:00:00"),
        (["2026-05-01T10:00:00", "yesterday", "2026-05-02T25:00"], "2026-05-01T10:00:00"),
        (["2026-05-01", "2026-05-01T09:00:00.25"], "2026-05-01T09:00:00.25"),
        (["2036-01-01T00:00:00", "n/a"], None),
        ([None], None),
    ],
)
def test_the_watermark_is_the_latest_date_time_not_past_the_clock(
    values: list[str | None], watermark: str | None
) -> None:
    """A table's watermark is its latest updated_at written as a date-time, "T" or space
    between date and time, and not past the run's clock (here 2026-06-01T00:00:00)."""
    from etl.extract import watermark_of

    column = pl.Series("updated_at", values, pl.String)
    assert watermark_of(column, "2026-06-01T00:00:00") == watermark


def test_a_day_s_changes_are_asked_ahead_in_order_and_never_far_ahead(demo_plant) -> None:
    """A day's run asks the tables' changes in a thread of its own (extract._ChangesAhead):
    each is what asking it in turn gives, and the thread stays CHANGES_AHEAD tables ahead of
    what the run took (a backfill day holds no more tables' changes at once)."""
    import time

    from etl import extract
    from tests.conftest import AS_OF

    source = extract.open_source(demo_plant.path)
    since = f"{AS_OF - timedelta(days=3)}T00:00:00"  # a few days' changes of some tables
    manifest = {"watermark": dict.fromkeys((t.name for t in TABLES), since)}
    ahead = extract._ChangesAhead(source, manifest, set())
    with ahead:
        deadline = time.monotonic() + 30
        asked = lambda: [f for f in ahead._futures.values() if f.running() or f.done()]  # noqa: E731
        while len(asked()) < extract.CHANGES_AHEAD and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # time enough to ask a third, were it allowed
        assert len(asked()) == extract.CHANGES_AHEAD
        for table in TABLES:
            found = ahead.changes(table)
            expected = extract.read_changes(source, table, ahead.marks[table.name])
            assert found is not None and expected is not None
            assert found.equals(expected), table.name
    assert not ahead._thread.is_alive()


_DAYS = st.sampled_from(["2026-05-01", "2026-05-02", "2026-12-31", "2027-01-01", "2026-13-01"])
_TIMES = st.sampled_from(["00:00:00", "09:30:00", "23:59:59", "24:00:00", "9:30:00", "09:30"])
# Date-times as sources write them and as they may: either separator, unpadded, fractions,
# padded with spaces, a date alone, no date-time at all, or none.
_UPDATED_AT = st.one_of(
    st.builds(lambda d, sep, t: f"{d}{sep}{t}", _DAYS, st.sampled_from(["T", " ", "t"]), _TIMES),
    st.builds(lambda d, t, f: f"{d}T{t}.{f}", _DAYS, _TIMES, st.sampled_from(["5", "000001"])),
    st.builds(lambda d, t: f" {d}T{t} ", _DAYS, _TIMES),
    st.builds(lambda d: d.replace("-0", "-"), _DAYS),
    st.sampled_from(["2026-5-1T09:30:00.5", "yesterday", "9999-99-99T99:99:99", "", None]),
)


@given(values=st.lists(_UPDATED_AT, min_size=1, max_size=12))
@settings(max_examples=300, deadline=None)
def test_the_latest_change_is_the_latest_parse_of_every_value(values) -> None:
    """Extraction parses only the values that can hold a table's latest updated_at (those
    not written as our sources write them, and those of the greatest one's day): the
    latest is the latest of every value parsed, as validation parses them."""
    from etl.validate import DATETIME, latest_change, parse

    frame = pl.DataFrame({"updated_at": values}, schema={"updated_at": pl.String})
    every = frame.lazy().select(parse(DATETIME, pl.col("updated_at"))).collect().to_series()
    assert latest_change(frame) == every.max()


def test_the_job_sets_polars_allocator_before_polars_loads() -> None:
    """`python -m etl` gives polars' allocator the job's settings (etl.ALLOCATOR) before
    polars is imported: polars puts its own defaults first as it loads, then these."""
    import os
    import subprocess
    import sys

    from etl import ALLOCATOR

    environment = {name: value for name, value in os.environ.items() if name not in ALLOCATOR}
    shown = "import etl.__main__, os; print(os.environ['_RJEM_MALLOC_CONF'])"
    done = subprocess.run(
        [sys.executable, "-c", shown], env=environment, capture_output=True, text=True,
        check=True, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    ours = ALLOCATOR["_RJEM_MALLOC_CONF"]
    polars_own = done.stdout.strip().removesuffix("," + ours)
    assert polars_own != done.stdout.strip()  # ours last: polars took them as it loaded
    assert polars_own.startswith("dirty_decay_ms:")
