"""Derive stage: the columns the published tables add to the valid rows (KPI inputs and
data-integrity flags, DOMAIN.md), per table. Derived columns are time-independent; pages
compute ages against today.

Each derivation declares the valid tables it reads (`Derivation.reads`, checked by
tests/etl/test_stage_modules.py), so what a change in the source can affect is known from
the declarations, as etl.route knows where rows go from the contract.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import polars as pl

from etl.incremental import EventFacts
from warehouse.contract import (
    LATE_ENTRY_MINUTES,
    RECURRENCE_WINDOW,
    TABLES_BY_NAME,
    VERIFIED_EVENT_TYPES,
)

P = "sponsor_id"  # partition column
_US_PER_DAY = 86_400e6
_OPEN_DUE = date(9999, 12, 31)  # a training record without due_at never expires
_EVER = date(1, 1, 1)  # before any training
# A batch window's missing end (or start) as microseconds: no entry is after (before) it.
_EARLIEST, _LATEST = np.iinfo(np.int64).min, np.iinfo(np.int64).max
# Entries from which the flags of steps out of order are found on a thread (_batch_event).
SEQUENCE_THREAD_ROWS = 100_000
# CMO decisions that close the batch record: an entry performed later is after disposition.
FINAL_DECISIONS = ("RELEASED", "REJECTED")


def _days(end: pl.Expr, start: pl.Expr) -> pl.Expr:
    return (end - start).dt.total_microseconds() / _US_PER_DAY


def _pieces(frame: pl.DataFrame) -> list[pl.DataFrame]:
    """The frame cut where its chunks are cut (views, no copy)."""
    lengths = frame.get_column(frame.columns[0]).chunk_lengths() or [frame.height]
    starts = [sum(lengths[:number]) for number in range(len(lengths))]
    return [frame.slice(start, length) for start, length in zip(starts, lengths, strict=True)]


def per_chunk(
    frame: pl.DataFrame, column: Callable[[pl.DataFrame], pl.Series], together: int = 1
) -> pl.Series:
    """`column` computed over `together` chunks of `frame` at a time, chunked as the frame
    is: a join over all 10M batch events at once costs a gigabyte, and a column of another
    layout makes polars copy the whole frame into one chunk at its next operation.
    """
    lengths = frame.get_column(frame.columns[0]).chunk_lengths() or [frame.height]
    pieces, start = [], 0
    for first in range(0, len(lengths), together):
        group = lengths[first : first + together]
        # Rechunked: the engine hands its output back in pieces of its own.
        values = column(frame.slice(start, sum(group))).rechunk()
        offset = 0
        for length in group:
            pieces.append(values.slice(offset, length))
            offset += length
        start += sum(group)
    return pl.concat(pieces, rechunk=False)


def _batch(v: Mapping[str, pl.DataFrame], facts: EventFacts) -> pl.DataFrame:
    """Cycle time, awaiting the sponsor, disposed with an open deviation or OOS, and QA review
    missing (its first review comes from every valid entry: `facts`)."""
    batch = v["batch"]
    decided = batch.select("batch_id", "cmo_decided_at")
    deviations = v["deviation"].filter(pl.col("status") != "CANCELLED")
    linked = (
        v["deviation_link"].select("batch_id", "deviation_id").drop_nulls()
        .join(deviations.select("deviation_id", pl.col("awareness_at").alias("opened_at"),
                                "closed_at"), on="deviation_id")
    )  # fmt: skip
    open_deviation, open_oos = (
        records.select("batch_id", "opened_at", "closed_at")
        .join(decided, on="batch_id")
        .filter(
            (pl.col("opened_at") <= pl.col("cmo_decided_at"))
            & (pl.col("closed_at").is_null() | (pl.col("closed_at") > pl.col("cmo_decided_at")))
        )
        .select("batch_id")
        for records in (linked, v["oos_investigation"])
    )
    open_at_decision = pl.concat([open_deviation, open_oos]).unique().get_column("batch_id")
    return (
        batch.join(facts.review, on="batch_id", how="left")
        .with_columns(
            _days(pl.col("sponsor_decided_at"), pl.col("mfg_end")).alias("cycle_time_days"),
            ((pl.col("cmo_decision") == "RELEASED") & pl.col("sponsor_decision").is_null())
            .fill_null(False)
            .alias("awaiting_sponsor_release"),
            (
                pl.col("cmo_decided_at").is_not_null()
                & pl.col("batch_id").is_in(open_at_decision.implode())
            ).alias("disposed_with_open_deviation"),
            (
                pl.col("cmo_decided_at").is_not_null()
                & (pl.col("__review").is_null() | (pl.col("__review") > pl.col("cmo_decided_at")))
            ).alias("qa_review_missing"),
        )
        .drop("__review")
    )


def _training_gaps(
    days: pl.DataFrame, product_sop: pl.DataFrame, training: pl.DataFrame
) -> pl.DataFrame:
    """training_gap per (performed_by, product_id, __day): some SOP of the product has no
    training record with trained_at <= day <= due_at (a null due_at never expires).

    The days an operator is not covered for an SOP are intervals: before the first training,
    between trainings whose coverings do not meet, after the last expiry (every day for an
    SOP never trained). A product's uncovered days are the union over its SOPs, so each
    operator-day is one as-of lookup into its intervals, not one per SOP of the product
    (7.5M rows on the large preset).
    """
    pair = ["performed_by", "sop_id"]
    needed = (
        days.select("performed_by", "product_id").unique()
        .join(product_sop.select("product_id", "sop_id").drop_nulls().unique(), on="product_id")
    )  # fmt: skip
    # Only the training of the operators judged (an incremental run judges a few batches')
    # in the SOPs of their products: the other records cover nothing asked for.
    operators = days.get_column("performed_by").unique().implode()
    covered = (
        training.filter(pl.col("operator_id").is_in(operators))
        .join(
            needed.select(pl.col("performed_by").alias("operator_id"), "sop_id").unique(),
            on=["operator_id", "sop_id"], how="semi",
        )
        .select(
            pl.col("operator_id").alias("performed_by"), "sop_id",
            pl.col("trained_at").alias("__start"),
            pl.col("due_at").fill_null(_OPEN_DUE).alias("__end"),
        )
        .drop_nulls(["performed_by", "sop_id", "__start"])
        .filter(pl.col("__end") >= pl.col("__start"))
        .sort(*pair, "__start")
        .with_columns(pl.col("__end").cum_max().over(pair).alias("__reach"))
    )  # fmt: skip
    day = pl.duration(days=1)
    before = covered.select(
        *pair,
        (pl.col("__reach").shift(1).over(pair) + day).fill_null(_EVER).alias("__from"),
        (pl.col("__start") - day).alias("__to"),
    )
    after = covered.group_by(pair).agg(
        (pl.col("__reach").last() + day).alias("__from"), pl.lit(_OPEN_DUE).alias("__to")
    )
    uncovered = pl.concat([before, after.select(*before.columns)]).filter(
        pl.col("__from") <= pl.col("__to")
    )
    never = needed.join(covered.select(pair).unique(), on=pair, how="anti").select(
        *needed.columns, pl.lit(_EVER).alias("__from"), pl.lit(_OPEN_DUE).alias("__to")
    )
    intervals = (
        pl.concat([needed.join(uncovered, on=pair), never])
        .sort("performed_by", "product_id", "__from")
        .select("performed_by", "product_id", "__from",
                pl.col("__to").cum_max().over("performed_by", "product_id").alias("__until"))
        .sort("__from")
    )  # fmt: skip
    return (
        days.sort("__day")
        .join_asof(
            intervals, left_on="__day", right_on="__from", by=["performed_by", "product_id"],
            strategy="backward", check_sortedness=False,
        )
        .select("performed_by", "product_id", "__day",
                (pl.col("__until") >= pl.col("__day")).fill_null(False).alias("training_gap"))
    )  # fmt: skip


def _like_chunks(frame: pl.DataFrame, values: pl.Series) -> pl.Series:
    """`values` (one per row of `frame`) cut where the frame's chunks are cut (views)."""
    lengths = frame.get_column(frame.columns[0]).chunk_lengths() or [frame.height]
    starts = np.cumsum([0, *lengths[:-1]]).tolist()
    values = values.rechunk()
    return pl.concat(
        [values.slice(start, length) for start, length in zip(starts, lengths, strict=True)],
        rechunk=False,
    )


