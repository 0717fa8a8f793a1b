"""One ETL run end to end: lock, extract, validate, transform, publish, reconcile."""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from etl.extract import (
    Source,
    SourceError,
    merge_changes,
    open_source,
    read_changes,
    read_table,
)
from etl.incremental import (
    EVENTS,
    GLOBAL,
    MAX_DELTAS,
    SETTLED_STATUSES,
    EventFacts,
    Events,
    State,
    delta_name,
    digest,
    live_slices,
    parts_of,
)
from etl.publish import (
    Carried,
    Plan,
    PublishError,
    SourceStateWriter,
    clean_leftovers,
    publish,
    staging_dir,
)
from etl.redact import MaskedText
from etl.route import derive_and_route, partitions
from etl.validate import as_of_from, latest_change, validate_files
from warehouse.contract import TABLES
from warehouse.layout import LOCK, MANIFEST, SOURCE_STATE, code_version, current_snapshot

STAGES = ("extract", "validate", "transform", "publish-midway", "publish")
FAIL_AFTER_ENV = "PORTAL_ETL_FAIL_AFTER"  # "<stage>" raises there; "<stage>:hang" sleeps


class EtlError(Exception):
    """A run that must not publish; the message is the one-line reason for the operator."""


class InjectedFailure(EtlError):
    """Raised by the fail_after test hook."""


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
    manifest = json.loads((live / MANIFEST).read_text())
    folder = live / SOURCE_STATE
    if not all((folder / f"{table.name}.parquet").is_file() for table in TABLES):
        return None
    return manifest, folder


@dataclass
class _Extracted:
    """What the run needs of one extracted table once its text is on disk."""

    rows: int = 0
    watermark: str | None = None  # latest updated_at text, as in the source
    latest: datetime | None = None  # latest parseable updated_at

    def add(self, part: pl.DataFrame) -> None:
        self.rows += part.height
        mark = part.get_column("updated_at").drop_nulls().max() if part.height else None
        if mark is not None and (self.watermark is None or mark > self.watermark):
            self.watermark = mark
        latest = latest_change(part)
        if latest is not None and (self.latest is None or latest > self.latest):
            self.latest = latest


def _extract(
    origin: Source,
    staging: Path,
    previous: tuple[dict, Path] | None,
    run_id: str,
    note: Callable[[str], None],
) -> tuple[dict[str, _Extracted], Events]:
    """Extract every table into the staging source state, one table (or part) in memory at
    a time; incremental when the live snapshot's manifest and state folder are given. The
    entries of a delta run are kept as the live files plus this run's changes (see
    etl.incremental); every other table is merged into one file.
    """
    facts: dict[str, _Extracted] = {}
    folder = staging / SOURCE_STATE
    events = Events(files=[folder / f"{EVENTS}.parquet"])
    state = None if previous is None else State.read(previous[1].parent)
    for number, table in enumerate(TABLES, start=1):
        seen = facts[table.name] = _Extracted()
        if previous is None:
            parts = read_table(origin, table)
        else:
            manifest, before = previous
            mark = manifest.get("watermark", {}).get(table.name)
            changes = read_changes(origin, table, mark)
            if changes is None:  # too many to fetch by key: the table is read again
                parts = read_table(origin, table)
            elif table.name == EVENTS:
                events = _delta_events(state, before, folder, run_id, changes)
            if changes is not None and events.changes is not None and table.name == EVENTS:
                seen.add(changes)
                seen.rows = events.rows(manifest["tables"][EVENTS]["extracted"])
                seen.watermark = max(filter(None, (mark, seen.watermark)), default=None)
                seen.latest = _latest_entry(events, seen.latest)
                note(f"extract {number}/{len(TABLES)} {table.name}: {changes.height} changed")
                continue
            if (
                changes is not None
                and not changes.height
                and _keep_unchanged(table.name, manifest, before, folder, seen, state)
            ):
                note(f"extract {number}/{len(TABLES)} {table.name}: unchanged")
                continue
            if changes is not None:
                earlier = parts_of(before, table.name)
                parts = merge_changes(live_slices(earlier, table.key), changes, table.key)
            del changes
        writer = SourceStateWriter(staging, table.name)
        for part in parts:
            writer.write(part)
            seen.add(part)
            del part
        writer.close()
        note(f"extract {number}/{len(TABLES)} {table.name}: {seen.rows}")
    _release_driver_memory()
    return facts, events


