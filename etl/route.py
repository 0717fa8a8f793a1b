"""Route stage: every published row to the sponsor partitions it may be seen in, as the
contract declares per table (warehouse.contract: `route`, and `reach` for shared records),
then redaction of what a record's free text would tell a sponsor about another (etl.redact).
A sponsor never sees another sponsor's batch, product, name or count.

Every output frame carries its target partition in a `sponsor_id` column (a row's own
sponsor_id for direct tables); publish turns it into the Hive directory.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import polars as pl

from etl.derive import DERIVED, derive, named_rows, per_chunk
from etl.incremental import EVENTS, SLICE_ROWS, EventFacts, digest
from etl.redact import (
    IDENTIFIERS,
    MaskedText,
    Needles,
    changed_needles,
    distinct_texts,
    free_text_columns,
    holding,
    identifiers,
    mask_text,
    shared_tables,
)
from warehouse.contract import (
    SITE_PARTITION,
    TABLES,
    TABLES_BY_NAME,
    Backref,
    Both,
    Everyone,
    Reach,
    Ref,
    Table,
)

P = "sponsor_id"  # partition column
# Who performed or verified an entry: the facts an incremental run keeps about every valid
# entry stand in for the entries, of which it holds only those it judged again.
_PEOPLE = ("performed_by", "verified_by")
# Tables never kept from the live snapshot on their signature: the entries (etl.publish
# keeps their files by batch) and the tables whose published rows masking reads for
# identifiers (etl.redact).
_NOT_KEPT = frozenset({EVENTS} | {table for table, _, _ in IDENTIFIERS})
# The published tables masked first (etl.redact.mask_text, in a thread): those identifiers
# are taken from, and the shared tables with free text (neither is ever kept from the live
# snapshot).
_MASKING_READS = frozenset(
    {table for table, _, _ in IDENTIFIERS}
    | {table.name for table in shared_tables() if free_text_columns(table)}
)


def keepable(table: Table) -> bool:
    """Whether a table's published rows follow from what its signature digests
    (Router.signature): not one of `_NOT_KEPT`, not derived from the entries' facts, and no
    shared record's free text, which masking changes with every other table's identifiers.
    One sponsor's free text is kept unless it names an identifier whose visibility changed
    (derive_and_route: `Routed.renamed`)."""
    if table.name in _NOT_KEPT or (table.name in DERIVED and DERIVED[table.name].facts):
        return False
    return table.route in ("direct", "via") or not free_text_columns(table)


class Router:
    """Where the rows of each table go, from the valid rows of every table."""

    def __init__(self, valid: dict[str, pl.DataFrame], facts: EventFacts) -> None:
        self.v = valid
        self.facts = facts
        self.sponsors = valid["sponsor"].get_column("sponsor_id").sort().to_frame()
        self._audience: dict[str, pl.DataFrame] = {}
        # The tables to keep are chosen in a thread beside the routing (derive_and_route),
        # and both ask for the same audiences: each is computed once, by the first to ask,
        # while the other waits for it (both computed the operators', 0.08 s each, on
        # `large`'s day). Reach has no cycle, so the locks are taken in one order.
        self._computing: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def owner(self, table: str) -> pl.DataFrame:
        """(key, sponsor_id) of a table whose rows belong to exactly one sponsor."""
        t = TABLES_BY_NAME[table]
        frame = self.v[table]
        if t.route == "direct":
            return frame.select(t.key, P)
        parent = TABLES_BY_NAME[t.column(t.parent).ref]
        parents = self.owner(parent.name).rename({parent.key: t.parent})
        return frame.select(t.key, t.parent).join(parents, on=t.parent).select(t.key, P)

    def placed(self, table: Table) -> pl.DataFrame:
        """(key, sponsor_id) of each row of a table routed via its parent: the partition it
        is published in (SITE where its parent has no owner)."""
        column, owners = self._through(table)
        rows = self.v[table.name].select(table.key, column)
        return rows.join(owners, on=column, how="left").select(
            table.key, pl.col(P).fill_null(SITE_PARTITION)
        )

    def audience(self, table: str) -> pl.DataFrame:
        """(key, sponsor_id) pairs: every sponsor partition a row of `table` reaches."""
        found = self._audience.get(table)
        if found is not None:
            return found
        with self._guard:
            computing = self._computing.setdefault(table, threading.Lock())
        with computing:
            if table not in self._audience:
                t = TABLES_BY_NAME[table]
                if t.route in ("direct", "via"):
                    pairs = self.owner(table)
                elif t.route == "all":
                    pairs = self.v[table].select(t.key).join(self.sponsors, how="cross")
                else:
                    pairs = pl.concat([self._reach(t, reach) for reach in t.reach])
                self._audience[table] = pairs.unique()
        return self._audience[table]

    def _through(self, t: Table) -> tuple[str, pl.DataFrame]:
        """A column of `t`'s rows, and (its value, sponsor) pairs saying where they go: a
        child routed via its parent is placed by the parent's few owners, not by building
        (key, sponsor) pairs for each of its rows (10M batch entries)."""
        if t.route == "via":
            parent = TABLES_BY_NAME[t.column(t.parent).ref]
            return t.parent, self.owner(parent.name).rename({parent.key: t.parent})
        return t.key, self.audience(t.name)

    def _reach(self, t: Table, reach: Reach) -> pl.DataFrame:
        """(key, sponsor_id) pairs of `t`'s rows that `reach` leads to."""
        rows = self.v[t.name]
        if reach.when is not None:
            column, value = reach.when
            rows = rows.filter(pl.col(column) == value)
        if isinstance(reach, Everyone):
            return rows.select(t.key).join(self.sponsors, how="cross")
        if isinstance(reach, Ref):
            pairs = self._ref_pairs(t, reach)
            named = rows.select(t.key, reach.column).drop_nulls()
            return named.join(pairs, on=reach.column).select(t.key, P)
        if isinstance(reach, Backref):
            other = TABLES_BY_NAME[reach.table]
            column, pairs = self._through(other)
            if other.name == EVENTS and reach.columns == _PEOPLE and column == "batch_id":
                links = self.facts.people.rename({"operator_id": t.key})
            else:
                links = pl.concat(
                    self.v[other.name].select(pl.col(name).alias(t.key), column)
                    for name in reach.columns
                )
            if reach.when is not None:
                links = links.join(rows.select(t.key), on=t.key, how="semi")
            return links.drop_nulls().join(pairs, on=column).select(t.key, P)
        if isinstance(reach, Both):
            if all(isinstance(r, Ref) and r.when is None for r in (reach.first, reach.second)):
                # Each distinct pair of references placed by the first, kept where the
                # second reaches the same sponsor, then joined to its rows: no (row, sponsor)
                # pairs of either side alone to deduplicate (1.4M of the training records).
                (one, by_one), (two, by_two) = (
                    (r.column, self._ref_pairs(t, r)) for r in (reach.first, reach.second)
                )
                named = rows.select(t.key, one, two).drop_nulls()
                pairs = (
                    named.select(one, two).unique()
                    .join(by_one, on=one).join(by_two, on=[two, P], how="semi")
                )  # fmt: skip
                return named.join(pairs, on=[one, two]).select(t.key, P)
            first, second = (self._reach(t, r) for r in (reach.first, reach.second))
            both = first.unique().join(second.unique(), on=[t.key, P])
            return both.join(rows.select(t.key), on=t.key, how="semi")
        raise TypeError(f"{t.name}: unknown reach {reach!r}")

    def _ref_pairs(self, t: Table, reach: Ref) -> pl.DataFrame:
        """(value of the referring column, sponsor_id): where the referenced rows go."""
        target = TABLES_BY_NAME[t.column(reach.column).ref]
        return self.audience(target.name).rename({target.key: reach.column})

    def signature(self, table: Table, digests: dict[str, str], partitions: list[str]) -> str | None:
        """Everything a keepable table's published rows are made of, as one digest: its
        valid rows and those its derivation reads (`digests` of the valid tables), the
        partitions, and what its routing reads of other tables, narrowed to the values its
        own rows name. Equal signatures, equal published rows: an incremental run keeps the
        live snapshot's files. None where the routing reads more (another table's rows
        that name this one's: a Backref)."""
        if not keepable(table):
            return None
        inputs = self._inputs(table)
        if inputs is None:
            return None
        derivation = DERIVED.get(table.name)
        reads = {table.name, *(derivation.reads if derivation else ())}
        narrowed = derivation.columns if derivation else {}
        lines = [table.name, json.dumps(partitions)]
        for name in sorted(reads):
            if name in narrowed:  # what the derivation reads of it, no more (Derivation)
                rows = named_rows(self.v, table.name, name, narrowed[name])
                lines.append(f"{name} {list(narrowed[name])} {digest(rows)}")
            else:
                lines.append(f"{name} {digests[name]}")
        lines += [digest(frame) for frame in inputs]
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()

    def _inputs(self, t: Table) -> list[pl.DataFrame] | None:
        """What `route` reads of other tables for `t`'s rows (those of a table routed to
        "all": the partitions only)."""
        rows = self.v[t.name]
        if t.route in ("direct", "all"):
            return []
        if t.route == "via":
            column, owners = self._through(t)
            return [owners.join(rows.select(column).unique(), on=column, how="semi")]
        inputs: list[pl.DataFrame] = []
        for reach in t.reach:
            found = self._reach_inputs(t, rows, reach)
            if found is None:
                return None
            inputs += found
        return inputs

    def _reach_inputs(
        self, t: Table, rows: pl.DataFrame, reach: Reach
    ) -> list[pl.DataFrame] | None:
        if isinstance(reach, Everyone):
            return []
        if isinstance(reach, Ref):
            pairs = self._ref_pairs(t, reach)
            return [pairs.join(rows.select(reach.column).unique(), on=reach.column, how="semi")]
        if isinstance(reach, Both):
            first, second = (self._reach_inputs(t, rows, r) for r in (reach.first, reach.second))
            return None if first is None or second is None else first + second
        return None  # a Backref: which rows of another table name this one's

    def route(self, table: Table, frame: pl.DataFrame) -> pl.DataFrame:
        """One row per (row, partition); rows that reach no sponsor go to SITE."""
        if table.route == "direct":
            return frame
        if table.route == "via":
            column, owners = self._through(table)
            partition = per_chunk(
                frame,
                lambda piece: (
                    piece.select(column)
                    .join(owners, on=column, how="left", maintain_order="left")
                    .get_column(P)
                    .fill_null(SITE_PARTITION)
                ),
            )
            return frame.with_columns(partition)
        pairs = self.audience(table.name).select(table.key, P)
        routed = frame.join(pairs, on=table.key, how="left")
        return routed.with_columns(pl.col(P).fill_null(SITE_PARTITION))


