"""Publish a snapshot built on the local disk to S3 (layout in warehouse/s3.py): every file
under its sponsor's prefix, each sponsor's manifest, the CMO's, and only then current.json.
Older runs are deleted once no reader can still be on them."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.fs as pafs

from warehouse.layout import MANIFEST, QUARANTINE
from warehouse.s3 import (
    CMO,
    MOMENT,
    RUN_ID,
    TENANTS,
    Location,
    PointerError,
    created_at,
    is_run_id,
    live_run,
    next_pointer,
    read_object,
    read_pointer,
    write_object,
)

log = logging.getLogger(__name__)

KEEP_RUNS = 3  # the live run and the two before it stay, as on a local disk
GRACE_ENV = "PORTAL_S3_GRACE_SECONDS"
GRACE = timedelta(hours=1)  # a superseded run stays readable this long for readers on it
# What a sponsor's own manifest carries of the run's: nothing that names the source, another
# sponsor or what was quarantined.
SPONSOR_FACTS = ("run_id", "created_at", "mode", "source_as_of", "writer", "code_version")


def sponsor_manifest(manifest: dict, sponsor_id: str) -> dict:
    """The sponsor's slice of the run's manifest: its own files and row counts only."""
    files = {path: entry for path, entry in manifest["files"].items()
             if entry["sponsor_id"] == sponsor_id}  # fmt: skip
    tables = {
        name: {"published_rows": facts.get("published_rows", {}).get(sponsor_id, 0)}
        for name, facts in manifest["tables"].items()
    }
    own = {fact: manifest[fact] for fact in SPONSOR_FACTS if fact in manifest}
    return own | {"sponsor_id": sponsor_id, "files": files, "tables": tables}


def publish(
    snapshot: Path,
    location: Location,
    fs: pafs.FileSystem,
    checkpoint: Callable[[str], None],
    now: datetime | None = None,
    note: Callable[[str], None] = lambda message: None,
) -> dict[str, int]:
    """Upload the local snapshot as a run of `location` and make it the live one; returns how
    many files were uploaded and how many copied server-side from the live run. What the
    operator must know of the store's state (a damaged current.json or live manifest) is
    `note`d."""
    manifest = json.loads((snapshot / MANIFEST).read_bytes())
    run_id = manifest["run_id"]
    try:
        pointer = read_pointer(fs, location)
        damaged = None
    except PointerError as exc:
        pointer, damaged = None, exc
        note(f"{exc}: this run replaces it; every run in the store stays as if it was live "
             "until now, and every file is uploaded (none copied from the live run)")  # fmt: skip
    live = _live_files(fs, location, pointer, note)
    files = sorted(manifest["files"].items())
    uploaded = copied = 0
    for number, (relative, entry) in enumerate(files, start=1):
        target = location.tenant(entry["sponsor_id"], run_id, relative)
        same = live.get(relative)
        if (same is not None and same["sha256"] == entry["sha256"]
                and same["sponsor_id"] == entry["sponsor_id"]):  # fmt: skip
            fs.copy_file(same["path"], target)  # the same bytes: a copy inside the store
            copied += 1
        else:
            data = (snapshot / relative).read_bytes()
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise OSError(f"{relative} changed on disk since it was published locally")
            write_object(fs, target, data)
            uploaded += 1
        if number == len(files) // 2:
            checkpoint("upload-midway")
    for path in sorted((snapshot / QUARANTINE).glob("*.parquet")):
        write_object(fs, location.cmo(run_id, QUARANTINE, path.name), path.read_bytes())
    _verify(fs, location, run_id, manifest)
    for sponsor_id in sorted({entry["sponsor_id"] for _, entry in files}):
        own = sponsor_manifest(manifest, sponsor_id)
        write_object(fs, location.tenant(sponsor_id, run_id, MANIFEST), _json(own))
    write_object(fs, location.cmo(run_id, MANIFEST), _json(manifest))
    checkpoint("upload")
    current = next_pointer(pointer, run_id, now, manifest.get("created_at"))
    if damaged is not None:
        # Which run was live, and until when, is lost: a reader may be on any of them.
        current["history"] = _as_if_live_until(fs, location, run_id, current["live_from"])
    try:
        write_object(fs, location.pointer(), _json(current))
    except OSError:
        if _named(fs, location) != run_id:  # a PUT that timed out may still have landed
            raise
    try:
        prune(fs, location, now)
    except OSError as failure:  # the run is live: old runs wait for the next run's pruning
        log.warning("published run %s; pruning older runs failed: %s", run_id, failure)
    return {"uploaded": uploaded, "copied": copied}


def _named(fs: pafs.FileSystem, location: Location) -> str | None:
    """The run current.json names; None when it names none (or is still damaged)."""
    try:
        return live_run(fs, location)
    except PointerError:
        return None


def _as_if_live_until(fs: pafs.FileSystem, location: Location, run_id: str, moment: str) -> list:
    """The pointer's history when the earlier one was lost: every complete run in the store
    (one with its manifest) but `run_id`, live from when it was made until `moment`."""
    return [
        {"run_id": stored, "live_from": created_at(stored).strftime(MOMENT), "live_until": moment}
        for stored, run in stored_runs(fs, location).items()
        if run.complete and stored != run_id and is_run_id(stored)
    ]  # all of them: one left out would count from its objects' time, and could go now


def _json(value: dict) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True).encode()


def _live_files(
    fs: pafs.FileSystem, location: Location, pointer: dict | None, note: Callable[[str], None]
) -> dict:
    """The live run's files by relative path, with their object paths (for server-side
    copies); none when its manifest is missing or cannot be read (every file is uploaded)."""
    if pointer is None:
        return {}
    run_id = pointer["run_id"]
    try:
        manifest = json.loads(read_object(fs, location.cmo(run_id, MANIFEST)))
    except FileNotFoundError:
        return {}
    except (ValueError, RecursionError) as exc:
        note(f"the live run's manifest cannot be read ({type(exc).__name__}): every file is "
             "uploaded")  # fmt: skip
        return {}
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not all(_is_entry(entry) for entry in files.values()):
        note("the live run's manifest does not list its files: every file is uploaded")
        return {}
    return {
        path: entry | {"path": location.tenant(entry["sponsor_id"], run_id, path)}
        for path, entry in files.items()
    }


def _is_entry(entry: object) -> bool:
    return isinstance(entry, dict) and all(
        isinstance(entry.get(name), str) for name in ("sha256", "sponsor_id")
    )


def _verify(fs: pafs.FileSystem, location: Location, run_id: str, manifest: dict) -> None:
    """Every file of the run is in the store at its published size, before anything names it
    (one listing per sponsor, not a request per file)."""
    sizes = {}
    for sponsor_id in {entry["sponsor_id"] for entry in manifest["files"].values()}:
        listed = pafs.FileSelector(location.tenant(sponsor_id, run_id), recursive=True)
        sizes |= {info.path: info.size for info in fs.get_file_info(listed)
                  if info.type == pafs.FileType.File}  # fmt: skip
    for relative, entry in manifest["files"].items():
        stored = sizes.get(location.tenant(entry["sponsor_id"], run_id, relative))
        if stored != entry["bytes"]:
            raise OSError(f"{relative}: not in the store as published ({stored} bytes)")


def prune(fs: pafs.FileSystem, location: Location, now: datetime | None = None) -> list[str]:
    """Delete runs no reader can be on: neither the live run nor one of the KEEP_RUNS newest
    that were live, and not live (or begun, for a run never made live) within the grace
    period."""
    try:
        pointer = read_pointer(fs, location)
    except PointerError as damaged:  # which runs readers may be on is not known: none goes
        log.warning("nothing pruned: %s", damaged)
        return []
    if pointer is None:
        return []
    moment = now or datetime.now(UTC)
    grace = timedelta(seconds=float(os.environ.get(GRACE_ENV, GRACE.total_seconds())))
    history = pointer.get("history", [])
    live_until = {entry["run_id"]: _when(entry["live_until"]) for entry in history}
    held = stored_runs(fs, location)
    published = [run_id for run_id in held if run_id in live_until or run_id == pointer["run_id"]]
    kept = set(published[-KEEP_RUNS:]) | {pointer["run_id"]}
    gone = []
    for run_id, stored in held.items():
        # A run never made live counts from its newest object: it may still be uploading.
        last_read = live_until.get(run_id) or stored.newest
        if run_id in kept or moment - last_read < grace:
            continue
        for folder in sorted(stored.folders, key=lambda path: CMO in path.split("/")):
            _delete(fs, folder)  # cmo/ last: an interrupted prune finds the run again
        gone.append(run_id)
    return gone


@dataclass
class StoredRun:
    folders: set[str] = field(default_factory=set)
    newest: datetime = datetime.min.replace(tzinfo=UTC)
    complete: bool = False  # its CMO manifest is stored (written after every file)


def stored_runs(fs: pafs.FileSystem, location: Location) -> dict[str, StoredRun]:
    """Every run with objects in the store, oldest first: the folders that hold them (a run
    killed mid-upload has files under some tenants and no manifest) and its newest object's
    time. Found by objects, not folders: some stores keep a folder after its last object."""
    runs: dict[str, StoredRun] = {}
    try:
        found = fs.get_file_info(pafs.FileSelector(location.path(), recursive=True))
    except FileNotFoundError:
        return runs
    root = len(location.path().split("/"))
    for info in found:
        parts = info.path.split("/")[root:]
        if info.type != pafs.FileType.File or len(parts) < 3:
            continue
        if parts[0] == TENANTS and len(parts) > 3 and RUN_ID.fullmatch(parts[2]):
            run_id, folder = parts[2], location.tenant(parts[1], parts[2])
        elif parts[0] == CMO and RUN_ID.fullmatch(parts[1]):
            run_id, folder = parts[1], location.cmo(parts[1])
        else:
            continue  # not a run's object (someone else's file under the prefix): left alone
        run = runs.setdefault(run_id, StoredRun())
        run.folders.add(folder)
        run.complete |= parts[0] == CMO and parts[2:] == [MANIFEST]
        if info.mtime is not None:
            run.newest = max(run.newest, info.mtime.astimezone(UTC))
    return dict(sorted(runs.items()))


def _delete(fs: pafs.FileSystem, path: str) -> None:
    with suppress(FileNotFoundError):
        fs.delete_dir(path)


def _when(text: str) -> datetime:
    return datetime.strptime(text, MOMENT).replace(tzinfo=UTC)
