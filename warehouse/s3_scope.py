"""Reading a warehouse on S3 (layout in warehouse/s3.py): the live run, and scopes over it.

A sponsor's scope reads with that sponsor's own S3 identity (warehouse.s3.reader), which the
store itself limits to `tenants/<SPONSOR>/`: a bug above this module can ask for another
sponsor's object, and the store answers 403. The scope's files are checked against the
sponsor's manifest (a listing: names and sizes; then each file's sha256 and its sponsor
label), loaded into the scope's own DuckDB instance as tables, and that instance then has no
access to any file or network at all (warehouse.scope.Scope). Why tables loaded at open and
not a lazy Arrow dataset over S3: README, "The warehouse on S3", with figures.

The pointer (current.json) is read at most once per PORTAL_S3_POINTER_SECONDS (default 5)
per process: a new run reaches every replica within that time, and a run's scopes are new
instances (the run id is in every cache key).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TypeVar

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from warehouse import s3
from warehouse.contract import TABLES, is_safe_sponsor_id
from warehouse.layout import MANIFEST, PARTITION_KEY
from warehouse.scope import DataUnavailable, Scope, ScopeError, SnapshotInfo, UnknownSponsor

POINTER_ENV = "PORTAL_S3_POINTER_SECONDS"
DOWNLOADS = 8  # files fetched at once when a scope opens
INTEGRITY = "The published snapshot failed its integrity check for this sponsor."
SETTINGS = "The portal's storage settings cannot be read; the CMO's IT must check them."
POINTER = (
    "The published data cannot be read: the pointer to its live run is damaged. The CMO's IT "
    "must check it; the next nightly run replaces it."
)
log = logging.getLogger(__name__)

T = TypeVar("T")

# How Arrow's S3 client words a refusal: the SDK's error type, or an unnamed error with its
# HTTP status. Not a bare "403": a failure to connect names the endpoint, and a store on
# port 40399 is down, not refusing.
REFUSAL = re.compile(r"\bACCESS_DENIED\b|\bAccessDenied\b|\(HTTP status 403\)")


def _store(call: Callable[[], T], *, refused: str) -> T:
    """Run one request against the store; a refusal (403) says `refused`, anything but a
    missing object says the store is unavailable. FileNotFoundError passes through."""
    try:
        return call()
    except FileNotFoundError:
        raise
    except s3.MissingIdentity as missing:  # names only the sponsor asked for
        raise ScopeError(str(missing)) from None
    except s3.S3Error as unusable:  # the identities file: its path is for the log, not a page
        log.error("S3 settings unusable: %s", unusable)
        raise ScopeError(SETTINGS) from None
    except OSError as failure:
        if REFUSAL.search(str(failure)):
            raise ScopeError(refused) from None
        raise DataUnavailable() from None


# --- the live run ---------------------------------------------------------------------------

_pointers: dict[str, tuple[float, SnapshotInfo | None]] = {}
_pointers_lock = threading.Lock()


def snapshot_info(url: str) -> SnapshotInfo | None:
    """The run current.json names (None before the first run), read with the CMO's read
    identity at most once per PORTAL_S3_POINTER_SECONDS; DataUnavailable when the store does
    not answer."""
    ttl = float(os.environ.get(POINTER_ENV, 5))
    now = time.monotonic()
    with _pointers_lock:
        seen = _pointers.get(url)
    if seen is not None and now - seen[0] < ttl:
        return seen[1]
    location = s3.Location.parse(url)
    try:
        pointer = _store(
            lambda: s3.read_pointer(s3.reader(None), location),
            refused="The object store refused the portal's identity: the CMO's IT must check it.",
        )
    except s3.PointerError as damaged:  # not remembered: read again on the next call
        log.error("S3 pointer unusable: %s", damaged)
        raise ScopeError(POINTER) from None
    info = None
    if pointer is not None:
        run_id = pointer["run_id"]
        made = pointer.get("created_at")
        created = datetime.fromisoformat(made) if made else s3.created_at(run_id)
        info = SnapshotInfo(run_id=run_id, created_at=created, path=None, location=url)
    with _pointers_lock:
        _pointers[url] = (now, info)
    return info


def forget_pointers() -> None:
    """Read current.json again on the next call (tests; a replica told of a new run)."""
    with _pointers_lock:
        _pointers.clear()


@functools.lru_cache(maxsize=4)
def cmo_manifest(info: SnapshotInfo) -> dict:
    """The run's whole manifest (every sponsor's files), with the CMO's read identity."""
    location = s3.Location.parse(info.location)
    data = _store(
        lambda: s3.read_object(s3.reader(None), location.cmo(info.run_id, MANIFEST)),
        refused="The object store refused the CMO's read identity: the CMO's IT must check it.",
    )
    return json.loads(data)


# --- one sponsor's files --------------------------------------------------------------------


def _refused(sponsor_id: str) -> str:
    return (f"The object store refused sponsor {sponsor_id}'s own identity: the CMO's IT must "
            "check its policy.")  # fmt: skip


