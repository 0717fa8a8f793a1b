"""Build an audit pack ZIP: PDF report, every section as CSV and Parquet, and manifest.json.

A pack reads only through one sponsor's confined scope. Its content hash covers the
parameters, the snapshot id and every data file's SHA-256, so the same snapshot and the same
parameters give the same hash whoever the pack is prepared for and whenever.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl

from warehouse.auditpack import report
from warehouse.auditpack.sections import Section, collect, products, stable
from warehouse.filters import Filters
from warehouse.layout import as_warehouse, code_version
from warehouse.queries.common import sponsor_name
from warehouse.scope import Scope, open_sponsor_scope

GENERATOR = "sponsor-portal auditpack"
# Convention: a pack handed to someone is valid for 30 days unless their access ends sooner.
DEFAULT_VALIDITY = timedelta(days=30)
REPORT = "report.pdf"
MANIFEST = "manifest.json"
HASH_METHOD = (
    "sha256 of the canonical JSON (sorted keys, no spaces) of {parameters, snapshot_id, "
    "files: [[path, sha256], ...] of every data file sorted by path}"
)


class PackError(ValueError):
    """A pack cannot be made from these inputs; the message names no path or other sponsor."""


@dataclass(frozen=True)
class PackRequest:
    """What a pack is for and whom; only sponsor, period and products decide its content."""

    sponsor_id: str
    start: date
    end: date
    recipient: str
    generated_by: str
    products: tuple[str, ...] = ()  # empty: every product of the sponsor
    valid_until: datetime | None = None  # None: DEFAULT_VALIDITY after generation


@dataclass(frozen=True)
class AuditPack:
    zip_bytes: bytes
    content_hash: str
    manifest: dict
    file_name: str

    @property
    def row_count(self) -> int:
        return sum(s["rows"] for s in self.manifest["sections"])


def generate_pack(
    warehouse_root: Path,
    request: PackRequest,
    generated_at: datetime | None = None,
    signed: Callable[[Scope], pl.DataFrame] | None = None,
) -> AuditPack:
    """Open the sponsor's confined scope on `warehouse_root`, build the pack, close the scope;
    `signed(scope)` gives the sponsor's signed decisions, if the pack is to carry them."""
    scope = open_sponsor_scope(as_warehouse(warehouse_root), request.sponsor_id)
    try:
        return build_pack(scope, request, generated_at, signed(scope) if signed else None)
    finally:
        scope.close()


def build_pack(
    scope: Scope,
    request: PackRequest,
    generated_at: datetime | None = None,
    signed: pl.DataFrame | None = None,
) -> AuditPack:
    """The pack for `request` read through `scope`, which must be that sponsor's scope, with
    `signed` (catalogue "decisions" rows of that sponsor) as a section when there are any."""
    if scope.sponsor_id is None or scope.sponsor_id != request.sponsor_id:
        raise PackError("An audit pack is built only from its own sponsor's scope.")
    if request.start > request.end:
        raise PackError("The period starts after it ends.")
    if not request.recipient.strip():
        raise PackError("A pack needs a recipient.")
    known = products(scope)
    chosen = tuple(sorted(set(request.products)))
    if not set(chosen) <= set(known["product_id"]):
        raise PackError("Unknown product for this sponsor.")
    generated_at = (generated_at or datetime.now(UTC)).replace(microsecond=0)
    valid_until = request.valid_until or generated_at + DEFAULT_VALIDITY
    # The portal store keeps UTC; a naive expiry is read as UTC.
    valid_until = valid_until.replace(tzinfo=valid_until.tzinfo or UTC).astimezone(UTC)
    as_of = scope.snapshot.created_at.date()

    sections = collect(scope, Filters(request.start, request.end, chosen), as_of)
    if signed is not None and signed.height:
        # The signatures' manifestation beside the changes they decided (21 CFR 11.50).
        after = next(i for i, s in enumerate(sections) if s.key == "change_controls") + 1
        mine = signed.filter(pl.col("sponsor_id") == request.sponsor_id)
        sections.insert(after, Section("decisions", "QUALITY", stable(mine),
                                       ("decision_id", "record", "meaning", "signature",
                                        "qms_recorded_at")))  # fmt: skip
    data = data_files(sections)
    parameters = {
        "sponsor_id": request.sponsor_id,
        "products": list(chosen),
        "from": request.start.isoformat(),
        "to": request.end.isoformat(),
        "as_of": as_of.isoformat(),
    }
    content_hash = pack_hash(parameters, scope.snapshot.run_id, data)
    names = dict(zip(known["product_id"], known["name"], strict=True))
    cover = report.Cover(
        sponsor_id=request.sponsor_id,
        sponsor_name=sponsor_name(scope),
        products=tuple(names[p] for p in (chosen or sorted(names, key=names.get))),
        start=request.start,
        end=request.end,
        as_of=as_of,
        recipient=request.recipient.strip(),
        generated_by=request.generated_by,
        generated_at=generated_at,
        valid_until=valid_until,
        snapshot_id=scope.snapshot.run_id,
        snapshot_at=scope.snapshot.created_at,
        content_hash=content_hash,
    )
    files = {REPORT: report.render(cover, sections), **data}
    manifest = {
        "generator": {"name": GENERATOR, "version": code_version()},
        "parameters": parameters,
        "snapshot": {"run_id": scope.snapshot.run_id,
                     "created_at": scope.snapshot.created_at.isoformat()},
        "content_sha256": content_hash,
        "content_hash_method": HASH_METHOD,
        "sections": [
            {"key": s.key, "system": s.system, "title": s.title, "rows": s.frame.height,
             "files": [f"{s.folder}/{s.key}.csv", f"{s.folder}/{s.key}.parquet"]}
            for s in sections
        ],
        "files": {path: {"sha256": _sha256(body), "bytes": len(body)}
                  for path, body in sorted(files.items())},
        "issue": {"recipient": cover.recipient, "generated_by": request.generated_by,
                  "generated_at": generated_at.isoformat(), "valid_until": valid_until.isoformat()},
    }  # fmt: skip
    files[MANIFEST] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    file_name = (
        f"auditpack-{request.sponsor_id}-{request.start.isoformat()}-{request.end.isoformat()}-"
        f"{content_hash[:12]}.zip"
    )
    return AuditPack(_zip(files, generated_at), content_hash, manifest, file_name)


def data_files(sections: list[Section]) -> dict[str, bytes]:
    """Each section as CSV and Parquet, by path inside the pack."""
    files: dict[str, bytes] = {}
    for section in sections:
        stem = f"{section.folder}/{section.key}"
        files[f"{stem}.csv"] = section.frame.write_csv().encode()
        files[f"{stem}.parquet"] = _parquet(section.frame)
    return files


def pack_hash(parameters: dict, snapshot_id: str, data: dict[str, bytes]) -> str:
    """The content hash (HASH_METHOD): stable across recipients and generation times."""
    canonical = {
        "parameters": parameters,
        "snapshot_id": snapshot_id,
        "files": [[path, _sha256(body)] for path, body in sorted(data.items())],
    }
    return _sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode())


def _parquet(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def _sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _zip(files: dict[str, bytes], stamp: datetime) -> bytes:
    """Report and manifest first, then the data files in path order."""
    order = [REPORT, MANIFEST, *sorted(p for p in files if p not in (REPORT, MANIFEST))]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in order:
            info = zipfile.ZipInfo(path, date_time=stamp.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[path])
    return buffer.getvalue()