def _sequence_flags(events: pl.DataFrame, batch: pl.DataFrame) -> list[pl.Series]:
    """out_of_sequence and outside_batch_window per event (DOMAIN.md, steps out of order).

    out_of_sequence: performed before an event of a lower seq of its batch. Of such a pair the
    higher seq is flagged, the step performed ahead of its place, so one step done early flags
    that step, not each step it overtook; events of the same seq are not compared.
    outside_batch_window: performed before the batch's mfg_start or after its final CMO
    disposition (released or rejected; work goes on after a hold).

    A batch's entries stand together in the source's order, so its window is looked up once
    per run of one batch's entries, not once per entry: joining 10M entries on the batch id
    took 1.2-2.1 s, the runs 0.4-0.5 s (any order is right, only slower). Batches are numbered
    in order of first appearance, which keeps entries in source order already in (batch, seq)
    order for `_performed_early`.
    """
    runs = events.get_column("batch_id").rle().struct.unnest()  # len, value
    window = batch.select(
        "batch_id",
        pl.col("mfg_start").dt.epoch("us").alias("__start"),
        pl.when(pl.col("cmo_decision").is_in(FINAL_DECISIONS))
        .then(pl.col("cmo_decided_at").dt.epoch("us"))
        .alias("__end"),
    )  # an open end (or start), and a batch of no valid row: filled in each()
    ids = runs.select(pl.col("value").alias("batch_id"))
    numbered = (
        ids.unique(maintain_order=True)
        .join(window, on="batch_id", maintain_order="left")  # a batch of no valid row: -1
        .with_row_index("__b")
    )
    per_run = ids.join(numbered, on="batch_id", how="left", maintain_order="left")
    lengths = runs.get_column("len").to_numpy()

    def each(column: str, missing: int) -> np.ndarray:
        values = per_run.get_column(column).cast(pl.Int64).fill_null(missing).to_numpy()
        return np.repeat(values, lengths)

    # Fresh int64 arrays of every entry cost more in page faults than in arithmetic (0.9 s
    # of system time in a build's first call): each is made once, and reordered in place.
    at = events.get_column("performed_at").dt.epoch("us").to_numpy(writable=True)
    outside = at < each("__start", _EARLIEST)
    outside |= at > each("__end", _LATEST)
    seq = events.get_column("seq").cast(pl.Int64).to_numpy(writable=True)
    early = _performed_early(each("__b", -1), seq, at)
    return [
        _like_chunks(events, pl.Series("out_of_sequence", early)),
        _like_chunks(events, pl.Series("outside_batch_window", outside)),
    ]


