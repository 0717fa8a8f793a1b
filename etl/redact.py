"""Free text masked per sponsor copy.

Records are written by CMO staff, whose titles, reasons and descriptions can name one of
the clients: "Analytical Method change shared by Fenolimab" on a change control published to
several sponsors, or "compared with Fenolimab's run" in one sponsor's OOS summary. Before a
record reaches a sponsor's partition, every free-text value of that sponsor's copy is
searched for the identifiers of what that sponsor may not see - other sponsors' ids and
names, their products, batch numbers, and the numbers of records not published to it - and
each hit is replaced by "[another client]". Every masked value is reported (table, record
key, column, partition; never the identifier itself outside the CMO's run report).

An incremental run keeps published files whose rows did not change; their masking changes
all the same when an identifier they name changes visibility (a product registered, a batch
moved to another sponsor). `changed_needles` names those identifiers against the live run's
(`identifiers.parquet` of its run state), and `holding` finds the texts that name one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

import polars as pl

from warehouse.contract import SITE_PARTITION, STR, TABLES_BY_NAME, Table

P = "sponsor_id"
MASK = "[another client]"
NOWHERE = ""  # the partition of a quarantined row's identifiers: no sponsor's (identifiers)
MIN_IDENTIFIER = 3  # shorter strings are too common in prose to name anything
# What names something of a sponsor's: (table, column, kind). A record's visibility is the
# partitions it is published to, so a shared deviation's number is foreign to no sponsor of it.
IDENTIFIERS = (
    ("sponsor", "sponsor_id", "sponsor id"), ("sponsor", "name", "sponsor name"),
    ("product", "product_id", "product id"), ("product", "name", "product name"),
    ("batch", "batch_id", "batch id"), ("batch", "batch_number", "batch number"),
    ("complaint", "complaint_number", "complaint number"),
    ("deviation", "deviation_number", "deviation number"),
    ("capa", "capa_number", "CAPA number"),
    ("change_control", "change_number", "change number"),
    ("material_lot", "lot_id", "material lot"),
    ("oos_investigation", "oos_id", "OOS investigation"),
)  # fmt: skip
_TRAILING_NOTE = re.compile(r"\s*\([^()]*\)\s*$")


class MaskedText(NamedTuple):
    """One sponsor copy's free text masked (a tuple: 12k of them are made in a run on
    `large`, where a frozen dataclass's construction alone took 30 ms)."""

    table: str
    key: str
    column: str
    partition: str
    kinds: tuple[str, ...]  # what was masked, e.g. ("product name",)


def free_text_columns(table: Table) -> list[str]:
    """Columns a person writes into: strings that are no key, reference or code, nor the
    record's own number or name (an identifier, which its copy's sponsor always sees)."""
    own = {column for name, column, _ in IDENTIFIERS if name == table.name}
    return [
        c.name
        for c in table.columns
        if c.type == STR
        and c.enum is None
        and c.ref is None
        and c.name != table.key
        and c.name not in own
    ]


def shared_tables() -> list[Table]:
    """Tables whose one record can reach more than one sponsor's partition."""
    return [t for t in TABLES_BY_NAME.values() if t.route in ("all", "fanout")]


def text_tables() -> list[Table]:
    """Tables with free text: every one is masked, a shared record's copies and a single
    sponsor's record alike."""
    return [t for t in TABLES_BY_NAME.values() if free_text_columns(t)]


def _forms(table: str, column: str, notes: bool) -> pl.Expr:
    """The forms a name is written in: as registered, without a trailing note such as
    "(fictional)" (where some value has a parenthesis: `notes`), and for a sponsor also its
    first word ("Northwind")."""
    value = pl.col("identifier")
    bare = value.str.replace(_TRAILING_NOTE.pattern, "") if notes else value
    forms = [value, bare] if notes else [value]
    if (table, column) == ("sponsor", "name"):
        forms.append(bare.str.split(" ").list.first())
    return pl.concat_list(forms)


