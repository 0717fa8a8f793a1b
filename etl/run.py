"""One ETL run end to end: lock, then the stages in order (etl.extract, etl.validate,
etl.derive and etl.route, etl.publish), with the run's checks between them.

Stage names of failure injection (PORTAL_ETL_FAIL_AFTER) are STAGES, and UPLOAD_STAGES for a
warehouse on S3; "transform" is the derive and route stage.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache, partial
from pathlib import Path

import polars as pl

from etl import publish_s3
from etl.extract import Source, SourceError, extract_all, open_source
from etl.incremental import (
    EVENTS,
    SETTLED_STATUSES,
    EventFacts,
    Events,
    LiveSnapshotError,
    State,
    digest,
    etl_code,
    parts_of,
)
from etl.publish import (
    Carried,
    PartitionFolders,
    Plan,
    PublishError,
    RunStateError,
    clean_leftovers,
    keep_whole,
    live_fingerprints,
    live_manifest,
    live_seals,
    publish,
    run_manifest,
    staging_dir,
    writer_version,
)
from etl.redact import MaskedText
from etl.route import Before, Router, derive_and_route, partitions, regrouped, unmoved
from etl.validate import Reuse, Validated, as_of_from, validate_files, write_valid_state
from warehouse import s3
from warehouse.contract import TABLES, TABLES_BY_NAME
from warehouse.layout import (
    LOCK,
    PARTITION_KEY,
    SOURCE_STATE,
    current_snapshot,
    s3_staging,
)

STAGES = ("extract", "validate", "transform", "publish-midway", "publish")
UPLOAD_STAGES = ("upload-midway", "upload")  # a warehouse on S3 only: after the local publish
FAIL_AFTER_ENV = "PORTAL_ETL_FAIL_AFTER"  # "<stage>" raises there; "<stage>:hang" sleeps
PARQUET_MAGIC = b"PAR1"  # a Parquet file's first and last four bytes


class EtlError(Exception):
    """A run that must not publish; the message is the one-line reason for the operator."""


class InjectedFailure(EtlError):
    """Raised by the fail_after test hook."""


class _JudgeEveryEntry(Exception):
    """A day's changes rename what an entry kept from the live snapshot names: the run is
    made again, judging every entry (etl.route.Routed.rejudge)."""


@dataclass(frozen=True)
class RunResult:
    run_id: str
    snapshot: Path
    mode: str  # "full" or "incremental"
    extracted: dict[str, int]
    published: dict[str, int]  # rows over all partitions
    quarantined: dict[str, int]
    reason_counts: dict[str, int]
    seconds: float
    masked: list[MaskedText]  # free text of shared records masked in a sponsor's copy


def new_run_id(now: datetime) -> str:
    """Sortable run id: UTC time, then a random suffix against same-second collisions."""
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


@contextmanager
def run_lock(warehouse: Path) -> Iterator[None]:
    """Refuse to start while another run holds the warehouse lock."""
    warehouse.mkdir(parents=True, exist_ok=True)
    with (warehouse / LOCK).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise EtlError(f"another ETL run is in progress on {warehouse} (lock held)") from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _checkpoint(fail_after: str | None, note: Callable[[str], None]) -> Callable[[str], None]:
    hook = fail_after or os.environ.get(FAIL_AFTER_ENV)
    stage, _, action = (hook or "").partition(":")

    def checkpoint(reached: str) -> None:
        if reached != stage:
            return
        note(f"injected failure point reached after {reached}")
        if action == "hang":
            time.sleep(3600)
        raise InjectedFailure(f"injected failure after stage {reached}")

    return checkpoint


def _previous_state(warehouse: Path) -> tuple[dict, Path] | None:
    """The live snapshot's manifest and extracted source state folder, if complete."""
    live = current_snapshot(warehouse)
    if live is None:
        return None
    manifest = live_manifest(live)
    folder = live / SOURCE_STATE
    if not all((folder / f"{table.name}.parquet").is_file() for table in TABLES):
        return None
    for table in TABLES:
        for path in parts_of(folder, table.name):
            # A file cut short has no footer: found here, not midway through extraction.
            damage = _not_whole(path)
            if damage is not None:
                raise RunStateError(f"{SOURCE_STATE}/{path.name} cannot be read ({damage})")
    return manifest, folder