def _keep_unchanged(
    name: str, manifest: dict, before: Path, folder: Path, seen: _Extracted, state: State | None
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
    return True


def _delta_events(
    state: State | None, before: Path, folder: Path, run_id: str, changes: pl.DataFrame
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
    files = list(linked)
    if changes.height:
        files.append(folder / delta_name(run_id))
        changes.write_parquet(files[-1], compression="zstd")
        with files[-1].open("rb") as handle:
            os.fsync(handle.fileno())
    events = Events(files=files, earlier=linked, changes=changes, previous=state, live=live)
    events.find_replaced()
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


def _reconcile(valid: dict[str, pl.DataFrame], published: dict[str, pl.DataFrame]) -> None:
    """Every valid row reaches at least one partition and no other row appears."""
    for table in TABLES:
        keys = published[table.name].get_column(table.key).n_unique()
        if keys != valid[table.name].height:
            raise EtlError(
                f"table {table.name}: {valid[table.name].height} valid rows but {keys} published"
            )


def run_etl(
    source: str | Path,
    warehouse: Path,
    *,
    full: bool = False,
    progress: Callable[[str], None] | None = None,
    fail_after: str | None = None,
) -> RunResult:
    """Run the nightly ETL into `warehouse`; raises EtlError when nothing was published."""
    started = time.monotonic()
    note = progress or (lambda message: None)
    checkpoint = _checkpoint(fail_after, note)
    warehouse = Path(warehouse)
    with run_lock(warehouse):
        clean_leftovers(warehouse)
        try:
            origin = open_source(source)
        except SourceError as exc:
            raise EtlError(str(exc)) from exc
        previous = None if full else _previous_state(warehouse)
        if previous is not None and previous[0].get("source") != origin.display:
            # Changes of another source cannot be merged into this state: rebuild.
            note("source differs from the previous run's: full rebuild")
            previous = None
        mode = "full" if previous is None else "incremental"
        run_id = new_run_id(datetime.now(UTC))
        note(f"run {run_id} ({mode}) from {origin.display}")
        staging = staging_dir(warehouse, run_id)
        try:
            snapshot, result = _stages(origin, warehouse, staging, previous, run_id, note,
                                       checkpoint)  # fmt: skip
        except BaseException:
            # Nothing of a failed run stays (a killed run's is removed by the next run).
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return RunResult(
        run_id=run_id,
        snapshot=snapshot,
        mode=mode,
        seconds=time.monotonic() - started,
        **result,
    )


def _stages(
    origin: Source,
    warehouse: Path,
    staging: Path,
    previous: tuple[dict, Path] | None,
    run_id: str,
    note: Callable[[str], None],
    checkpoint: Callable[[str], None],
) -> tuple[Path, dict]:
    """Extract, validate, transform and publish into `staging`; the snapshot and the
    run's counts for its RunResult.
    """
    mode = "full" if previous is None else "incremental"
    now = datetime.now().replace(microsecond=0)
    try:
        facts, events = _extract(origin, staging, previous, run_id, note)
    except SourceError as exc:
        raise EtlError(str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - driver errors vary; the reason must show
        raise EtlError(f"extract failed: {exc}") from exc
    if facts["sponsor"].rows == 0 or all(f.rows == 0 for f in facts.values()):
        raise EtlError("source is empty (no sponsors); nothing published")
    checkpoint("extract")

    note("validate")
    # The text comes back from the staged source state a table (or a slice) at a time.
    as_of = as_of_from((f.latest for f in facts.values()), now)
    validated = validate_files(staging / SOURCE_STATE, as_of, events)
    if validated.valid["sponsor"].height == 0:
        raise EtlError("source has no valid sponsor; nothing published")
    judged = validated.valid[EVENTS].height + validated.quarantine[EVENTS].height
    if events.dirty is None:
        facts[EVENTS].rows = judged
        note(f"validate: every entry judged ({judged})")
    else:
        note(f"validate: {judged} entries of {events.dirty.len()} changed batches judged again")
    # Every quarantined entry (those an incremental run did not judge again included), with
    # the reason counts of the entries made from them.
    validated.quarantine[EVENTS] = events.quarantine(validated.quarantine[EVENTS])
    validated.reason_counts = {
        label: count for label, count in validated.reason_counts.items()
        if not label.startswith(f"{EVENTS}: ")
    } | {
        f"{EVENTS}: {kind}": count
        for kind, count in validated.quarantine[EVENTS].get_column("kinds").explode()
        .drop_nulls().value_counts().iter_rows()
    }  # fmt: skip
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
    published, masked = derive_and_route(validated.valid, event_facts)
    _reconcile(validated.valid, published)
    State(
        digests={name: digest(validated.valid[name]) for name in GLOBAL},
        latest={name: fact.latest for name, fact in facts.items()},
        as_of=validated.as_of,
        quarantine=validated.quarantine[EVENTS],
        facts=event_facts,
    ).write(staging)
    checkpoint("transform")

    extracted = {t.name: facts[t.name].rows for t in TABLES}
    quarantined = {t.name: validated.quarantine[t.name].height for t in TABLES}
    valid_rows = {t.name: validated.valid[t.name].height for t in TABLES}
    # The entries an incremental run kept count too: every extracted entry is valid or
    # quarantined (publish checks the published count against it).
    valid_rows[EVENTS] = extracted[EVENTS] - quarantined[EVENTS]
    manifest = {
        "run_id": run_id,
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "mode": mode,
        "source": origin.display,
        "source_as_of": validated.as_of.isoformat(),
        "watermark": {
            name: fact.watermark for name, fact in facts.items() if fact.watermark is not None
        },
        "tables": {
            name: {
                "extracted": extracted[name],
                "valid": valid_rows[name],
                "quarantined": quarantined[name],
            }
            for name in extracted
        },  # fmt: skip
        "masked_free_text": [asdict(value) for value in masked],
        "quarantine_reasons": dict(
            sorted(validated.reason_counts.items(), key=lambda item: -item[1])
        ),
        "code_version": code_version(),
    }
    published_rows = {name: frame.height for name, frame in published.items()}
    if events.dirty is not None:  # each valid entry is in its batch's partition, kept or new
        published_rows[EVENTS] = valid_rows[EVENTS]
    plan = Plan(
        run_id=run_id,
        published=published,
        partitions=partitions(validated.valid),
        quarantine=validated.quarantine,
        manifest=manifest,
        live=current_snapshot(warehouse),
        carried=None if events.dirty is None else Carried(EVENTS, events.dirty, events.touched),
        settled=settled,
    )
    # Publish frees each published table once written; the valid rows it shares columns
    # with are not needed any more either.
    del published
    validated.valid.clear()
    note("publish")
    try:
        snapshot = publish(warehouse, plan, checkpoint)
    except (PublishError, OSError, pl.exceptions.ComputeError) as exc:
        # A full disk or a refused snapshot: drop the half-written one, keep `current`.
        clean_leftovers(warehouse)
        raise EtlError(f"publish failed, nothing published: {exc}") from exc
    return snapshot, {
        "extracted": extracted,
        "published": published_rows,
        "quarantined": quarantined,
        "reason_counts": validated.reason_counts,
        "masked": masked,
    }