def identifiers(
    published: dict[str, pl.DataFrame], quarantine: Mapping[str, pl.DataFrame] | None = None
) -> pl.DataFrame:
    """(needle, kind, sponsor_id): a lower-case string that names something visible in that
    sponsor's partition (SITE left out: only CMO staff read it); a row may repeat (the
    ~200k of `large` took 17 ms to make distinct, which nothing needs). A quarantined row's
    identifiers (its text as the source holds it) are visible in no partition (NOWHERE):
    a product whose row failed validation is still a client's product, and masking took its
    names only from published rows (a shared title then named it to every other sponsor)."""
    frames = []
    for table, column, kind in IDENTIFIERS:
        names = published[table].select(pl.col(column).cast(pl.String).alias("identifier"), P)
        if quarantine is not None and table in quarantine:
            names = pl.concat([names, _quarantined(quarantine[table], column)])
        # Ids and numbers carry no note: the note's regex over ~150k of them cost 60 ms.
        notes = bool(names.get_column("identifier").str.contains("(", literal=True).any())
        frames.append(
            names.with_columns(_forms(table, column, notes).alias("needle"))
            .explode("needle")
            .select(pl.col("needle").str.to_lowercase(), pl.lit(kind).alias("kind"), P)
        )
    return pl.concat(frames).filter(
        (pl.col(P) != SITE_PARTITION) & (pl.col("needle").str.len_chars() >= MIN_IDENTIFIER)
    )


def _quarantined(rows: pl.DataFrame, column: str) -> pl.DataFrame:
    """(identifier, sponsor_id NOWHERE) of a table's quarantined rows: `column`'s text of
    each (`values` holds a row's columns as JSON text, etl.validate)."""
    return rows.select(
        pl.col("values").str.json_path_match(f"$.{column}").alias("identifier"),
        pl.lit(NOWHERE).alias(P),
    ).drop_nulls("identifier")


def _word(needle: str) -> re.Pattern[str]:
    """Where `needle` stands as a word: no letter or digit on either side, except letters
    after a needle that ends in a digit (a number: a split lot's "NWT-25-0012A" is batch
    NWT-25-0012's, where "NWT-25-00123" is another number)."""
    after = "(?![0-9])" if _ends_in_digit(needle) else "(?![A-Za-z0-9])"
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(needle)}{after}", re.IGNORECASE)


def _ends_in_digit(needle: str) -> bool:
    return bool(needle) and needle[-1] in "0123456789"


def _mask(
    text: str,
    needles: tuple[str, ...],
    guarded: tuple[str, ...],
    kind_of: dict[str, set[str]],
) -> tuple[str, set[str]]:
    """`text` with each needle masked where it stands as a word, longest first, and the
    kinds masked; not where it stands inside a `guarded` one (an identifier the copy's
    sponsor sees: its "Avelorin 7" holds another client's "Avelorin")."""
    spans = [m.span() for needle in guarded for m in _word(needle).finditer(text)]
    taken: list[tuple[int, int]] = []
    found: set[str] = set()
    for needle in needles:
        for match in _word(needle).finditer(text):
            start, end = match.span()
            if any(s <= start and end <= e for s, e in spans):
                continue  # part of what the sponsor may see
            if any(start < e and s < end for s, e in taken):
                continue  # within a longer one masked already
            taken.append((start, end))
            found |= kind_of[needle]
    new = text
    for start, end in sorted(taken, reverse=True):
        new = new[:start] + MASK + new[end:]
    return new, found


def _sponsor_copy(column: str) -> pl.Expr:
    """Rows of a sponsor's copy (not SITE, which only CMO staff read) with text in `column`."""
    return (pl.col(P) != SITE_PARTITION) & pl.col(column).is_not_null()


# Letters that a case-blind match (`_word`: re.IGNORECASE) takes for ASCII ones, which
# lower-casing leaves apart (dotless i, long s) or makes two characters of (dotted I).
_FOLDS = {"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"}
_RUN = "[a-z0-9]+"  # what `_word` takes for letters and digits, in lower-cased folded text


def _folded(text: pl.Expr) -> pl.Expr:
    return text.str.replace_many(list(_FOLDS), list(_FOLDS.values())).str.to_lowercase()


def distinct_texts(frames: Mapping[str, pl.DataFrame], tables: list[Table]) -> pl.DataFrame:
    """(__text): each distinct free text of the sponsor copies in `frames` of `tables`."""
    texts = [
        frames[table.name]
        .lazy()
        .filter(_sponsor_copy(column))
        .select(pl.col(column).alias("__text"))
        .unique()
        for table in tables
        for column in free_text_columns(table)
    ]
    if not texts:
        return pl.DataFrame(schema={"__text": pl.String})
    return pl.concat(texts).unique().collect()