def _hide_invisible_recurrence(routed: pl.DataFrame) -> pl.DataFrame:
    """recurrence_of only where that deviation is in the same partition; is_recurrence, judged
    before routing, stays on every copy so that no partition loses the recurrence itself."""
    visible = routed.select(
        pl.col("deviation_id").alias("recurrence_of"), P, pl.lit(True).alias("__v")
    )
    return (
        routed.join(visible, on=["recurrence_of", P], how="left")
        .with_columns(pl.when(pl.col("__v")).then(pl.col("recurrence_of")).alias("recurrence_of"))
        .drop("__v")
    )


def unmoved(
    router: Router,
    reused: Iterable[str],
    live_owners: Callable[[str], pl.DataFrame | None],
    partitions: list[str],
) -> dict[str, frozenset[str]]:
    """Of each table routed via a directly routed parent, with no derived column, whose
    valid rows are the live run's (`reused`, etl.validate.Reuse): the partitions where its
    published rows are the live run's, those that no parent its rows name left or joined.
    `live_owners(parent)` is the live run's (key, sponsor_id) of the parent's valid rows
    (None where it cannot be read: no table of that parent is said unmoved).

    A batch moved to another sponsor moves its test results and consumptions: the two
    partitions it left and joined are published again, and publish keeps the others' live
    files without the fingerprint of their rows (0.04 s for the 309k test results)."""
    moves: dict[str, pl.DataFrame | None] = {}
    out: dict[str, frozenset[str]] = {}
    for table in TABLES:
        if table.name not in reused or table.route != "via" or table.name in DERIVED:
            continue
        parent = TABLES_BY_NAME[table.column(table.parent).ref]
        if parent.route != "direct":
            continue
        if parent.name not in moves:
            moves[parent.name] = _moves(router.owner(parent.name), live_owners(parent.name))
        moved = moves[parent.name]
        if moved is None:
            continue
        named = router.v[table.name].get_column(table.parent)
        moved = moved.filter(pl.col(parent.key).is_in(named.implode()))
        out[table.name] = frozenset(partitions) - set(moved.get_column(P))
    return out


