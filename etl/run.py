"""One ETL run end to end: lock, extract, validate, transform, publish, reconcile."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from etl.contracts import TABLES
from etl.extract import SourceError, extract, merge_changes, open_source
from etl.publish import Plan, PublishError, clean_leftovers, publish
from etl.transform import partitions, transform
from etl.validate import validate
from warehouse.layout import LOCK, MANIFEST, SOURCE_STATE, current_snapshot

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


def code_version() -> str:
    try:
        result = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10, check=True,
        )  # fmt: skip
        return result.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


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


def _previous_state(warehouse: Path) -> tuple[dict, dict[str, pl.DataFrame]] | None:
    """The live snapshot's manifest and extracted source state, if complete."""
    live = current_snapshot(warehouse)
    if live is None:
        return None
    manifest = json.loads((live / MANIFEST).read_text())
    state = {}
    for table in TABLES:
        path = live / SOURCE_STATE / f"{table.name}.parquet"
        if not path.is_file():
            return None
        state[table.name] = pl.read_parquet(path)
    return manifest, state


def _watermarks(state: dict[str, pl.DataFrame]) -> dict[str, str]:
    """Latest updated_at per table of the extracted state (text, as in the source)."""
    marks = {}
    for name, frame in state.items():
        latest = frame.get_column("updated_at").drop_nulls().max() if frame.height else None
        if latest is not None:
            marks[name] = latest
    return marks


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
        try:
            if previous is None:
                state = extract(origin, progress=note)
            else:
                changes = extract(origin, _watermarks(previous[1]), progress=note)
                state = {
                    t.name: merge_changes(previous[1][t.name], changes[t.name], t.key)
                    for t in TABLES
                }
        except SourceError as exc:
            raise EtlError(str(exc)) from exc
        except Exception as exc:  # noqa: BLE001 - driver errors vary; the reason must show
            raise EtlError(f"extract failed: {exc}") from exc
        if state["sponsor"].height == 0 or all(f.height == 0 for f in state.values()):
            raise EtlError("source is empty (no sponsors); nothing published")
        checkpoint("extract")

        note("validate")
        validated = validate(state)
        if validated.valid["sponsor"].height == 0:
            raise EtlError("source has no valid sponsor; nothing published")
        checkpoint("validate")

        note("transform")
        published = transform(validated.valid)
        _reconcile(validated.valid, published)
        checkpoint("transform")

        extracted = {t.name: state[t.name].height for t in TABLES}
        quarantined = {t.name: validated.quarantine[t.name].height for t in TABLES}
        valid_rows = {t.name: validated.valid[t.name].height for t in TABLES}
        manifest = {
            "run_id": run_id,
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "mode": mode,
            "source": origin.display,
            "source_as_of": validated.as_of.isoformat(),
            "watermark": _watermarks(state),
            "tables": {
                name: {
                    "extracted": extracted[name],
                    "valid": valid_rows[name],
                    "quarantined": quarantined[name],
                }
                for name in extracted
            },  # fmt: skip
            "quarantine_reasons": dict(
                sorted(validated.reason_counts.items(), key=lambda item: -item[1])
            ),
            "code_version": code_version(),
        }
        note("publish")
        plan = Plan(
            run_id=run_id,
            published=published,
            partitions=partitions(validated.valid),
            quarantine=validated.quarantine,
            source_state=state,
            manifest=manifest,
        )
        try:
            snapshot = publish(warehouse, plan, checkpoint)
        except (PublishError, OSError, pl.exceptions.ComputeError) as exc:
            # A full disk or a refused snapshot: drop the half-written one, keep `current`.
            clean_leftovers(warehouse)
            raise EtlError(f"publish failed, nothing published: {exc}") from exc
    return RunResult(
        run_id=run_id,
        snapshot=snapshot,
        mode=mode,
        extracted=extracted,
        published={name: frame.height for name, frame in published.items()},
        quarantined=quarantined,
        reason_counts=validated.reason_counts,
        seconds=time.monotonic() - started,
    )