def _performed_early(batch: np.ndarray, seq: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Per event: performed (`at`) before some event of a lower `seq` in its `batch` (an
    index; negative: no batch, never flagged). Reorders the three arrays it is given when
    they are not in (batch, seq) order.

    Events are put in (batch, seq) order by numpy's stable sort, unless they are in it
    already (entries in source order, batches numbered as they appear). Times become offsets
    from their batch's first, each batch shifted past the one before, so one running maximum
    over all events never carries a time into the next batch: no join of events to events,
    no per-batch loop.
    """
    n = len(batch)
    if n == 0:
        return np.zeros(0, dtype=bool)
    width = int(seq.max()) + 1
    order = None
    if (int(batch.max()) + 2) * width < 2**63:
        key = batch + 1
        key *= width
        key += seq
        if not (key[1:] >= key[:-1]).all():
            order = np.argsort(key, kind="stable")
        del key
    else:
        order = np.lexsort((seq, batch))
    if order is not None:
        # Reordered in place: the caller's arrays are the only copy of 10M rows.
        batch[:] = batch[order]
        seq[:] = seq[order]
        at[:] = at[order]
    new_batch = np.ones(n, dtype=bool)
    new_batch[1:] = batch[1:] != batch[:-1]
    new_seq = new_batch.copy()
    new_seq[1:] |= seq[1:] != seq[:-1]
    starts = np.flatnonzero(new_batch)
    counts = np.diff(np.append(starts, n))
    at -= np.repeat(np.minimum.reduceat(at, starts), counts)
    span = int(at.max()) + 1
    # Coarser than a microsecond only if the shifted times would overflow int64 (batches
    # spanning centuries); flooring keeps every inversion it reports a true one.
    scale = -(-span * len(starts) // 2**62)
    if scale > 1:
        at //= scale
        span = span // scale + 1
    at += np.repeat(np.arange(len(starts), dtype=np.int64) * span, counts)
    latest = np.empty(n, dtype=np.int64)
    latest[0] = -1
    np.maximum.accumulate(at[:-1], out=latest[1:])
    if not new_seq.all():  # events of one seq compare with the latest before the first of them
        latest = latest[np.maximum.accumulate(np.where(new_seq, np.arange(n), 0))]
    early = (at < latest) & (batch >= 0)
    if order is None:
        return early
    flagged = np.zeros(n, dtype=bool)
    flagged[order[early]] = True
    return flagged


def _batch_event(v: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    events = v["batch_event"]
    # The steps out of order, by numpy on one core (0.4-0.8 s of a full build on `large`),
    # are found on a thread of their own while polars judges training on both; a day's few
    # entries' on this one.
    with ThreadPoolExecutor(1, thread_name_prefix="derive") as pool:
        if events.height >= SEQUENCE_THREAD_ROWS:
            sequence = pool.submit(_sequence_flags, events, v["batch"])
        else:
            sequence = Future()
            sequence.set_result(_sequence_flags(events, v["batch"]))
        return _batch_event_flags(v, events, sequence)


def _batch_event_flags(
    v: Mapping[str, pl.DataFrame], events: pl.DataFrame, sequence: Future[list[pl.Series]]
) -> pl.DataFrame:
    day = pl.col("performed_at").dt.date().alias("__day")
    # Training is judged per (operator, product, day), not per event, to stay fast at 10M;
    # a batch has one product, so each distinct (operator, batch, day) gets its verdict and
    # only that key goes back to the events (wide joins of 10M rows cost gigabytes).
    visits = (
        pl.concat(
            [piece.select("performed_by", "batch_id", day).unique() for piece in _pieces(events)]
        )
        .unique()
        .join(v["batch"].select("batch_id", "product_id"), on="batch_id", how="left")
    )
    days = visits.select("performed_by", "product_id", "__day").drop_nulls().unique()
    gaps = _training_gaps(days, v["product_sop"], v["training_record"])
    # The (operator, batch, day) keys with a gap are few: each piece's events of their
    # operators are looked up, instead of joining every event to every verdict (0.9 s).
    key = ["performed_by", "batch_id", "__day"]
    gapped = visits.join(
        gaps.filter("training_gap"), on=["performed_by", "product_id", "__day"]
    ).select(key)
    operators = gapped.get_column("performed_by").unique().implode()

    def flags(piece: pl.DataFrame) -> pl.Series:
        hits = (
            piece.lazy().select("performed_by", "batch_id", day).with_row_index("__i")
            .filter(pl.col("performed_by").is_in(operators))
            .join(gapped.lazy(), on=key, how="semi")
            .collect().get_column("__i")
        )  # fmt: skip
        return pl.repeat(False, piece.height, eager=True).scatter(hits, True).alias("training_gap")

    gap = per_chunk(events, flags)
    late = (pl.col("recorded_at") - pl.col("performed_at")).dt.total_microseconds() / 60e6
    events = events.with_columns(gap, *sequence.result()).with_columns(
        late.alias("minutes_late"),
        (late > LATE_ENTRY_MINUTES).alias("late_entry"),
        ((late > LATE_ENTRY_MINUTES) & pl.col("late_entry_reason").is_null()).alias(
            "late_without_reason"
        ),
        (
            pl.col("event_type").is_in(list(VERIFIED_EVENT_TYPES)) & pl.col("verified_by").is_null()
        ).alias("sign_off_gap"),
        (pl.col("verified_by") == pl.col("performed_by"))
        .fill_null(False)
        .alias("self_verification"),
        (pl.col("verified_at") < pl.col("performed_at")).fill_null(False).alias("out_of_order"),
        pl.col("training_gap").fill_null(False),
    )
    flags = ["late_entry", "sign_off_gap", "self_verification", "out_of_order", "training_gap",
             "out_of_sequence", "outside_batch_window"]  # fmt: skip
    return events.with_columns(pl.any_horizontal(flags).alias("di_exception"))


def _equipment_usage(v: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """Previous occupant (redacted), and fitness at use (DOMAIN.md, equipment not fit for use):
    <what>_valid_at_use when the latest calibration / qualification performed up to the start
    of the use PASSED and its next_due is on or after the day of use; latest_<what>_at,
    _result and _due describe that latest one (nulls: none before the use).
    """
    sponsor = v["batch"].select("batch_id", pl.col(P).alias("__sponsor"))
    # One sort: each equipment's uses in a run, in order, so the use before is the row
    # before on the same equipment (a window per equipment took 10 ms of 81 on `large`), and
    # the as-of joins by equipment find each run in start order.
    usage = (
        v["equipment_usage"].join(sponsor, on="batch_id", how="left")
        .sort("equipment_id", "started_at", "usage_id")
    )  # fmt: skip
    follows = pl.col("equipment_id").shift(1).eq_missing(pl.col("equipment_id"))
    before = {
        name: pl.when(follows).then(pl.col(name).shift(1)) for name in ("__sponsor", "batch_id")
    }
    same = before["__sponsor"] == pl.col("__sponsor")
    usage = usage.with_columns(
        pl.when(follows).then(pl.col("ended_at").shift(1)).alias("previous_ended_at"),
        pl.when(before["batch_id"].is_null())
        .then(None)
        .when(same)
        .then(pl.lit("SAME_SPONSOR"))
        .otherwise(pl.lit("ANOTHER_CLIENT"))
        .alias("previous_occupant"),
        pl.when(same).then(before["batch_id"]).alias("previous_batch_id"),
    )
    for event_type in ("CALIBRATION", "QUALIFICATION"):
        what = event_type.lower()
        # Every result: a FAIL after the last PASS leaves the equipment unfit until a new PASS
        # (of two at the same instant, the PASS counts: it sorts last; then the later id).
        latest = (
            v["equipment_event"]
            .filter(pl.col("event_type") == event_type)
            .sort("performed_at", pl.col("result") == "PASS", "equipment_event_id")
            .select(
                "equipment_id",
                pl.col("performed_at").alias(f"latest_{what}_at"),
                pl.col("result").alias(f"latest_{what}_result"),
                pl.col("next_due").alias(f"latest_{what}_due"),
            )
        )
        passed = (pl.col(f"latest_{what}_result") == "PASS") & (
            pl.col(f"latest_{what}_due") >= pl.col("started_at").dt.date()
        )
        usage = usage.join_asof(
            latest,
            left_on="started_at",
            right_on=f"latest_{what}_at",
            by="equipment_id",  # sorted by start within each equipment: all it needs
            check_sortedness=False,
            coalesce=False,
        ).with_columns(passed.fill_null(False).alias(f"{what}_valid_at_use"))
    return usage.drop("__sponsor")


def _deviation(v: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """is_recurrence (DOMAIN.md KPI 7): recurrence_of names a deviation raised within the 12
    calendar months before this one's awareness (RECURRENCE_WINDOW: on or after the same day
    12 months earlier, not after this one). Judged here, from every deviation of the site,
    because routing blanks recurrence_of where the earlier one is not visible.
    """
    earlier = v["deviation"].select(
        pl.col("deviation_id").alias("recurrence_of"), pl.col("awareness_at").alias("__earlier")
    )
    window_start = pl.col("awareness_at").dt.offset_by(f"-{RECURRENCE_WINDOW}").dt.date()
    within = (pl.col("__earlier") <= pl.col("awareness_at")) & (
        pl.col("__earlier").dt.date() >= window_start
    )
    return (
        v["deviation"]
        .join(earlier, on="recurrence_of", how="left", maintain_order="left")
        .with_columns(
            _days(pl.col("closed_at"), pl.col("awareness_at")).alias("days_to_close"),
            (pl.col("closed_at").dt.date() <= pl.col("original_due")).alias("closed_on_time"),
            within.fill_null(False).alias("is_recurrence"),
        )
        .drop("__earlier")
    )


def _capa(v: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    extensions = v["capa_extension"].group_by("capa_id").agg(pl.len().alias("extension_count"))
    latest = (
        v["capa_effectiveness"].sort("checked_at", "check_id")
        .group_by("capa_id").agg(pl.col("result").last().alias("effectiveness_result"))
    )  # fmt: skip
    closed = pl.col("closed_at").dt.date()
    return (
        v["capa"]
        .join(extensions, on="capa_id", how="left")
        .join(latest, on="capa_id", how="left")
        .with_columns(
            pl.col("extension_count").fill_null(0).cast(pl.Int64),
            (closed <= pl.col("original_due")).alias("closed_on_time_original"),
            (closed <= pl.col("current_due")).alias("closed_on_time_current"),
        )
    )


def _change_impact(v: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """Breaches of the sponsor's quality agreement (DOMAIN.md, change control).

    effective_early: went effective before the recorded obligation was met (approved, or
    notified). obligation_required: what the sponsor's agreement sets for the change's type;
    obligation_below_agreement: the recorded obligation is weaker (NOTIFY where it says
    PRIOR_APPROVAL). violation is either, violation_reason says which in words.
    """
    effective = pl.col("__effective")
    prior = (
        (pl.col("obligation") == "PRIOR_APPROVAL")
        & effective.is_not_null()
        & (
            (pl.col("decision") != "APPROVED").fill_null(True)
            | (pl.col("decided_at").dt.date() > effective).fill_null(True)
        )
    )
    notify = (
        (pl.col("obligation") == "NOTIFY")
        & effective.is_not_null()
        & (pl.col("notified_at").dt.date() > effective).fill_null(True)
    )
    rank = {"NONE": 0, "NOTIFY": 1, "PRIOR_APPROVAL": 2}  # weakest to strongest
    words = {"NONE": "none", "NOTIFY": "notification", "PRIOR_APPROVAL": "prior approval"}
    required = (
        v["agreement_term"].filter(pl.col("term_type") == "CHANGE")
        .join(v["quality_agreement"].select("agreement_id", P), on="agreement_id")
        .select(P, pl.col("subject").alias("__type"), "obligation").drop_nulls()
        .group_by(P, "__type")
        .agg(pl.col("obligation").sort_by(pl.col("obligation").replace_strict(rank)).last()
             .alias("obligation_required"))
    )  # fmt: skip
    below = (
        pl.col("obligation").replace_strict(rank, default=None)
        < pl.col("obligation_required").replace_strict(rank, default=None)
    ).fill_null(False)
    weaker = pl.format(
        "obligation recorded as {}, but the quality agreement requires {} for {} changes",
        pl.col("obligation").replace_strict(words, default=pl.col("obligation")),
        pl.col("obligation_required").replace_strict(words, default=pl.col("obligation_required")),
        pl.col("__type").str.to_lowercase().str.replace_all("_", " "),
    )
    changes = v["change_control"].select(
        "change_id", pl.col("actual_effective").alias("__effective"), pl.col("change_type")
        .alias("__type")
    )  # fmt: skip
    return (
        v["change_impact"]
        .join(changes, on="change_id", how="left")
        .join(required, on=[P, "__type"], how="left")
        .with_columns(
            (prior | notify).alias("effective_early"),
            below.alias("obligation_below_agreement"),
            (prior | notify | below).alias("violation"),
            pl.concat_str(
                pl.when(prior)
                .then(pl.lit("effective before prior approval"))
                .when(notify)
                .then(pl.lit("effective before notification")),
                pl.when(below).then(weaker),
                separator="; ",
                ignore_nulls=True,
            ).alias("violation_reason"),
        )
        .with_columns(
            pl.when(pl.col("violation")).then(pl.col("violation_reason")).alias("violation_reason")
        )
        .drop("__effective", "__type")
    )


def _deviation_link(v: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    deadlines = (
        v["agreement_term"].filter(pl.col("term_type") == "NOTIFICATION")
        .join(v["quality_agreement"].select("agreement_id", P), on="agreement_id")
        .group_by(P, "subject").agg(pl.col("deadline_hours").min())
    )  # fmt: skip
    deviations = v["deviation"].select(
        "deviation_id", "awareness_at",
        pl.concat_str(pl.lit("DEVIATION_"), pl.col("classification")).alias("subject"),
    )  # fmt: skip
    return (
        v["deviation_link"]
        .join(deviations, on="deviation_id", how="left")
        .join(deadlines, on=[P, "subject"], how="left")
        .with_columns(
            pl.col("deadline_hours").alias("notification_deadline_hours"),
            (
                pl.col("notified_at")
                > pl.col("awareness_at") + pl.duration(hours=pl.col("deadline_hours"))
            ).alias("notified_late"),
        )
        .drop("awareness_at", "subject", "deadline_hours")
    )


def _tech_transfer(v: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    engineering = (
        v["tt_milestone"].filter(pl.col("milestone") == "ENGINEERING_BATCH")
        .group_by("project_id").agg(pl.col("actual_at").max().alias("__engineering"))
    )  # fmt: skip
    return (
        v["tech_transfer"]
        .join(engineering, on="project_id", how="left")
        .with_columns(
            (_days(pl.col("__engineering"), pl.col("contract_signed_at")) / 7).alias(
                "weeks_to_engineering_batch"
            )
        )
        .drop("__engineering")
    )


@dataclass(frozen=True)
class Derivation:
    """A table's derived columns: `derive(valid, facts)` returns the table's valid rows with
    them added; it reads only the valid tables named in `reads`, and the entries' facts
    only where `facts` says so.

    Of a table in `columns`, it reads only those columns of the rows the derived table's
    own rows name (by the column that refers to it): `of` hands it no more, and that is
    all an incremental run's signature digests of it (etl.route), so a change elsewhere in
    that table does not publish the derived table again.

    With `groups`, a row's derived columns read no other row of its own table than those
    with its value of that column (and what those name): an incremental run derives again
    only the groups of the partitions a change reaches (etl.route.regrouped)."""

    derive: Callable[[Mapping[str, pl.DataFrame], EventFacts], pl.DataFrame]
    reads: tuple[str, ...]
    facts: bool = False  # reads the entries' facts too
    columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    groups: str | None = None

    def of(self, table: str, valid: Mapping[str, pl.DataFrame], facts: EventFacts) -> pl.DataFrame:
        """`table`'s valid rows with its derived columns."""
        return self.derive(_Narrowed(table, valid, self.columns), facts)