def partition_files(info: SnapshotInfo, sponsor_id: str) -> dict[str, dict]:
    """The sponsor's files of the run ("table/sponsor_id=S/part-0.parquet" -> manifest entry),
    read with the sponsor's own identity: its manifest, and one listing of its run's prefix
    that must hold exactly those files at those sizes. ScopeError("Unknown sponsor.") when the
    run has nothing of this sponsor's."""
    if not is_safe_sponsor_id(sponsor_id):
        raise UnknownSponsor()
    return _partition_files(info, sponsor_id)


@functools.lru_cache(maxsize=256)
def _partition_files(info: SnapshotInfo, sponsor_id: str) -> dict[str, dict]:
    location = s3.Location.parse(info.location)
    refused = _refused(sponsor_id)
    fs = _store(lambda: s3.reader(sponsor_id), refused=refused)
    run = location.tenant(sponsor_id, info.run_id)
    try:
        manifest = json.loads(_store(lambda: s3.read_object(fs, f"{run}/{MANIFEST}"),
                                     refused=refused))  # fmt: skip
    except FileNotFoundError:
        raise UnknownSponsor() from None
    listing = _store(
        lambda: fs.get_file_info(pafs.FileSelector(run, recursive=True)), refused=refused
    )
    present = {
        item.path.removeprefix(run + "/"): item.size
        for item in listing
        if item.type == pafs.FileType.File and item.path != f"{run}/{MANIFEST}"
    }
    listed = manifest.get("files", {})
    own = all(entry.get("sponsor_id") == sponsor_id for entry in listed.values())
    sizes = all(entry.get("bytes") == present.get(name) for name, entry in listed.items())
    tables = {entry.get("table") for entry in listed.values()}
    if (
        manifest.get("sponsor_id") != sponsor_id
        or manifest.get("run_id") != info.run_id
        or not own
        or not sizes
        or set(present) != set(listed)
        or not {t.name for t in TABLES} <= tables
    ):
        raise ScopeError(INTEGRITY)
    return listed


def open_file(info: SnapshotInfo, sponsor_id: str, name: str) -> pafs.NativeFile:
    """One of the sponsor's files (a name partition_files listed), with its own identity."""
    location = s3.Location.parse(info.location)
    fs = _store(lambda: s3.reader(sponsor_id), refused=_refused(sponsor_id))
    path = location.tenant(sponsor_id, info.run_id, name)
    return _store(lambda: fs.open_input_file(path), refused=_refused(sponsor_id))


# --- scopes ---------------------------------------------------------------------------------


def open_sponsor_scope(info: SnapshotInfo, sponsor_id: str) -> Scope:
    """A scope holding only `sponsor_id`'s tables of the run, fetched with its own identity."""
    files = partition_files(info, sponsor_id)
    location = s3.Location.parse(info.location)
    fs = _store(lambda: s3.reader(sponsor_id), refused=_refused(sponsor_id))
    wanted = [(location.tenant(sponsor_id, info.run_id, n), e) for n, e in sorted(files.items())]
    return Scope(info, sponsor_id, tables=_load(fs, wanted, _refused(sponsor_id)))


def open_cmo_scope(info: SnapshotInfo) -> Scope:
    """Every sponsor's tables of the run, with the CMO's read identity (CMO staff only)."""
    location = s3.Location.parse(info.location)
    fs = s3.reader(None)
    files = cmo_manifest(info)["files"]
    wanted = [(location.tenant(e["sponsor_id"], info.run_id, n), e)
              for n, e in sorted(files.items())]  # fmt: skip
    refused = "The object store refused the CMO's read identity: the CMO's IT must check it."
    return Scope(info, None, tables=_load(fs, wanted, refused))


def _load(
    fs: pafs.FileSystem, wanted: list[tuple[str, dict]], refused: str
) -> Iterator[tuple[str, pa.Table]]:
    """Each table's rows from its files, one table at a time (so only one table's download
    is held beside the scope's copy), every file checked against its manifest entry (size,
    sha256, and the sponsor it is labelled for), with the Hive partition column added as a
    local scope's reader adds it."""
    by_table: dict[str, list[tuple[str, dict]]] = {t.name: [] for t in TABLES}
    for path, entry in wanted:
        by_table.setdefault(entry["table"], []).append((path, entry))
    if any(not files for files in by_table.values()):
        raise ScopeError(INTEGRITY)

    def fetch(item: tuple[str, dict]) -> pa.Table:
        path, entry = item
        try:
            data = _store(lambda: s3.read_object(fs, path), refused=refused)
        except FileNotFoundError:
            raise ScopeError(INTEGRITY) from None
        if len(data) != entry["bytes"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise ScopeError(INTEGRITY)
        parquet = pq.ParquetFile(pa.BufferReader(data))
        labels = parquet.metadata.metadata or {}
        if labels.get(b"sponsor_id", b"").decode() != entry["sponsor_id"]:
            raise ScopeError(INTEGRITY)
        table = parquet.read()
        column = pa.array([entry["sponsor_id"]] * table.num_rows, pa.string())
        return table.append_column(PARTITION_KEY, column)

    with ThreadPoolExecutor(DOWNLOADS) as pool:
        for name, files in by_table.items():
            parts = list(pool.map(fetch, files))
            yield name, pa.concat_tables(parts, promote_options="permissive")