def regrouped(
    router: Router,
    reused: Iterable[str],
    kept: Iterable[str],
    live_owners: Callable[[str], pl.DataFrame | None],
) -> dict[str, frozenset[str]]:
    """Of each table not `kept` whole, routed via a directly routed parent, whose derivation
    reads its rows by group (Derivation.groups) and of its parent only whose each row is,
    with its valid rows and every other table its derivation reads the live run's
    (`reused`): the partitions where its published rows differ from the live run's.
    `live_owners(parent)` is the live run's (key, sponsor_id) of the parent's valid rows
    (None where it cannot be read: no table of that parent is said regrouped).

    Only a group with a row whose parent moved can change: its rows are derived and placed
    with the parent's owners of now and of the live run, and the partitions of the rows that
    differ are those published again. For the equipment uses these are at most the partitions
    a moved batch left and joined (a use after one of its uses changes only where it is the
    same sponsor's on one side), the rule of `unmoved`; the comparison finds them for any
    derivation by group. (Before, a batch moved to another sponsor had all 218k equipment uses
    of `large` derived again, 0.16 s of a day's run, routed and fingerprinted.)"""
    reused, kept = set(reused), set(kept)
    moves: dict[str, tuple[pl.DataFrame | None, pl.DataFrame | None]] = {}
    out: dict[str, frozenset[str]] = {}
    for table in TABLES:
        derivation = DERIVED.get(table.name)
        if derivation is None or derivation.groups is None or table.route != "via":
            continue
        # Kept whole, nothing to derive; not keepable, derived before this is known.
        if table.name in kept or not keepable(table):
            continue
        parent = TABLES_BY_NAME[table.column(table.parent).ref]
        if parent.route != "direct" or dict(derivation.columns) != {parent.name: (parent.key, P)}:
            continue
        if not {table.name, *derivation.reads} - {parent.name} <= reused:
            continue
        if parent.name not in moves:
            before = live_owners(parent.name)
            moves[parent.name] = before, _moves(router.owner(parent.name), before)
        before, moved = moves[parent.name]
        if moved is None or before is None:
            continue
        rows, group = router.v[table.name], pl.col(derivation.groups)
        reached = rows.filter(pl.col(table.parent).is_in(moved.get_column(parent.key).implode()))
        rows = rows.filter(
            group.is_in(reached.select(group).to_series().implode(), nulls_equal=True)
        )
        now, then = (
            _placed(router, table, rows, owners) for owners in (router.owner(parent.name), before)
        )
        differ = pl.concat([
            now.join(then, on=now.columns, how="anti", nulls_equal=True),
            then.join(now, on=now.columns, how="anti", nulls_equal=True),
        ])  # fmt: skip
        out[table.name] = frozenset(differ.get_column(P).unique().to_list())
    return out