class _Narrowed(Mapping[str, pl.DataFrame]):
    """The valid tables as a derivation of `table` may read them (Derivation.columns)."""

    def __init__(
        self, table: str, valid: Mapping[str, pl.DataFrame], columns: Mapping[str, tuple]
    ) -> None:
        self.table, self.valid, self.columns = table, valid, columns

    def __getitem__(self, name: str) -> pl.DataFrame:
        if name not in self.columns:
            return self.valid[name]
        return named_rows(self.valid, self.table, name, self.columns[name])

    def __iter__(self) -> Iterator[str]:
        return iter(self.valid)

    def __len__(self) -> int:
        return len(self.valid)


def named_rows(
    valid: Mapping[str, pl.DataFrame], table: str, name: str, columns: tuple[str, ...]
) -> pl.DataFrame:
    """The `columns` of the valid rows of table `name` that a row of `table` names, by its
    one column referring to `name` (and `name`'s key among `columns`)."""
    key = TABLES_BY_NAME[name].key
    (column,) = [c.name for c in TABLES_BY_NAME[table].columns if c.ref == name]
    named = valid[table].select(pl.col(column).alias(key)).unique()
    return valid[name].select(columns).join(named, on=key, how="semi", maintain_order="left")


def _rows(function: Callable[[Mapping[str, pl.DataFrame]], pl.DataFrame]) -> Callable:
    return lambda valid, facts: function(valid)