class Needles:
    """A snapshot's identifiers (`identifiers`) made ready to search for, once a run (each
    search of ~136k needles had made them so again: 0.04 s of a day's run on `large`):
    each needle once, folded (`_folded`), with its last run of letters and digits; and the
    partitions where each is visible."""

    def __init__(self, names: pl.DataFrame) -> None:
        self.names = names
        self.folded = _prepared(names.get_column("needle").unique())
        self.visible = names.select("needle", P).unique().with_columns(pl.lit(True).alias("__seen"))


def _prepared(needles: pl.Series) -> pl.DataFrame:
    """(needle, __folded, __last) of `needles`: each folded, and its last run of letters and
    digits (null where it has none)."""
    folded = needles.to_frame("needle").with_columns(_folded(pl.col("needle")).alias("__folded"))
    return folded.with_columns(
        pl.col("__folded").str.extract(f"({_RUN})[^a-z0-9]*$", 1).alias("__last")
    )


def _needles_in(distinct: pl.DataFrame, needles: pl.DataFrame) -> pl.DataFrame:
    """(__text, needle): each needle found in each of the `distinct` texts; `needles` as
    `_prepared` makes them. One search over them all: the search builds its automaton of the
    needles on every call, and a shared text recurs in every sponsor's copy.

    Only needles that can stand as a word in some text are searched for (`_mask` masks a
    needle only there): each run of letters and digits of a needle standing as a word is a
    whole run of the text (or, the last one of a number, the text's run without the letters
    after it), so a needle whose last run is no such run is left out (of the ~136k
    identifiers of `large`, the automaton of all took 0.1 s)."""
    if distinct.is_empty() or needles.is_empty():
        return pl.DataFrame(schema={"__text": pl.String, "needle": pl.String})
    runs = distinct.select(_folded(pl.col("__text")).str.extract_all(_RUN).explode())
    # A number stands as a word before letters too (`_word`): its run without them.
    runs = pl.concat([runs, runs.select(pl.col("__text").str.replace("[a-z]+$", ""))]).unique()
    last = pl.col("__last")
    # A needle with no run (no ASCII letter or digit) is searched for as it is.
    wanted = needles.filter(last.is_null() | last.is_in(runs.get_column("__text").implode()))
    # Folded text, folded needles: "FENOLİMAB" or "Foſfomab" is the name `_mask` masks,
    # which lower-casing alone does not find.
    search = wanted.get_column("__folded").unique()
    return (
        distinct.with_columns(
            _folded(pl.col("__text"))
            # As a literal, not a Python list (a round trip of 136k strings: 0.07 s).
            .str.extract_many(pl.lit(search.implode()), overlapping=True)
            .alias("__folded")
        )
        .explode("__folded")
        .drop_nulls("__folded")
        .join(wanted.select("needle", "__folded"), on="__folded")  # each needle folded so
        .select("__text", "needle")
    )


