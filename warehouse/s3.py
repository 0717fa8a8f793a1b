"""The warehouse on S3 object storage: where a snapshot's objects go, and how a reader finds
the live one.

s3://<bucket>/<prefix>/
    current.json                                          the live run; replaced last, whole
    tenants/<SPONSOR>/<run_id>/manifest.json              that sponsor's files, hashes, counts
    tenants/<SPONSOR>/<run_id>/<table>/sponsor_id=<SPONSOR>/part-N.parquet
    cmo/<run_id>/manifest.json                            the whole run's manifest (CMO only)
    cmo/<run_id>/_quarantine/<table>.parquet              rejected rows (CMO only)

The sponsor comes before the run id, so everything of one sponsor lies under one prefix and
an S3 identity of that sponsor's can be limited to `tenants/<SPONSOR>/` (and current.json,
which names the live run and when earlier runs stopped being live, nothing about a sponsor).
The file paths under a run keep the Hive form (`sponsor_id=`), so a cross-sponsor reader
(the CMO) reads every tenant's files as one partitioned dataset. S3 has no rename: a run's
objects are written under keys no reader knows, then current.json names the run in one PUT,
which S3 applies whole; objects of a run are never rewritten, so a reader who resolved
current.json reads a complete snapshot.
"""

from __future__ import annotations

import functools
import json
import os
import re
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow.fs as pafs

SCHEME = "s3://"
POINTER = "current.json"
TENANTS = "tenants"
CMO = "cmo"
IDENTITIES_ENV = "PORTAL_S3_IDENTITIES"
SECRETS = Path(".streamlit") / "secrets.toml"
RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]+")  # as etl.run.new_run_id makes them
MOMENT = "%Y-%m-%dT%H:%M:%SZ"  # the pointer's times


class S3Error(Exception):
    """The object store refused or could not be reached; the message says which, in words."""


@dataclass(frozen=True)
class Location:
    """A warehouse on S3: its bucket and the key prefix everything lies under."""

    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, url: str) -> Location:
        if not is_s3(url):
            raise ValueError(f"not an s3:// location: {url!r}")
        bucket, _, prefix = url[len(SCHEME) :].partition("/")
        if not bucket:
            raise ValueError(f"no bucket in {url!r}")
        return cls(bucket, prefix.strip("/"))

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.prefix}".rstrip("/")

    def path(self, *parts: str) -> str:
        """The object's path as pyarrow's S3FileSystem names it (bucket/key)."""
        return str(PurePosixPath(self.bucket, *([self.prefix] if self.prefix else []), *parts))

    def pointer(self) -> str:
        return self.path(POINTER)

    def tenant(self, sponsor_id: str, run_id: str, *rest: str) -> str:
        return self.path(TENANTS, sponsor_id, run_id, *rest)

    def cmo(self, run_id: str, *rest: str) -> str:
        return self.path(CMO, run_id, *rest)


def is_s3(target: object) -> bool:
    return isinstance(target, str) and target.startswith(SCHEME)


def filesystem(access_key: str | None = None, secret_key: str | None = None) -> pafs.S3FileSystem:
    """An S3 client: the given identity, else the standard AWS variables (AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY); AWS_ENDPOINT_URL for a store other than AWS (http:// allowed),
    AWS_REGION (default us-east-1). The endpoint and region may also be set in the identities
    file (see `settings`)."""
    configured = settings()
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or configured.get("endpoint_url")
    region = (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
              or configured.get("region") or "us-east-1")  # fmt: skip
    return _filesystem(access_key, secret_key, endpoint, region)


@functools.lru_cache(maxsize=1024)
def _filesystem(
    access_key: str | None, secret_key: str | None, endpoint: str | None, region: str
) -> pafs.S3FileSystem:
    options: dict[str, Any] = {
        "region": region,
        "connect_timeout": 5,
        "request_timeout": 30,
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=3),
    }
    if endpoint:
        scheme, _, host = endpoint.partition("://")
        options |= {"endpoint_override": host.rstrip("/"), "scheme": scheme}
    if access_key is not None:
        options |= {"access_key": access_key, "secret_key": secret_key}
    return pafs.S3FileSystem(**options)


class MissingIdentity(S3Error):
    """No S3 identity of its own is configured for a sponsor."""