def _placed(router: Router, table: Table, rows: pl.DataFrame, owners: pl.DataFrame) -> pl.DataFrame:
    """`rows` of a table routed via its directly routed parent, derived and routed as if the
    parent's (key, sponsor_id) were `owners` (a router over those owners)."""
    parent = TABLES_BY_NAME[table.column(table.parent).ref]
    other = Router({**router.v, table.name: rows, parent.name: owners}, router.facts)
    return other.route(table, DERIVED[table.name].of(table.name, other.v, other.facts))


def _regrown(router: Router, table: Table, again: frozenset[str]) -> pl.DataFrame:
    """A regrouped table's rows published in the partitions `again` only, routed: the
    groups with a row there are derived (whole: a row reads others of its group)."""
    rows, group = router.v[table.name], pl.col(DERIVED[table.name].groups)
    placed = router.placed(table).filter(pl.col(P).is_in(sorted(again)))
    there = rows.filter(pl.col(table.key).is_in(placed.get_column(table.key).implode()))
    rows = rows.filter(group.is_in(there.select(group).to_series().implode(), nulls_equal=True))
    frame = DERIVED[table.name].of(table.name, {**router.v, table.name: rows}, router.facts)
    return router.route(table, frame).filter(pl.col(P).is_in(sorted(again)))


