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

from etl.extract import Source, SourceError, merge_changes, open_source, read_table
from etl.publish import (
    Plan,
    PublishError,
    SourceStateWriter,
    clean_leftovers,
    publish,
    staging_dir,
)
from etl.redact import MaskedText
from etl.transform import partitions, transform
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
    origin: Source, staging: Path, previous: Path | None, note: Callable[[str], None]
) -> dict[str, _Extracted]:
    """Extract every table into the staging source state, one table (or part) in memory at
    a time; incremental when a previous state folder is given.
    """
    facts: dict[str, _Extracted] = {}
    for number, table in enumerate(TABLES, start=1):
        writer = SourceStateWriter(staging, table.name)
        seen = facts[table.name] = _Extracted()
        if previous is None:
            parts = read_table(origin, table)
        else:
            before = previous / f"{table.name}.parquet"
            marks = pl.read_parquet(before, columns=["updated_at"]).get_column("updated_at")
            mark = marks.drop_nulls().max()
            changes = pl.concat(list(read_table(origin, table, mark)), rechunk=False)
            parts = merge_changes(before, changes, table.key)
            del marks, changes
        for part in parts:
            writer.write(part)
            seen.add(part)
            del part
        writer.close()
        note(f"extract {number}/{len(TABLES)} {table.name}: {seen.rows}")
    _release_driver_memory()
    return facts


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
        facts = _extract(origin, staging, None if previous is None else previous[1], note)
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
    validated = validate_files(staging / SOURCE_STATE, as_of)
    if validated.valid["sponsor"].height == 0:
        raise EtlError("source has no valid sponsor; nothing published")
    checkpoint("validate")

    note("transform")
    published, masked = transform(validated.valid)
    _reconcile(validated.valid, published)
    checkpoint("transform")

    extracted = {t.name: facts[t.name].rows for t in TABLES}
    quarantined = {t.name: validated.quarantine[t.name].height for t in TABLES}
    valid_rows = {t.name: validated.valid[t.name].height for t in TABLES}
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
    plan = Plan(
        run_id=run_id,
        published=published,
        partitions=partitions(validated.valid),
        quarantine=validated.quarantine,
        manifest=manifest,
        live=current_snapshot(warehouse),
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