def _not_whole(path: Path) -> str | None:
    """Why a Parquet file cannot be whole, if it cannot: "PAR1" at both ends, and a footer
    that fits between them. Its last bytes only, not the footer parsed (pyarrow parsed the
    37 footers of `large` in 0.1 s, 2% of a day's run)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(size - 8, 0))
            tail = handle.read(8)
    except OSError as exc:
        return str(exc)
    footer = int.from_bytes(tail[:4], "little") if len(tail) == 8 else size
    if head != PARQUET_MAGIC or tail[4:] != PARQUET_MAGIC or footer > size - 12:
        return "not a whole Parquet file: its end is missing"
    return None


def _live_run(
    warehouse: Path, origin: Source, note: Callable[[str], None]
) -> tuple[tuple[dict, Path] | None, State | None]:
    """What an incremental run builds on: the live snapshot's manifest and source state
    folder, and its run state; (None, None) for a full build, its reason noted."""
    try:
        previous = _previous_state(warehouse)
        if previous is None:
            return None, None
        if previous[0].get("source") != origin.display:
            # Changes of another source cannot be merged into this state: rebuild.
            note("source differs from the previous run's: full rebuild")
            return None, None
        live = previous[1].parent
        state = State.read(live)
        if state is None or state.code != etl_code():
            # Its state, verdicts and files were made by other code (or another polars).
            note("the ETL's code differs from the live snapshot's: full rebuild")
            return None, None
        # Read now as publish reads them: a damaged one rebuilds, not fails the run there.
        live_fingerprints(live)
        live_seals(live)
    except RunStateError as exc:
        # The live run's bookkeeping, not its published files: a full build needs none of
        # it and writes it anew.
        note(f"the live snapshot's {exc}: full rebuild")
        return None, None
    return previous, state


def _valid_digests(validated: Validated, state: State | None) -> dict[str, str]:
    """Digest of each table's valid rows (the entries aside); a table whose valid rows are
    the live run's (validate reused them) has the live run's digest."""
    return {
        table.name: state.digests[table.name]
        if state is not None and table.name in validated.reused and table.name in state.digests
        else digest(validated.valid[table.name])
        for table in TABLES
        if table.name != EVENTS
    }


def _kept_whole(
    previous: tuple[dict, Path] | None,
    state: State | None,
    signatures: dict[str, str],
    parts: list[str],
) -> dict[str, int]:
    """The tables whose published files the run keeps whole from the live snapshot (their
    signature is the live run's, and the files are there to keep), with their rows."""
    if previous is None or state is None:
        return {}
    listed, live = previous[0], previous[1].parent
    prints, writer = live_fingerprints(live), writer_version()
    kept = {}
    for name, signature in signatures.items():
        if state.signatures.get(name) == signature:
            rows = keep_whole(listed, prints, name, parts, writer)
            if rows is not None:
                kept[name] = rows
    return kept


def _reconcile_kept(valid: dict[str, pl.DataFrame], kept: dict[str, int]) -> None:
    """A table kept whole whose rows each have one partition (direct, via) holds in its
    live files as many rows as it has valid rows (a shared table's copies cannot be counted
    so)."""
    for name, rows in kept.items():
        if TABLES_BY_NAME[name].route in ("direct", "via") and rows != valid[name].height:
            raise EtlError(
                f"table {name}: {valid[name].height} valid rows but the live files kept "
                f"whole hold {rows}"
            )


def _reconcile(valid: dict[str, pl.DataFrame], published: dict[str, pl.DataFrame]) -> None:
    """Every valid row reaches at least one partition and no other row appears (of the
    tables published: not those kept whole)."""
    for table in TABLES:
        if table.name not in published:
            continue
        rows, out = valid[table.name], published[table.name]
        if out.height == rows.height:
            # Every row has at least one partition (SITE when no sponsor's), so as many rows
            # means one copy each: the same keys, compared as sums of their hashes, 40x
            # cheaper than counting distinct keys (1.3 s over 10M entries).
            if _key_sum(out, table.key) != _key_sum(rows, table.key):
                raise EtlError(
                    f"table {table.name}: {rows.height} valid rows but the published rows "
                    "are not them"
                )
            continue
        keys = out.get_column(table.key).n_unique()
        if keys != rows.height:
            raise EtlError(f"table {table.name}: {rows.height} valid rows but {keys} published")


def _reconcile_regrown(
    router: Router, published: dict[str, pl.DataFrame], regrown: dict[str, frozenset[str]]
) -> None:
    """The published rows of a regrown table are its valid rows placed in the partitions
    derived again, each once and in its own partition (their (key, partition) pairs compared
    as digests)."""
    for name, again in regrown.items():
        table = TABLES_BY_NAME[name]
        placed = router.placed(table).filter(pl.col(PARTITION_KEY).is_in(sorted(again)))
        out = published[name].select(table.key, PARTITION_KEY)
        if digest(out) != digest(placed):
            raise EtlError(
                f"table {name}: {placed.height} valid rows in the partitions derived again, "
                f"but the {out.height} published are not them"
            )


def _live_owners(reuse: Reuse, table: str) -> pl.DataFrame | None:
    """(key, sponsor_id) of a directly routed table's valid rows as the live run judged
    them; None where its file cannot be read."""
    key = TABLES_BY_NAME[table].key
    try:
        return pl.read_parquet(reuse.valid_file(table), columns=[key, PARTITION_KEY])
    except (OSError, pl.exceptions.PolarsError):
        return None


def _masked_kept(
    listed: dict,
    kept: Mapping[str, int],
    regrown: Mapping[str, frozenset[str]],
    published: Mapping[str, pl.DataFrame],
    events: Events,
    quarantine: pl.DataFrame,
) -> list[MaskedText]:
    """The live manifest's masked values that stay in what this run keeps of the live
    snapshot, masked as they were (etl.route.derive_and_route): those of the tables kept
    whole, of the partitions of regrown tables not derived again, and of the entries kept
    (neither judged valid again nor quarantined now). A full build reports them too."""
    judged = None
    if events.dirty is not None:
        key = TABLES_BY_NAME[EVENTS].key
        judged = set(published[EVENTS].get_column(key)) | set(quarantine.get_column("key"))
    out = []
    for m in listed.get("masked_free_text", []):
        table, key, partition = m["table"], m["key"], m["partition"]
        if (
            table in kept
            or (table in regrown and partition not in regrown[table])
            or (table == EVENTS and judged is not None and key not in judged)
        ):
            out.append(MaskedText(table, key, m["column"], partition, tuple(m["kinds"])))
    return out


def _key_sum(frame: pl.DataFrame, key: str) -> int:
    return frame.get_column(key).hash(seed=0).sum()


def run_etl(
    source: str | Path,
    warehouse: Path | str,
    *,
    full: bool = False,
    progress: Callable[[str], None] | None = None,
    fail_after: str | None = None,
) -> RunResult:
    """Run the nightly ETL into `warehouse` (a folder, or s3://bucket/prefix: built in a local
    staging warehouse, then uploaded); raises EtlError when nothing was published."""
    started = time.monotonic()
    note = progress or (lambda message: None)
    checkpoint = _checkpoint(fail_after, note)
    location = s3.Location.parse(warehouse) if s3.is_s3(warehouse) else None
    warehouse = s3_staging(location) if location else Path(warehouse)
    with run_lock(warehouse):
        clean_leftovers(warehouse)
        try:
            origin = open_source(source)
        except SourceError as exc:
            raise EtlError(str(exc)) from exc
        previous, state = (None, None) if full else _live_run(warehouse, origin, note)
        mode = "full" if previous is None else "incremental"
        run_id = new_run_id(datetime.now(UTC))
        note(f"run {run_id} ({mode}) from {origin.display}")
        every_entry = False
        while True:
            staging = staging_dir(warehouse, run_id)
            folders = None
            try:
                if previous is not None:
                    folders = PartitionFolders.of_live(staging, previous[0])
                snapshot, result = _stages(origin, warehouse, staging, previous, state,
                                           run_id, note, checkpoint, folders,
                                           every_entry)  # fmt: skip
                break
            except BaseException as exc:
                # Nothing of a failed run stays (a killed run's is removed by the next run).
                if folders is not None:
                    with suppress(Exception):  # the run's own error is the one to report
                        folders.wait()
                shutil.rmtree(staging, ignore_errors=True)
                if not isinstance(exc, _JudgeEveryEntry) or every_entry:
                    raise
            note("an identifier a kept entry names changed: made again, every entry judged")
            every_entry = True
        if location is not None:
            note(f"upload to {location}")
            try:
                publish_s3.publish(snapshot, location, s3.filesystem(), checkpoint, note=note)
            except OSError as exc:
                # current.json is written last: the live run stays what it was.
                raise EtlError(f"upload to {location} failed, nothing published: {exc}") from exc
    return RunResult(
        run_id=run_id,
        snapshot=snapshot,
        mode=mode,
        seconds=time.monotonic() - started,
        **result,
    )


def _write_state(
    run_state: State,
    valid: dict[str, pl.DataFrame],
    reused: dict[str, Path],
    staging: Path,
    live: Path | None = None,
) -> None:
    """The run state of a staged snapshot: what the next run builds on."""
    run_state.write(staging, live)
    write_valid_state(staging, valid, reused)


def _stages(
    origin: Source,
    warehouse: Path,
    staging: Path,
    previous: tuple[dict, Path] | None,
    state: State | None,
    run_id: str,
    note: Callable[[str], None],
    checkpoint: Callable[[str], None],
    folders: PartitionFolders | None = None,
    every_entry: bool = False,
) -> tuple[Path, dict]:
    """Extract, validate, transform and publish into `staging`; the snapshot and the
    run's counts for its RunResult. An incremental run judges only the entries its changes
    reach, unless `every_entry`.
    """
    mode = "full" if previous is None else "incremental"
    now = datetime.now().replace(microsecond=0)
    try:
        facts, events = extract_all(origin, staging, previous, state, run_id, note, now)
    except SourceError as exc:
        raise EtlError(str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - driver errors vary; the reason must show
        raise EtlError(f"extract failed: {exc}") from exc
    if facts["sponsor"].rows == 0 or all(f.rows == 0 for f in facts.values()):
        raise EtlError("source is empty (no sponsors); nothing published")
    if every_entry:
        events.judge_every()
    checkpoint("extract")

    note("validate")
    # The text comes back from the staged source state a table (or a slice) at a time.
    as_of = as_of_from((f.due(now) for f in facts.values()), now)
    reuse = None
    if previous is not None and state is not None and as_of >= state.as_of:
        reuse = Reuse(
            live=previous[1].parent,
            unchanged=frozenset(name for name, fact in facts.items() if fact.unchanged),
            inputs=state.inputs,
            future=frozenset(state.future),
            changed={
                name: fact.changed for name, fact in facts.items() if fact.changed is not None
            },
        )
    # The text extraction kept of the tables it wrote (an incremental run's), not read again.
    texts = {name: fact.text for name, fact in facts.items() if fact.text is not None}
    undecodable = frozenset(name for name, fact in facts.items() if fact.undecodable)
    try:
        validated = validate_files(staging / SOURCE_STATE, as_of, events, reuse, texts, undecodable)
    except LiveSnapshotError as exc:
        raise EtlError(f"validate failed, nothing published: {exc}") from exc
    finally:
        texts.clear()  # judged: its memory goes
        for fact in facts.values():
            fact.text = None
    if validated.reused:
        note(f"validate kept {len(validated.reused)} tables as the live run judged them: "
             f"{', '.join(sorted(validated.reused))}")  # fmt: skip
    if validated.partly:
        note(f"validate judged again only the changed rows of {len(validated.partly)} tables: "
             f"{', '.join(sorted(validated.partly))}")  # fmt: skip
    if validated.valid["sponsor"].height == 0:
        raise EtlError("source has no valid sponsor; nothing published")
    judged = validated.valid[EVENTS].height + validated.quarantine[EVENTS].height
    if events.dirty is None:
        facts[EVENTS].rows = judged
        note(f"validate: every entry judged ({judged})")
    else:
        note(f"validate: {judged} entries of {events.dirty.len()} changed batches judged again")
    validated.count_every_entry(events)
    checkpoint("validate")

    note("transform")
    fresh = EventFacts.of(validated.valid[EVENTS])
    if events.dirty is None:
        event_facts = fresh
    else:
        assert events.previous is not None
        event_facts = events.previous.facts.replaced(events.dirty, fresh)
    settled = (
        validated.valid["batch"]
        .filter(pl.col("status").is_in(SETTLED_STATUSES))
        .get_column("batch_id")
    )
    digests = _valid_digests(validated, state)
    router = Router(validated.valid, event_facts)
    parts = partitions(validated.valid)
    signatures: dict[str, str] = {}
    kept: dict[str, int] = {}
    same_rows: dict[str, frozenset[str]] = {}
    regrown: dict[str, frozenset[str]] = {}

    def keep() -> tuple[frozenset[str], dict[str, frozenset[str]]]:
        """The tables kept whole, and the partitions of each regrouped table to derive again
        (called by derive_and_route while masking runs)."""
        for table in TABLES:
            signature = router.signature(table, digests, parts)
            if signature is not None:
                signatures[table.name] = signature
        kept.update(_kept_whole(previous, state, signatures, parts))
        _reconcile_kept(validated.valid, kept)
        if kept:
            note(f"kept {len(kept)} tables whole: {', '.join(sorted(kept))}")
        if reuse is not None and previous is not None:
            owners = cache(partial(_live_owners, reuse))
            reused = set(validated.reused) - set(kept)
            same_rows.update(unmoved(router, reused, owners, parts))
            listed, prints = previous[0], live_fingerprints(previous[1].parent)
            # Its reads kept whole are still the live run's rows: every reused table counts.
            for name, again in regrouped(router, validated.reused, kept, owners).items():
                others = [sponsor for sponsor in parts if sponsor not in again]
                if keep_whole(listed, prints, name, others, writer_version()) is None:
                    continue  # a live file to keep is missing: derived whole
                regrown[name], same_rows[name] = again, frozenset(others)
                note(f"{name}: derived again for {len(again)} of {len(parts)} partitions")
        return frozenset(kept), regrown

    before = None
    if state is not None:
        assert state.names is not None and state.entry_texts is not None
        # Texts of entries kept from the live snapshot: none when every entry is judged.
        kept_texts = state.entry_texts if events.dirty is not None else state.entry_texts[:0]
        before = Before(state.names, kept_texts)
    routed = derive_and_route(
        validated.valid, event_facts, router, keep, validated.quarantine, before
    )
    if routed.rejudge:
        raise _JudgeEveryEntry
    published, masked = routed.published, routed.masked
    for name in routed.renamed:  # derived whole: its live files named what changed
        kept.pop(name, None)
        same_rows.pop(name, None)
        regrown.pop(name, None)
    if routed.renamed:
        note(f"derived whole, a text of theirs names what changed: "
             f"{', '.join(sorted(routed.renamed))}")  # fmt: skip
    if previous is not None:
        masked = sorted(masked + _masked_kept(previous[0], kept, regrown, published, events,
                                              validated.quarantine[EVENTS]))  # fmt: skip
    # A regrown table's rows are those of the partitions derived again; publish counts them
    # with the kept ones against every valid row.
    _reconcile(validated.valid, {k: v for k, v in published.items() if k not in regrown})
    _reconcile_regrown(router, published, regrown)
    run_state = State(
        digests=digests,
        latest={name: fact.latest for name, fact in facts.items()},
        as_of=validated.as_of,
        quarantine=validated.quarantine[EVENTS],
        facts=event_facts,
        inputs=validated.inputs,
        future=validated.future(),
        reread={name: fact.reread for name, fact in facts.items() if fact.reread is not None},
        signatures=signatures,
        undecodable=sorted(undecodable),
        names=routed.names,
        # Of every entry published: a run that judged only some adds theirs to the live's.
        entry_texts=routed.entry_texts
        if events.dirty is None or state is None or state.entry_texts is None
        else pl.concat([state.entry_texts, routed.entry_texts]).unique(),
    )
    # Publish clears validated.valid. The entries' valid rows are not in the run state (nor
    # kept alive by it while publish frees them: 10M of a full build).
    valid_state = {name: frame for name, frame in validated.valid.items() if name != EVENTS}
    checkpoint("transform")

    extracted = {t.name: facts[t.name].rows for t in TABLES}
    quarantined = {t.name: validated.quarantine[t.name].height for t in TABLES}
    valid_rows = {t.name: validated.valid[t.name].height for t in TABLES}
    # The entries an incremental run kept count too: every extracted entry is valid or
    # quarantined (publish checks the published count against it).
    valid_rows[EVENTS] = extracted[EVENTS] - quarantined[EVENTS]
    manifest = run_manifest(
        run_id=run_id,
        mode=mode,
        source=origin.display,
        as_of=validated.as_of,
        watermark={name: fact.watermark for name, fact in facts.items()},
        counts={"extracted": extracted, "valid": valid_rows, "quarantined": quarantined},
        masked=masked,
        reasons=validated.reason_counts,
    )
    published_rows = {name: frame.height for name, frame in published.items()} | kept
    if events.dirty is not None:  # each valid entry is in its batch's partition, kept or new
        published_rows[EVENTS] = valid_rows[EVENTS]
    for name in regrown:  # each valid row is in its parent's partition, kept or new
        published_rows[name] = valid_rows[name]
    plan = Plan(
        run_id=run_id,
        published=published,
        partitions=parts,
        quarantine=validated.quarantine,
        quarantine_kept={name: reuse.quarantine_file(name) for name in validated.reused}
        if reuse is not None
        else {},
        manifest=manifest,
        # The snapshot the run read at its start, and its manifest: one, by construction.
        live=current_snapshot(warehouse) if previous is None else previous[1].parent,
        carried=None if events.dirty is None else Carried(EVENTS, events.dirty, events.touched),
        settled=settled,
        listed=None if previous is None else previous[0],
        kept=frozenset(kept),
        unmoved=same_rows,
        regrown=frozenset(regrown),
        folders=folders,
    )
    # Publish frees each published table once written; the valid rows it shares columns
    # with are not needed any more either.
    del published
    validated.valid.clear()
    note("publish")
    writing = None
    try:
        # The run state written by a thread while publish runs (0.08 s of the main thread
        # on `large`'s day, 0.19 s of a full build's, before); publish waits for it before
        # going live.
        pool = ThreadPoolExecutor(1, thread_name_prefix="state")
        writing = pool.submit(
            _write_state, run_state, valid_state, validated.reused, staging,
            None if previous is None else previous[1].parent,
        )  # fmt: skip
        pool.shutdown(wait=False)  # its thread ends with the task
        del valid_state
        snapshot = publish(warehouse, replace(plan, writing=writing), checkpoint)
    except BaseException as exc:
        if writing is not None:  # done before the staged snapshot goes
            with suppress(Exception):
                writing.result()
        if isinstance(exc, (PublishError, OSError, pl.exceptions.ComputeError)):
            # A full disk or a refused snapshot: drop the half-written one, keep `current`.
            clean_leftovers(warehouse)
            raise EtlError(f"publish failed, nothing published: {exc}") from exc
        raise
    return snapshot, {
        "extracted": extracted,
        "published": published_rows,
        "quarantined": quarantined,
        "reason_counts": validated.reason_counts,
        "masked": masked,
    }
