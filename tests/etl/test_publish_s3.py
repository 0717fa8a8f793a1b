"""The nightly job publishing to S3 (a real SeaweedFS on loopback): a complete run first, then
current.json; a killed upload leaves the live run whole; old runs go only when no reader can
be on them; each sponsor's identity reads its own objects and is refused everyone else's."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, timedelta
from pathlib import Path

import polars as pl
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest

from etl import publish_s3
from etl.run import UPLOAD_STAGES, EtlError, run_etl
from tests.s3_support import BUCKET, PREFIX, ObjectStore, running_object_store
from warehouse import layout, s3
from warehouse.s3 import Location

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sponsors(demo_warehouse) -> list[str]:
    manifest = json.loads((layout.current_snapshot(demo_warehouse) / "manifest.json").read_text())
    return sorted({entry["sponsor_id"] for entry in manifest["files"].values()})


@pytest.fixture(scope="module")
def object_store(tmp_path_factory, sponsors):
    with running_object_store(tmp_path_factory.mktemp("s3"), sponsors) as store:
        yield store


@pytest.fixture
def store(object_store: ObjectStore, tmp_path, monkeypatch) -> ObjectStore:
    """The module's store, emptied, with the nightly job's identity in the environment."""
    object_store.fs().delete_dir_contents(f"{BUCKET}/{PREFIX}", missing_dir_ok=True)
    for name, value in object_store.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv(publish_s3.GRACE_ENV, raising=False)
    return object_store


def location(store: ObjectStore) -> Location:
    return Location.parse(store.url)


def stored_sha256(fs: pafs.FileSystem, path: str) -> str:
    return hashlib.sha256(s3.read_object(fs, path)).hexdigest()


def assert_complete(store: ObjectStore, run_id: str, manifest: dict) -> None:
    """Every file of the run is in the store with the bytes its manifest names."""
    fs, where = store.fs("cmo"), location(store)
    for relative, entry in manifest["files"].items():
        path = where.tenant(entry["sponsor_id"], run_id, relative)
        assert stored_sha256(fs, path) == entry["sha256"], relative


def test_a_run_to_s3_publishes_every_file_then_names_the_run(store, demo_plant):
    result = run_etl(demo_plant.path, store.url, full=True)
    fs, where = store.fs("cmo"), location(store)
    assert s3.live_run(fs, where) == result.run_id
    local = json.loads((result.snapshot / "manifest.json").read_text())
    assert json.loads(s3.read_object(fs, where.cmo(result.run_id, "manifest.json"))) == local
    assert_complete(store, result.run_id, local)

    for sponsor_id in {entry["sponsor_id"] for entry in local["files"].values()}:
        own = json.loads(s3.read_object(fs, where.tenant(sponsor_id, result.run_id,
                                                         "manifest.json")))  # fmt: skip
        assert {e["sponsor_id"] for e in own["files"].values()} == {sponsor_id}
        assert not {"source", "watermark", "masked_free_text", "quarantine_reasons"} & set(own)
        assert own["tables"] == {
            name: {"published_rows": facts["published_rows"].get(sponsor_id, 0)}
            for name, facts in local["tables"].items()
        }


def test_polars_and_pyarrow_read_a_sponsors_run_with_its_own_identity(store, demo_plant):
    """Beyond the portal: the S3 snapshot reads as Hive-partitioned Parquet, row counts as the
    manifest says (Spark's S3 connector jar cannot be fetched here; pyarrow and polars can)."""
    result = run_etl(demo_plant.path, store.url, full=True)
    where, fs = location(store), store.fs("sponsor-NWT")
    own = json.loads(s3.read_object(fs, where.tenant("NWT", result.run_id, "manifest.json")))
    checked = 0
    for table, facts in own["tables"].items():
        if not facts["published_rows"]:
            continue
        dataset = ds.dataset(where.tenant("NWT", result.run_id, table), filesystem=fs,
                             format="parquet", partitioning="hive")  # fmt: skip
        assert dataset.count_rows() == facts["published_rows"], table
        checked += 1
    assert checked >= 10
    key, secret = store.credentials("sponsor-NWT")
    frame = pl.scan_parquet(
        f"s3://{where.tenant('NWT', result.run_id, 'batch')}/**/*.parquet",
        storage_options={
            "aws_access_key_id": key,
            "aws_secret_access_key": secret,
            "aws_endpoint_url": store.endpoint,
            "aws_region": "us-east-1",
            "aws_allow_http": "true",
        },
        hive_partitioning=False,
    ).collect()
    assert frame.height == own["tables"]["batch"]["published_rows"]


# (what a sponsor's identity tries, on which key) - every one refused by the store itself
def _other_sponsors_file(where: Location, run_id: str) -> str:
    return where.tenant("CTB", run_id, "batch", "sponsor_id=CTB", "part-0.parquet")


ATTACKS = [
    ("read another sponsor's file", lambda fs, w, r: fs.open_input_stream(
        _other_sponsors_file(w, r)).read()),
    ("read another sponsor's manifest", lambda fs, w, r: fs.open_input_stream(
        w.tenant("CTB", r, "manifest.json")).read()),
    ("ask whether another sponsor's file exists", lambda fs, w, r: fs.get_file_info(
        _other_sponsors_file(w, r)).type == pafs.FileType.NotFound or 1 / 0),
    ("list every tenant", lambda fs, w, r: fs.get_file_info(
        pafs.FileSelector(w.path("tenants")))),
    ("list another sponsor's run", lambda fs, w, r: fs.get_file_info(
        pafs.FileSelector(w.tenant("CTB", r), recursive=True))),
    ("read the CMO's manifest", lambda fs, w, r: fs.open_input_stream(
        w.cmo(r, "manifest.json")).read()),
    ("copy another sponsor's file into its own prefix", lambda fs, w, r: fs.copy_file(
        _other_sponsors_file(w, r), w.tenant("NWT", r, "stolen.parquet"))),
    ("overwrite the pointer", lambda fs, w, r: s3.write_object(fs, w.pointer(), b"{}")),
    ("delete its own run", lambda fs, w, r: fs.delete_dir(w.tenant("NWT", r))),
]  # fmt: skip


def test_a_sponsors_identity_reads_its_own_objects_and_the_store_refuses_the_rest(
    store, demo_plant
):
    result = run_etl(demo_plant.path, store.url, full=True)
    where, fs = location(store), store.fs("sponsor-NWT")
    assert s3.live_run(fs, where) == result.run_id  # the pointer: a run id and nothing else
    own = json.loads(s3.read_object(fs, where.tenant("NWT", result.run_id, "manifest.json")))
    assert own["sponsor_id"] == "NWT"
    refused = []
    for what, attack in ATTACKS:
        try:
            attack(fs, where, result.run_id)
        except OSError as error:
            assert re.search("ACCESS_DENIED|AccessDenied|Access Denied", str(error)), (what, error)
            refused.append(what)
    assert refused == [what for what, _ in ATTACKS]
    assert s3.live_run(store.fs("cmo"), where) == result.run_id  # nothing was changed
    assert_complete(
        store, result.run_id, json.loads((result.snapshot / "manifest.json").read_text())
    )


def test_a_killed_upload_leaves_the_live_run_whole_and_the_next_run_clears_it(
    store, demo_plant, monkeypatch, tmp_path
):
    first = run_etl(demo_plant.path, store.url, full=True)
    manifest = json.loads((first.snapshot / "manifest.json").read_text())
    env = os.environ | {"PORTAL_ETL_FAIL_AFTER": "upload-midway:hang", "PYTHONPATH": str(ROOT)}
    errors = tmp_path / "job.err"
    with errors.open("w") as err:
        job = subprocess.Popen(
            [sys.executable, "-m", "etl", "run", "--source", str(demo_plant.path),
             "--warehouse", store.url, "--full"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while "reached after upload-midway" not in errors.read_text():
            assert job.poll() is None and time.monotonic() < deadline, errors.read_text()
            time.sleep(0.2)
    finally:
        job.send_signal(signal.SIGKILL)  # mid-upload: half of the run's files are in the store
        job.wait(timeout=30)
    where, fs = location(store), store.fs("cmo")
    (killed,) = [run for run in publish_s3.stored_runs(fs, where) if run != first.run_id]
    assert s3.live_run(fs, where) == first.run_id
    assert_complete(store, first.run_id, manifest)  # readers of the live run lose nothing
    assert fs.get_file_info(where.cmo(killed, "manifest.json")).type == pafs.FileType.NotFound

    monkeypatch.setenv(publish_s3.GRACE_ENV, "0")
    second = run_etl(demo_plant.path, store.url)
    assert s3.live_run(fs, where) == second.run_id
    assert list(publish_s3.stored_runs(fs, where)) == [first.run_id, second.run_id]


def test_old_runs_go_only_after_no_reader_can_be_on_them(store):
    """The live run and the two before it stay; an older one stays while it was live within
    the grace period (a reader may still hold it); a run never made live stays while its
    newest object is that recent (its upload may still be going on)."""
    where, fs = location(store), store.fs()
    # The store's clock, not this machine's: a never-live run ages by its objects' times.
    half = where.tenant("NWT", "20990101T000000Z-000005", "batch", "part-0.parquet")
    s3.write_object(fs, half, b"half")
    now = fs.get_file_info(half).mtime.astimezone(UTC).replace(microsecond=0)
    fs.delete_file(half)
    start = now - timedelta(days=20)
    runs = [f"{start + timedelta(days=n):%Y%m%dT%H%M%SZ}-00000{n}" for n in range(6)]
    pointer = None
    for number, run_id in enumerate(runs[:5]):
        for sponsor_id in ("NWT", "CTB"):
            s3.write_object(fs, where.tenant(sponsor_id, run_id, "manifest.json"), b"{}")
        s3.write_object(fs, where.cmo(run_id, "manifest.json"), b"{}")
        pointer = s3.next_pointer(pointer, run_id, start + timedelta(days=number, hours=1))
    s3.write_object(fs, where.pointer(), json.dumps(pointer).encode())
    s3.write_object(fs, where.tenant("NWT", runs[5], "batch", "part-0.parquet"), b"half")
    s3.write_object(fs, where.path("tenants", "NWT", "notes", "readme.txt"), b"not a run")

    # Run 0 stopped being live on day 1 at 01:00, run 1 on day 2 at 01:00.
    assert publish_s3.prune(fs, where, start + timedelta(days=1, hours=1, minutes=30)) == []
    assert publish_s3.prune(fs, where, start + timedelta(days=2, hours=1)) == [runs[0]]
    assert publish_s3.prune(fs, where, now + timedelta(minutes=30)) == [runs[1]]
    assert publish_s3.prune(fs, where, now + timedelta(days=1)) == [runs[5]]
    held = publish_s3.stored_runs(fs, where)
    assert list(held) == runs[2:5]
    assert held[runs[4]].folders == {where.tenant("NWT", runs[4]), where.tenant("CTB", runs[4]),
                                     where.cmo(runs[4])}  # fmt: skip
    assert s3.read_object(fs, where.path("tenants", "NWT", "notes", "readme.txt")) == b"not a run"


def test_a_failed_prune_leaves_the_run_published(store, demo_plant, monkeypatch):
    """The pointer names the run before old runs are pruned: a prune that fails is logged,
    and the run is reported as published (it is)."""
    first = run_etl(demo_plant.path, store.url, full=True)

    def refused(*args, **kwargs):
        raise OSError("AccessDenied on DeleteObjects")

    monkeypatch.setattr(publish_s3, "prune", refused)
    second = run_etl(demo_plant.path, store.url)
    assert s3.live_run(store.fs("cmo"), location(store)) == second.run_id != first.run_id


@pytest.mark.parametrize("stage", UPLOAD_STAGES)
def test_a_failed_upload_publishes_nothing(store, demo_plant, stage):
    first = run_etl(demo_plant.path, store.url, full=True)
    with pytest.raises(EtlError, match=f"injected failure after stage {stage}"):
        run_etl(demo_plant.path, store.url, full=True, fail_after=stage)
    assert s3.live_run(store.fs("cmo"), location(store)) == first.run_id


def test_s3_stopping_mid_upload_fails_the_run_and_leaves_the_live_run(
    demo_plant, demo_warehouse, sponsors, tmp_path, monkeypatch
):
    """The store goes away after half of a run's files: the upload fails, and once the store is
    back, current.json still names the previous run, whole."""
    with running_object_store(tmp_path / "s3", sponsors) as own:
        for name, value in own.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path / "data"))
        first = run_etl(demo_plant.path, own.url, full=True)
        manifest = json.loads((first.snapshot / "manifest.json").read_text())
        snapshot = layout.current_snapshot(demo_warehouse)  # another run of the same plant

        def stop_the_store(reached: str) -> None:
            if reached == "upload-midway":
                own.stop()

        with pytest.raises(OSError):
            publish_s3.publish(snapshot, location(own), s3.filesystem(), stop_the_store)
        own.start()
        assert s3.live_run(own.fs("cmo"), location(own)) == first.run_id
        assert_complete(own, first.run_id, manifest)


def test_a_file_missing_from_the_store_stops_the_run_before_it_is_named(
    store, demo_plant, demo_warehouse
):
    first = run_etl(demo_plant.path, store.url, full=True)
    snapshot = layout.current_snapshot(demo_warehouse)
    manifest = json.loads((snapshot / "manifest.json").read_text())
    where, fs = location(store), store.fs()
    relative, entry = sorted(manifest["files"].items())[0]

    def lose_the_first_file(reached: str) -> None:
        if reached == "upload-midway":
            fs.delete_file(where.tenant(entry["sponsor_id"], manifest["run_id"], relative))

    with pytest.raises(OSError, match=f"{relative}: not in the store as published"):
        publish_s3.publish(snapshot, where, fs, lose_the_first_file)
    assert s3.live_run(fs, where) == first.run_id


# A current.json that is there but names no run: what someone or some tool may leave.
DAMAGED_POINTERS = {
    "cut short": b'{"run_id": "2026',
    "not UTF-8": b"\xff\xfe{}",
    "no run": b'{"history": []}',
    "not a run id": b'{"run_id": "../CTB", "live_from": "2026-12-01T00:00:00Z"}',
    "a run id that is no time": (
        b'{"run_id": "20261399T000000Z-0000aa", "live_from": "2026-12-01T00:00:00Z"}'
    ),
    "nested beyond reason": b"[" * 100_000,
    "a history without times": (
        b'{"run_id": "20261201T000000Z-0000aa", "live_from": "2026-12-01T00:00:00Z", '
        b'"history": [{"run_id": "20261130T000000Z-0000ab"}]}'
    ),
}


@pytest.mark.parametrize("damage", DAMAGED_POINTERS)
def test_a_damaged_pointer_is_replaced_and_no_run_a_reader_may_be_on_goes(
    store, demo_plant, damage
):
    """Which run was live, and until when, is lost with current.json: the next run names
    itself, says what it found, uploads every file, and keeps every stored run as if it was
    live until then; they go by the usual rule from then on."""
    where, fs = location(store), store.fs()
    first = run_etl(demo_plant.path, store.url, full=True)
    older = [f"2026010{day}T000000Z-00000{day}" for day in range(1, 5)]  # 4 runs, long gone
    for run_id in older:
        s3.write_object(fs, where.tenant("NWT", run_id, "manifest.json"), b"{}")
        s3.write_object(fs, where.cmo(run_id, "manifest.json"), b"{}")
    s3.write_object(fs, where.pointer(), DAMAGED_POINTERS[damage])
    with pytest.raises(s3.PointerError):
        s3.read_pointer(fs, where)

    notes: list[str] = []
    second = run_etl(demo_plant.path, store.url, progress=notes.append)
    assert s3.live_run(fs, where) == second.run_id
    (said,) = [note for note in notes if "current.json" in note]
    assert "this run replaces it" in said and "every file is uploaded" in said, said
    manifest = json.loads((second.snapshot / "manifest.json").read_text())
    assert_complete(store, second.run_id, manifest)
    assert list(publish_s3.stored_runs(fs, where)) == [*older, first.run_id, second.run_id]
    pointer = s3.read_pointer(fs, where)
    assert [entry["run_id"] for entry in pointer["history"]] == [*older, first.run_id]
    assert {entry["live_until"] for entry in pointer["history"]} == {pointer["live_from"]}

    later = publish_s3._when(pointer["live_from"]) + publish_s3.GRACE + timedelta(seconds=1)
    assert publish_s3.prune(fs, where, later) == older[:3]  # the 3 newest stay, as always
    assert list(publish_s3.stored_runs(fs, where)) == [older[3], first.run_id, second.run_id]


@pytest.mark.parametrize(
    "manifest", [b"not json", b'{"files": {"batch/part-0.parquet": {"rows": 1}}}', b"[]"]
)
def test_a_live_manifest_that_cannot_be_read_has_every_file_uploaded(store, demo_plant, manifest):
    where, fs = location(store), store.fs()
    first = run_etl(demo_plant.path, store.url, full=True)
    s3.write_object(fs, where.cmo(first.run_id, "manifest.json"), manifest)
    notes: list[str] = []
    second = run_etl(demo_plant.path, store.url, progress=notes.append)
    assert s3.live_run(fs, where) == second.run_id
    assert any("live run's manifest" in n and "every file is uploaded" in n for n in notes)
    assert_complete(
        store, second.run_id, json.loads((second.snapshot / "manifest.json").read_text())
    )


def test_a_live_manifest_naming_another_sponsors_object_is_not_copied_from(store, demo_plant):
    """A live manifest edited to list one sponsor's file as another's (same path, same hash):
    the run uploads its own file, it does not copy the other sponsor's object into place."""
    where, fs = location(store), store.fs()
    first = run_etl(demo_plant.path, store.url, full=True)
    live = json.loads(s3.read_object(fs, where.cmo(first.run_id, "manifest.json")))
    relative = next(path for path, e in sorted(live["files"].items()) if e["sponsor_id"] == "NWT")
    decoy = next(p for p, e in sorted(live["files"].items()) if e["sponsor_id"] == "CTB")
    entry = live["files"][relative]
    # The CTB object now sits where the edited manifest says NWT's file is.
    fs.copy_file(
        where.tenant("CTB", first.run_id, decoy), where.tenant("CTB", first.run_id, relative)
    )
    live["files"][relative] = entry | {"sponsor_id": "CTB"}
    s3.write_object(fs, where.cmo(first.run_id, "manifest.json"), json.dumps(live).encode())
    second = run_etl(demo_plant.path, store.url)
    own = where.tenant("NWT", second.run_id, relative)
    assert stored_sha256(fs, own) == entry["sha256"]


def test_a_run_folder_whose_id_is_no_time_does_not_stop_a_damaged_pointer_being_replaced(
    store, demo_plant
):
    where, fs = location(store), store.fs()
    odd = "20261399T000000Z-0000ff"  # the shape of a run id, not a time
    s3.write_object(fs, where.cmo(odd, "manifest.json"), b"{}")
    s3.write_object(fs, where.pointer(), b"{cut")
    result = run_etl(demo_plant.path, store.url, full=True)
    pointer = s3.read_pointer(fs, where)
    assert pointer["run_id"] == result.run_id and pointer["history"] == []
    assert list(publish_s3.stored_runs(fs, where)) == [result.run_id, odd]  # kept, not judged


def test_a_pointer_without_history_prunes_by_the_runs_own_times(store):
    where, fs = location(store), store.fs()
    live = "20261201T000000Z-0000aa"
    s3.write_object(fs, where.cmo(live, "manifest.json"), b"{}")
    pointer = {"run_id": live, "live_from": "2026-12-01T00:00:00Z"}  # no "history" at all
    s3.write_object(fs, where.pointer(), json.dumps(pointer).encode())
    assert publish_s3.prune(fs, where) == []
