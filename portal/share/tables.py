"""What one sponsor's share holds: every table of the snapshot contract, read from that
sponsor's partition of the current snapshot only, as the manifest lists it."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.contract import TABLES
from warehouse.scope import SnapshotInfo, UnknownSponsor, partition_files, snapshot_info

SCHEMA = "quality"  # the one schema of a sponsor's share
TABLE_NAMES = tuple(t.name for t in TABLES)


@dataclass(frozen=True)
class SharedFile:
    """One Parquet file of a sponsor's table: its path in the snapshot and manifest facts."""

    name: str  # "table/sponsor_id=S/part-0.parquet", relative to the snapshot
    table: str
    rows: int
    size: int
    sha256: str


@dataclass(frozen=True)
class SponsorShare:
    """A sponsor's tables of one snapshot."""

    snapshot: SnapshotInfo
    sponsor_id: str
    files: dict[str, list[SharedFile]]  # table -> its files

    @property
    def version(self) -> int:
        """The Delta table version of every table: the snapshot's run time as a number
        (run id "20261202T052555Z-6bc861" -> 20261202052555), rising with each run."""
        stamp = self.snapshot.run_id.split("Z")[0].replace("T", "")
        return int(stamp)

    @property
    def on_s3(self) -> bool:
        return self.snapshot.location is not None

    def path(self, file: SharedFile) -> Path:
        """The file on the local disk (a local warehouse only)."""
        if self.snapshot.path is None:
            raise ValueError("a snapshot on S3 has no local path")
        return self.snapshot.path / file.name

    def open(self, file: SharedFile) -> BinaryIO:
        """The file, opened for reading; on S3 with the sponsor's own identity."""
        if self.snapshot.location is None:
            return self.path(file).open("rb")
        from warehouse import s3_scope

        return s3_scope.open_file(self.snapshot, self.sponsor_id, file.name)  # type: ignore[return-value]


def sponsor_share(warehouse_root: Path | str, sponsor_id: str) -> SponsorShare | None:
    """The sponsor's share of the current snapshot; None when nothing is published or the
    sponsor has no partition (ScopeError when its partition fails the integrity check).

    Checked and listed once per snapshot and sponsor (a snapshot never changes once
    published): listing stats every file of the partition, ~2 ms a request before."""
    info = snapshot_info(warehouse_root)
    if info is None:
        return None
    return _share(info, sponsor_id)


@functools.lru_cache(maxsize=256)
def _share(info: SnapshotInfo, sponsor_id: str) -> SponsorShare | None:
    if info.path is not None and not all(
        (info.path / t / f"sponsor_id={sponsor_id}").is_dir() for t in TABLE_NAMES
    ):
        return None
    try:
        listed = partition_files(info, sponsor_id)
    except UnknownSponsor:
        return None
    files: dict[str, list[SharedFile]] = {name: [] for name in TABLE_NAMES}
    for name, entry in sorted(listed.items()):
        files[entry["table"]].append(
            SharedFile(name, entry["table"], entry["rows"], entry["bytes"], entry["sha256"])
        )
    return SponsorShare(info, sponsor_id, files)


def file_id(file: SharedFile) -> str:
    """A stable id of a file within its table (the same file keeps it across requests)."""
    return hashlib.sha256(f"{file.name}:{file.sha256}".encode()).hexdigest()[:32]


def table_id(sponsor_id: str, table: str) -> str:
    return hashlib.sha256(f"{sponsor_id}.{SCHEMA}.{table}".encode()).hexdigest()[:32]


# Arrow types of the published Parquet -> Delta primitive types (PROTOCOL.md, Schema Object).
def _delta_type(arrow: pa.DataType) -> str:
    if pa.types.is_string(arrow) or pa.types.is_large_string(arrow):
        return "string"
    if pa.types.is_boolean(arrow):
        return "boolean"
    if pa.types.is_int64(arrow):
        return "long"
    if pa.types.is_int32(arrow):
        return "integer"
    if pa.types.is_int16(arrow):
        return "short"
    if pa.types.is_int8(arrow):
        return "byte"
    if pa.types.is_float64(arrow):
        return "double"
    if pa.types.is_float32(arrow):
        return "float"
    if pa.types.is_date(arrow):
        return "date"
    if pa.types.is_timestamp(arrow):
        return "timestamp"
    if pa.types.is_binary(arrow) or pa.types.is_large_binary(arrow):
        return "binary"
    raise ValueError(f"no Delta type for {arrow}")


def schema_string(share: SponsorShare, table: str) -> str:
    """The table's schema as Delta's JSON struct, from its first Parquet file."""
    first = share.files[table][0]
    with share.open(first) as source:
        schema = pq.read_schema(source)
    fields = [
        {"name": f.name, "type": _delta_type(f.type), "nullable": True, "metadata": {}}
        for f in schema
    ]
    return json.dumps({"type": "struct", "fields": fields}, separators=(",", ":"))