def _moves(now: pl.DataFrame, before: pl.DataFrame | None) -> pl.DataFrame | None:
    """(key, sponsor_id) of every partition a key's rows left or joined between the owners
    `before` and `now`: SITE where a key has no owner on one side."""
    if before is None:
        return None
    if before.schema != now.schema:  # names, their order and types
        return None
    key = now.columns[0]
    both = before.join(now, on=key, how="full", coalesce=True, nulls_equal=True, suffix="_now")
    changed = both.filter(pl.col(P).ne_missing(pl.col(f"{P}_now")))
    return pl.concat(
        [
            changed.select(key, pl.col(side).fill_null(SITE_PARTITION).alias(P))
            for side in (P, f"{P}_now")
        ]
    )


def partitions(valid: dict[str, pl.DataFrame]) -> list[str]:
    """Every partition of the snapshot: each registered sponsor, then SITE."""
    return valid["sponsor"].get_column("sponsor_id").sort().to_list() + [SITE_PARTITION]


class Routed(NamedTuple):
    """What derive_and_route makes of a run's valid rows."""

    published: dict[str, pl.DataFrame]
    masked: list[MaskedText]
    names: pl.DataFrame  # every identifier masking searched for (etl.redact.identifiers)
    entry_texts: pl.Series  # the distinct free texts of the entries published this run
    # Tables whose live files this run must not keep, not even a partition's: a text of
    # theirs names an identifier whose visibility changed (etl.redact.changed_needles).
    renamed: frozenset[str] = frozenset()
    # A kept batch's entry names such an identifier: its published entries mask otherwise
    # now, and the run must judge every entry again (nothing here is to be published).
    rejudge: bool = False


class Before(NamedTuple):
    """What masking needs of the live run: its identifiers, and a superset of the free texts
    of the entries it published."""

    names: pl.DataFrame
    entry_texts: pl.Series