DERIVED: dict[str, Derivation] = {
    "batch": Derivation(
        _batch, ("batch", "deviation", "deviation_link", "oos_investigation"), facts=True
    ),
    "batch_event": Derivation(
        _rows(_batch_event), ("batch_event", "batch", "product_sop", "training_record")
    ),
    "equipment_usage": Derivation(
        _rows(_equipment_usage),
        ("equipment_usage", "batch", "equipment_event"),
        # Whose batch each use was: not the batches' status or dates, which change daily.
        columns={"batch": ("batch_id", P)},
        # A use reads the use before it on its equipment, and that equipment's events.
        groups="equipment_id",
    ),
    "deviation": Derivation(_rows(_deviation), ("deviation",)),
    "capa": Derivation(_rows(_capa), ("capa", "capa_extension", "capa_effectiveness")),
    "change_impact": Derivation(
        _rows(_change_impact),
        ("change_impact", "change_control", "agreement_term", "quality_agreement"),
    ),
    "deviation_link": Derivation(
        _rows(_deviation_link),
        ("deviation_link", "deviation", "agreement_term", "quality_agreement"),
    ),
    "tech_transfer": Derivation(_rows(_tech_transfer), ("tech_transfer", "tt_milestone")),
}


def derive(valid: dict[str, pl.DataFrame], facts: EventFacts, table: str) -> pl.DataFrame:
    """`table`'s published columns: its valid rows with its derived columns, if any."""
    if table in DERIVED:
        return DERIVED[table].of(table, valid, facts)
    return valid[table]