def mask_text(
    frames: Mapping[str, pl.DataFrame],
    needles: Needles,
    tables: list[Table] | None = None,
    texts: pl.DataFrame | None = None,
) -> tuple[dict[str, pl.DataFrame], list[MaskedText]]:
    """`frames` (table -> published rows) with every other client's identifier masked in the
    free text of their sponsor copies, and the list of what was masked; `needles` are the
    identifiers of the whole snapshot, `tables` those of `frames` to mask (every table of
    them with free text when None), and `texts` their distinct texts (`distinct_texts`)
    where the caller has them."""
    if tables is None:
        tables = [t for t in text_tables() if t.name in frames]
    names = needles.names
    # A needle is foreign in a partition where it is not itself visible; a visible one
    # guards what it holds (`_mask`).
    visible = needles.visible
    out = dict(frames)
    # In no order: an overlapping search (_needles_in) reports every needle found whatever
    # their order (a leftmost-first one would not).
    in_texts = _needles_in(distinct_texts(out, tables) if texts is None else texts, needles.folded)
    if in_texts.is_empty() or not tables:
        return out, []  # no text names anything (the 10M entries' few texts, as a rule)
    # Every copy's text with a needle in it, of every table and column, less the needles
    # visible in the copy's own partition: one anti join (one per column cost 0.1 s).
    columns = [(t, c) for t in tables for c in free_text_columns(t)]
    candidates = (
        pl.concat(
            [
                out[table.name]
                .with_row_index("__row")
                .filter(_sponsor_copy(column))
                .select(
                    pl.lit(number, pl.UInt32).alias("__column"),
                    "__row",
                    pl.col(table.key).alias("__key"),
                    P,
                    pl.col(column).alias("__text"),
                )
                .join(in_texts, on="__text")
                for number, (table, column) in enumerate(columns)
            ]
        )
        .unique(["__column", "__row", "needle"])
        .join(visible, on=["needle", P], how="left")
    )
    foreign = pl.col("__seen").is_null()
    kind_of: dict[str, set[str]] = {}
    for needle, kind in (
        names.join(candidates.filter(foreign).select("needle").unique(), on="needle")
        .select("needle", "kind")
        .unique()
        .iter_rows()
    ):
        kind_of.setdefault(needle, set()).add(kind)
    grouped = (
        candidates.group_by("__column", "__row", "__key", P, "__text")
        # Longest first, so "Fenolimab (fictional)" goes whole, not as "Fenolimab"; of one
        # length, in code point order (that of UTF-8 bytes).
        .agg(_longest_first(foreign), _longest_first(~foreign).alias("__guarded"))
        .filter(pl.col("needle").list.len() > 0)
        # The needles as one text, each after its length, the guarded ones after a "/":
        # two pairs of lists make one text only if they are the same lists.
        .with_columns(
            pl.concat_str([_lengthed("needle"), pl.lit("/"), _lengthed("__guarded")]).alias(
                "__needles"
            )
        )
    )
    # A shared record's text recurs in every sponsor's copy: each (text, foreign identifiers)
    # is masked once (of 12k copies masked on `large`, 667), and the copies get theirs by a
    # join (a loop over the copies took 0.05 s).
    fixed = []
    for text, needles_text, hits, guarded in (
        grouped.select("__text", "__needles", "needle", "__guarded")
        .unique(["__text", "__needles"])
        .iter_rows()
    ):
        new, found = _mask(text, tuple(hits), tuple(guarded), kind_of)
        if new != text:
            fixed.append((text, needles_text, new, sorted(found)))
    fixes = grouped.join(
        pl.DataFrame(
            fixed,
            schema={"__text": pl.String, "__needles": pl.String, "__new": pl.String,
                    "__kinds": pl.List(pl.String)},
            orient="row",
        ),
        on=["__text", "__needles"],
    ).sort("__column", "__row")  # fmt: skip
    masked: list[MaskedText] = []
    for number, (table, column) in enumerate(columns):
        patch = fixes.filter(pl.col("__column") == number)
        if not patch.height:
            continue
        masked += [
            MaskedText(table.name, key, column, partition, tuple(kinds))
            for key, partition, kinds in patch.select("__key", P, "__kinds").iter_rows()
        ]
        out[table.name] = (
            out[table.name]
            .with_row_index("__row")
            .join(patch.select("__row", "__new"), on="__row", how="left", maintain_order="left")
            .with_columns(pl.coalesce("__new", column).alias(column))
            .drop("__row", "__new")
        )
    # In record order, whatever order the routing joins gave the copies.
    # (table, key, column, partition) names one copy's text: tuples sort by it.
    masked.sort()
    return out, masked


def _longest_first(which: pl.Expr) -> pl.Expr:
    """The needles `which` selects, longest first; of one length, in code point order."""
    needles = pl.col("needle").filter(which)
    return needles.sort_by(needles.str.len_chars(), needles, descending=[True, False])


def _lengthed(column: str) -> pl.Expr:
    """A list of needles as one text, each after its length."""
    element = pl.element()
    return (
        pl.col(column).list.eval(pl.format("{}:{}", element.str.len_bytes(), element)).list.join("")
    )


def changed_needles(before: pl.DataFrame, now: pl.DataFrame) -> pl.Series:
    """The needles whose kind or visibility differ between two runs' `identifiers` (a
    needle new or gone among them): a text naming none of them is masked as it was. Rows
    may repeat (an anti join finds the same needles either way; making ~200k rows distinct
    first cost 0.04 s of a day's run on `large`)."""
    on = list(before.columns)
    return (
        pl.concat([before.join(now, on=on, how="anti"), now.join(before, on=on, how="anti")])
        .get_column("needle")
        .unique()
    )


def holding(texts: pl.Series, needles: pl.Series) -> pl.Series:
    """Those of `texts` that may name one of `needles` as a word (a superset: found by a
    search that `_mask` narrows down to words)."""
    found = _needles_in(texts.drop_nulls().unique().to_frame("__text"), _prepared(needles))
    return found.get_column("__text").unique()