def derive_and_route(
    valid: dict[str, pl.DataFrame],
    facts: EventFacts,
    router: Router | None = None,
    keep: Callable[[], tuple[frozenset[str], Mapping[str, frozenset[str]]]] = lambda: (
        frozenset(),
        {},
    ),
    quarantine: Mapping[str, pl.DataFrame] | None = None,
    before: Before | None = None,
) -> Routed:
    """Published frames per table, each with its partition in a `sponsor_id` column (rows in
    no particular partition order; publish orders each partition by key), and the free-text
    values masked in every sponsor copy (etl.redact). `facts` describe every valid entry;
    `valid["batch_event"]` may hold only the entries an incremental run judged again, and
    only those are in the published frame (publish keeps the others). The tables `keep`
    returns (keepable, their live files kept whole) are left out, and of the regrouped
    tables it returns with their partitions (etl.route.regrouped), only those partitions'
    rows are in the published frame: it is called in a thread of its own while the tables
    it cannot leave out are derived and routed (it reads the valid rows and the router, no
    published frame). Masking takes the identifiers of the rows in `quarantine` (table ->
    quarantined rows) too.

    What the live run published (`before`: an incremental run) is kept only where masking
    it again would change nothing: a table with a text naming an identifier new, gone or
    seen elsewhere since is derived whole (`Routed.renamed`), and an entry's text naming one
    asks for every entry to be judged again (`Routed.rejudge`)."""
    router = router or Router(valid, facts)
    published: dict[str, pl.DataFrame] = {}
    kept: frozenset[str] = frozenset()
    again: Mapping[str, frozenset[str]] = {}

    def derive_route(table: Table) -> None:
        if table.name in kept:
            assert keepable(table), table.name
            return
        if table.name in again:
            routed = _regrown(router, table, again[table.name])
        else:
            routed = router.route(table, derive(valid, facts, table.name))
        if table.name == "deviation":
            routed = _hide_invisible_recurrence(routed)
        columns = [c for c in routed.columns if c != P]
        # Not sorted here: publish takes one partition at a time and puts it in key order,
        # which costs no full copy of the table (a sort of 10M events is one).
        published[table.name] = routed.select(*columns, P)

    def names_and_mask(
        frames: dict[str, pl.DataFrame],
    ) -> tuple[Needles, dict[str, pl.DataFrame], list[MaskedText]]:
        needles = Needles(identifiers(frames, quarantine))
        return needles, *mask_text(frames, needles)

    # The tables masking reads first; then it runs in a thread of its own while the others
    # are derived and routed (one after the other, they took 0.24 s and ~0.2 s of a day's
    # run on `large`, each using little more than one of the two cores). The tables to keep
    # are chosen meanwhile, from the start (0.2 s of the main thread when it waited for it
    # between the two).
    masking = [table for table in TABLES if table.name in _MASKING_READS]
    others = [table for table in TABLES if table.name not in _MASKING_READS]
    with ThreadPoolExecutor(2, thread_name_prefix="route") as pool:
        choosing = pool.submit(keep)
        for table in masking:
            derive_route(table)
        masked = pool.submit(names_and_mask, {t.name: published[t.name] for t in masking})
        # The entries (never kept) too, when few (a day's judged ones): a full build's 10M
        # beside the choosing raised its peak memory by 0.17 GiB.
        few = valid[EVENTS].height <= SLICE_ROWS
        early = [table for table in others if not keepable(table) and few]
        for table in early:
            derive_route(table)
        kept, again = choosing.result()
        assert not (kept | set(again)) & _MASKING_READS, (kept, again)
        for table in others:
            if table not in early:
                derive_route(table)
        needles, out, report = masked.result()
    names = needles.names
    published |= out
    # One sponsor's records (their copies' identifiers were taken above, with the others'):
    # the distinct texts of each table, of its valid rows (a superset of its sponsor copies')
    # and of the entries published (one pass over a full build's 10M: 0.12 s).
    single = [t for t in others if free_text_columns(t)]
    entry_texts = distinct_texts(published, [TABLES_BY_NAME[EVENTS]])
    texts = pl.concat(
        [entry_texts.select(pl.lit(EVENTS).alias("__table"), "__text")]
        + [
            valid[t.name]
            .lazy()
            .select(pl.lit(t.name).alias("__table"), pl.col(c).alias("__text"))
            .drop_nulls()
            .unique()
            .collect()
            for t in single
            if t.name != EVENTS
            for c in free_text_columns(t)
        ]
    )
    renamed: set[str] = set()
    if before is not None:
        # One search of every text, the kept entries' with them, for the needles whose
        # kind or visibility changed (one search per table cost 0.1 s of a day's run).
        changed = changed_needles(before.names, names)
        hits = holding(pl.concat([texts["__text"], before.entry_texts.alias("__text")]), changed)
        if before.entry_texts.is_in(hits.implode()).any():
            return Routed(
                published, report, names, entry_texts["__text"].alias("text"), rejudge=True
            )
        named = texts.filter((pl.col("__table") != EVENTS) & pl.col("__text").is_in(hits.implode()))
        renamed = set(named.get_column("__table"))
        # Derived whole: none of their live files is kept.
        partial = (kept | set(again)) & renamed
        kept, again = kept - renamed, {t: p for t, p in again.items() if t not in renamed}
        for table in others:
            if table.name in partial:
                derive_route(table)
    single = [t for t in single if t.name in published]
    out, more = mask_text(
        {t.name: published[t.name] for t in single},
        needles,
        single,
        texts.select("__text").unique(),
    )
    published |= out
    report = sorted(report + more)
    return Routed(
        {t.name: published[t.name] for t in TABLES if t.name in published},
        report,
        names,
        entry_texts["__text"].alias("text"),
        frozenset(renamed),
    )