def settings() -> dict:
    """The `[s3]` table of the identities file: PORTAL_S3_IDENTITIES (a TOML file), else
    .streamlit/secrets.toml when it exists. Readers' identities (one per sponsor, so a bug above
    the storage cannot fetch another sponsor's object):

        [s3]
        endpoint_url = "https://s3.example.com"      # optional, as AWS_ENDPOINT_URL
        region = "eu-central-1"                      # optional, as AWS_REGION
        access_key_id = "..."                        # the CMO's read identity (CMO pages,
        secret_access_key = "..."                    #   the sponsor list); else AWS_* variables
        [s3.sponsors.NWT]                            # one per sponsor: its own prefix only
        access_key_id = "..."
        secret_access_key = "..."
    """
    named = os.environ.get(IDENTITIES_ENV)
    path = Path(named) if named else SECRETS
    try:
        stat = path.stat()
    except FileNotFoundError:
        if named:
            raise S3Error(f"{IDENTITIES_ENV} names {path}, which does not exist.") from None
        return {}
    return _read_settings(path.resolve(), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _read_settings(path: Path, mtime_ns: int, size: int) -> dict:
    try:
        return tomllib.loads(path.read_text()).get("s3", {})
    except tomllib.TOMLDecodeError as bad:
        raise S3Error(f"{path} is not valid TOML ({bad}).") from None


def reader(sponsor_id: str | None) -> pafs.S3FileSystem:
    """The identity a reader uses: the sponsor's own for a sponsor (never another's, never the
    CMO's: MissingIdentity when none is configured), the CMO's read identity for None."""
    configured = settings()
    if sponsor_id is None:
        if os.environ.get("AWS_ACCESS_KEY_ID") or "access_key_id" not in configured:
            return filesystem()
        return filesystem(configured["access_key_id"], configured.get("secret_access_key"))
    own = configured.get("sponsors", {}).get(sponsor_id)
    if not isinstance(own, dict) or not own.get("access_key_id"):
        raise MissingIdentity(
            f"No storage identity of its own is configured for sponsor {sponsor_id}, so its "
            "data is not read (the CMO's IT adds one to the identities file)."
        )
    return filesystem(own["access_key_id"], own.get("secret_access_key"))


# --- the pointer ----------------------------------------------------------------------------


class PointerError(ValueError):
    """current.json is in the store but does not read as a pointer (a hand edit, a tool
    that wrote something else): no run can be named from it."""


def read_pointer(fs: pafs.FileSystem, location: Location) -> dict | None:
    """current.json as published, or None before the first run; PointerError when it is
    there but is not a pointer (what readers and the nightly job read of it is checked)."""
    try:
        with fs.open_input_stream(location.pointer()) as stream:
            data = stream.read()
    except FileNotFoundError:
        return None
    try:
        pointer = json.loads(data)
    except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, nested beyond reason
        raise PointerError(f"{POINTER} is not JSON ({type(exc).__name__})") from None
    if not _is_pointer(pointer):
        raise PointerError(f"{POINTER} does not name a run and when earlier runs were live")
    return pointer


def _is_pointer(value: object) -> bool:
    if not isinstance(value, dict) or not is_run_id(value.get("run_id")):
        return False
    if not _is_moment(value.get("live_from")):
        return False
    made = value.get("created_at")
    if made is not None and not _is_iso(made):
        return False
    history = value.get("history", [])
    return isinstance(history, list) and all(
        isinstance(entry, dict)
        and is_run_id(entry.get("run_id"))
        and _is_moment(entry.get("live_from"))
        and _is_moment(entry.get("live_until"))
        for entry in history
    )


def is_run_id(value: object) -> bool:
    """A run id as etl.run.new_run_id makes them: its time a real one, of a 4-digit year."""
    if not isinstance(value, str) or RUN_ID.fullmatch(value) is None:
        return False
    try:
        return created_at(value).year >= 1000
    except ValueError:  # 20261399T000000Z: the shape of a time, not a time
        return False


def _is_moment(value: object) -> bool:
    try:
        datetime.strptime(value, MOMENT)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def _is_iso(value: object) -> bool:
    try:
        datetime.fromisoformat(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def live_run(fs: pafs.FileSystem, location: Location) -> str | None:
    pointer = read_pointer(fs, location)
    return None if pointer is None else pointer["run_id"]


def next_pointer(
    previous: dict | None, run_id: str, now: datetime | None = None, made: str | None = None
) -> dict:
    """current.json naming `run_id` and when it was made (`made`, the manifest's created_at;
    else the run id's time), with when each earlier run stopped being live (what the pruning
    waits on)."""
    moment = (now or datetime.now(UTC)).strftime(MOMENT)
    history = [] if previous is None else list(previous.get("history", []))
    if previous is not None:
        history.append({"run_id": previous["run_id"], "live_from": previous["live_from"],
                        "live_until": moment})  # fmt: skip
    made = made or created_at(run_id).strftime(MOMENT)
    return {"run_id": run_id, "created_at": made, "live_from": moment, "history": history[-20:]}


def created_at(run_id: str) -> datetime:
    """When a run was made, from its id ("20261202T052555Z-6bc861")."""
    return datetime.strptime(run_id.split("-")[0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def write_object(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    """One object, whole: a reader sees the old object or this one, never a part."""
    with fs.open_output_stream(path, metadata={"Content-Type": "application/octet-stream"}) as out:
        out.write(data)


def read_object(fs: pafs.FileSystem, path: str) -> bytes:
    with fs.open_input_stream(path) as stream:
        return stream.read()
