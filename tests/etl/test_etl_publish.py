"""Publishing is all or nothing: failures at any stage (and a SIGKILL midway) leave `current`
on the previous complete snapshot; overlapping runs are refused; incremental equals full."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from etl.run import FAIL_AFTER_ENV, STAGES, EtlError, InjectedFailure, run_etl
from tests.etl import published_files
from tests.source_fixtures import base_plant, write_sqlite
from warehouse.contract import TABLES
from warehouse.layout import LOCK, MANIFEST, SNAPSHOTS, current_snapshot

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def plant(tmp_path: Path) -> Path:
    return write_sqlite(base_plant(), tmp_path / "plant.sqlite")


def _manifest(warehouse: Path) -> dict:
    live = current_snapshot(warehouse)
    assert live is not None
    return json.loads((live / MANIFEST).read_text())


@pytest.mark.parametrize("stage", STAGES)
def test_failure_after_stage_keeps_current(tmp_path: Path, plant: Path, stage: str) -> None:
    warehouse = tmp_path / "wh"
    run_etl(plant, warehouse)
    before = _manifest(warehouse)
    with pytest.raises(InjectedFailure):
        run_etl(plant, warehouse, full=True, fail_after=stage)
    assert _manifest(warehouse) == before
    after = run_etl(plant, warehouse)
    assert _manifest(warehouse)["run_id"] == after.run_id != before["run_id"]
    assert not list((warehouse / SNAPSHOTS).glob(".tmp-*"))


def test_sigkill_midway_keeps_current(tmp_path: Path, plant: Path) -> None:
    warehouse = tmp_path / "wh"
    run_etl(plant, warehouse)
    before = _manifest(warehouse)
    command = [sys.executable, "-m", "etl", "run", "--source", str(plant), "--warehouse",
               str(warehouse), "--full"]  # fmt: skip
    env = {**os.environ, FAIL_AFTER_ENV: "publish-midway:hang"}
    process = subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    # The hook announces itself, then hangs halfway through writing: kill it there.
    deadline = time.monotonic() + 60
    seen = ""
    while "injected failure point reached" not in seen and time.monotonic() < deadline:
        seen = process.stderr.readline()
    assert list((warehouse / SNAPSHOTS).glob(".tmp-*")), "run should be midway through publish"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert _manifest(warehouse) == before
    after = run_etl(plant, warehouse)
    assert _manifest(warehouse)["run_id"] == after.run_id
    assert not list((warehouse / SNAPSHOTS).glob(".tmp-*"))


def test_overlapping_run_is_refused(tmp_path: Path, plant: Path) -> None:
    warehouse = tmp_path / "wh"
    warehouse.mkdir()
    with (warehouse / LOCK).open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(EtlError, match="another ETL run is in progress"):
            run_etl(plant, warehouse)
    assert current_snapshot(warehouse) is None


def test_cli_reports_one_line_error_and_exit_code(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.sqlite"
    done = subprocess.run(
        [sys.executable, "-m", "etl", "run", "--source", str(missing), "--warehouse",
         str(tmp_path / "wh")],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == f"error: source {missing} does not exist"


def test_keeps_last_three_snapshots(tmp_path: Path, plant: Path) -> None:
    warehouse = tmp_path / "wh"
    runs = [run_etl(plant, warehouse, full=True).run_id for _ in range(5)]
    kept = sorted(p.name for p in (warehouse / SNAPSHOTS).iterdir())
    assert kept == sorted(runs)[-3:]
    assert current_snapshot(warehouse).name == runs[-1]


def _published(warehouse: Path) -> dict[str, pl.DataFrame]:
    live = current_snapshot(warehouse)
    return {
        t.name: pl.read_parquet(live / t.name / "*/*.parquet", hive_partitioning=True).sort(
            "sponsor_id", t.key
        )
        for t in TABLES
    }


def test_incremental_equals_full(tmp_path: Path) -> None:
    plant = base_plant()
    source = write_sqlite(plant, tmp_path / "day1.sqlite")
    incremental = tmp_path / "wh-incremental"
    run_etl(source, incremental)
    # Next day: BETA's batch was booked under the wrong sponsor; the CMO corrects it.
    day2 = base_plant()
    later = "2026-01-21T09:00:00"
    day2["batch"].append({**day2["batch"][1], "batch_id": "B-MOVE", "sponsor_id": "ACME",
                          "product_id": "P-ACME"})  # fmt: skip
    write_sqlite(day2, source.unlink() or source)
    run_etl(source, incremental)
    assert _published(incremental)["batch"].filter(pl.col("batch_id") == "B-MOVE").height == 1
    day3 = base_plant()
    day3["batch"].append({**day3["batch"][1], "batch_id": "B-MOVE", "sponsor_id": "BETA",
                          "product_id": "P-BETA", "updated_at": later})  # fmt: skip
    day3["batch_event"][0]["updated_at"] = later
    day3["batch_event"][0]["late_entry_reason"] = "system outage"
    write_sqlite(day3, source.unlink() or source)
    result = run_etl(source, incremental)
    assert result.mode == "incremental"
    assert result.extracted["batch"] == 3
    full = run_etl(source, tmp_path / "wh-full", full=True)
    assert full.mode == "full"
    inc_tables, full_tables = _published(incremental), _published(tmp_path / "wh-full")
    for table in TABLES:
        assert inc_tables[table.name].equals(full_tables[table.name]), table.name
    moved = inc_tables["batch"].filter(pl.col("batch_id") == "B-MOVE")
    assert moved.get_column("sponsor_id").to_list() == ["BETA"]


def test_a_different_source_gets_a_full_rebuild(tmp_path: Path) -> None:
    first, second = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    write_sqlite(base_plant(), first)
    write_sqlite(base_plant(), second)
    warehouse = tmp_path / "wh"
    run_etl(first, warehouse, full=True)
    assert run_etl(first, warehouse).mode == "incremental"
    assert run_etl(second, warehouse).mode == "full"


def _aged(warehouse: Path) -> dict[str, dict]:
    """The live snapshot's partition files dated an hour back, as a nightly run finds files
    written long before it (which breaks the seals of the run that wrote them); its files."""
    live = current_snapshot(warehouse)
    files = _manifest(warehouse)["files"]
    # An hour before the manifest by the file system's clock, which dates the files (under
    # faketime the process's clock is another).
    hour_ago = (live / MANIFEST).stat().st_mtime_ns - 3600 * 10**9
    for relative in files:
        os.utime(live / relative, ns=(hour_ago, hour_ago))
    return files


def _first_file(warehouse: Path, table: str) -> tuple[Path, str]:
    """The live snapshot, and `table`'s first partition file in it (relative)."""
    files = sorted(_manifest(warehouse)["files"])
    return current_snapshot(warehouse), next(name for name in files if name.startswith(f"{table}/"))


def _sealed_warehouse(tmp_path: Path, plant: Path) -> Path:
    """A full build, then a run with nothing changed that seals the files it keeps."""
    warehouse = tmp_path / "wh"
    run_etl(plant, warehouse)
    files = _aged(warehouse)
    # Their seals are broken (a new date): each is read and hashed, found unchanged, kept.
    result = run_etl(plant, warehouse)
    assert result.mode == "incremental"
    assert _manifest(warehouse)["kept_files"] == len(files)
    return warehouse


def test_a_live_file_changed_after_it_was_published_is_not_carried(
    tmp_path: Path, plant: Path
) -> None:
    warehouse = _sealed_warehouse(tmp_path, plant)
    # A deviation file: nothing reads it before publish (the batch files are read to find the
    # day's changed batches).
    live, relative = _first_file(warehouse, "deviation")
    _flip_byte(live / relative)
    with pytest.raises(EtlError, match="is not the one its manifest lists"):
        run_etl(plant, warehouse)
    assert current_snapshot(warehouse) == live
    # As the error says, --full mends it: the file is written again, not kept.
    assert run_etl(plant, warehouse, full=True).mode == "full"
    mended = current_snapshot(warehouse) / relative
    assert (
        hashlib.sha256(mended.read_bytes()).hexdigest()
        == _manifest(warehouse)["files"][relative]["sha256"]
    )
    assert mended.stat().st_ino != (live / relative).stat().st_ino


def test_an_unreadable_live_batch_file_is_named_and_nothing_is_published(
    tmp_path: Path, plant: Path
) -> None:
    warehouse = _sealed_warehouse(tmp_path, plant)
    live, relative = _first_file(warehouse, "batch")
    os.truncate(live / relative, (live / relative).stat().st_size // 2)  # cut short
    # The day's changed batches are found from the live batch files: it cannot go on.
    with pytest.raises(EtlError, match=r"live snapshot's batch files .* cannot be read.*--full"):
        run_etl(plant, warehouse)
    assert current_snapshot(warehouse) == live
    assert run_etl(plant, warehouse, full=True).mode == "full"


def _json_edit(path: Path, edit: Callable[[dict], object]) -> None:
    """The JSON object at `path` changed by `edit`, which parses as before."""
    value = json.loads(path.read_text())
    edit(value)
    path.write_text(json.dumps(value))


def _cut_short(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


# A file the live run left for the next one, and how it is found damaged: cut off in a
# write, of another shape (seals as an earlier build of this release wrote them), or
# well-formed JSON missing what a run reads of it.
_DAMAGED_STATE: dict[str, tuple[str, Callable[[Path], object]]] = {
    "manifest cut off": ("manifest.json", lambda path: path.write_text('{"run_id": "')),
    "manifest file without sha256": (
        "manifest.json",
        lambda path: _json_edit(path, lambda m: next(iter(m["files"].values())).pop("sha256")),
    ),
    "state not an object": ("_state/state.json", lambda path: path.write_text("[]")),
    "state future a number": (
        "_state/state.json",
        lambda path: _json_edit(path, lambda state: state.update(future=3)),
    ),
    "seals of another shape": (
        "_state/seals.json",
        lambda path: path.write_text('{"sealed_at_ns": 1, "files": {}}'),
    ),
    "fingerprints cut off": ("_state/fingerprints.json", _cut_short),
    "facts cut off": ("_state/people.parquet", _cut_short),
    "extracted text cut off": ("_source/deviation.parquet", _cut_short),
}


@pytest.mark.parametrize("case", sorted(_DAMAGED_STATE))
def test_a_damaged_run_state_gets_a_full_rebuild(tmp_path: Path, plant: Path, case: str) -> None:
    """The live run's bookkeeping is no published data: where it cannot be read, the next
    run says so and builds in full (which needs none of it), instead of failing."""
    damaged, damage = _DAMAGED_STATE[case]
    warehouse = tmp_path / "wh"
    run_etl(plant, warehouse)
    live = current_snapshot(warehouse)
    path = live / damaged
    data = path.read_bytes()
    path.unlink()  # a file of its own: the earlier snapshots' hard links stay as they were
    path.write_bytes(data)
    damage(path)
    notes: list[str] = []
    result = run_etl(plant, warehouse, progress=notes.append)
    assert result.mode == "full"
    named = damaged if damaged.endswith(".parquet") else Path(damaged).name
    assert any(
        note.startswith(f"the live snapshot's {named} cannot be read (")
        and note.endswith("): full rebuild")
        for note in notes
    ), notes
    assert current_snapshot(warehouse) != live
    run_etl(plant, tmp_path / "rebuilt", full=True)
    assert published_files(warehouse) == published_files(tmp_path / "rebuilt")
    # The full build wrote the state anew: the next run builds on it.
    assert run_etl(plant, warehouse).mode == "incremental"


def test_full_mends_a_live_snapshot_whose_manifest_cannot_be_read(
    tmp_path: Path, plant: Path
) -> None:
    warehouse = tmp_path / "wh"
    run_etl(plant, warehouse)
    before = published_files(warehouse)
    (current_snapshot(warehouse) / MANIFEST).write_text("[]")
    assert run_etl(plant, warehouse, full=True).mode == "full"
    assert published_files(warehouse) == before
    assert run_etl(plant, warehouse).mode == "incremental"


def test_a_table_whose_kept_verdicts_cannot_be_read_is_judged_again(
    tmp_path: Path, plant: Path
) -> None:
    warehouse = tmp_path / "wh"
    run_etl(plant, warehouse)
    kept = current_snapshot(warehouse) / "_state" / "valid" / "deviation.parquet"
    kept.unlink()
    kept.write_bytes(b"PAR1 cut off")
    notes: list[str] = []
    assert run_etl(plant, warehouse, progress=notes.append).mode == "incremental"
    reused = next(note for note in notes if note.startswith("validate kept"))
    kept_tables = reused.split(": ", 1)[1].split(", ")
    assert "deviation" not in kept_tables and "deviation_link" in kept_tables
    run_etl(plant, tmp_path / "rebuilt", full=True)
    assert published_files(warehouse) == published_files(tmp_path / "rebuilt")


def _flip_byte(path: Path) -> None:
    """One byte in the middle of the file changed in place: same size, same inode."""
    middle = path.stat().st_size // 2
    with path.open("r+b") as handle:
        handle.seek(middle)
        byte = handle.read(1)
        handle.seek(middle)
        handle.write(bytes([byte[0] ^ 0xFF]))


def _bytes_read() -> int:
    """Bytes this process has read through read() and its kin (/proc/self/io rchar)."""
    io = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(io["rchar"])


def test_a_sealed_live_file_is_kept_without_reading_it(tmp_path: Path, plant: Path) -> None:
    sealed = _sealed_warehouse(tmp_path, plant)
    # The same warehouse, its files the same inodes, without the seals.
    unsealed = tmp_path / "unsealed"
    shutil.copytree(sealed, unsealed, symlinks=True, copy_function=os.link)
    (current_snapshot(unsealed) / "_state" / "seals.json").unlink()
    read = {}
    for name, warehouse in (("sealed", sealed), ("unsealed", unsealed)):
        before = _bytes_read()
        assert run_etl(plant, warehouse).mode == "incremental"
        read[name] = _bytes_read() - before
    kept = _manifest(sealed)["files"]
    assert _manifest(sealed)["kept_files"] == len(kept)
    kept_bytes = sum(entry["bytes"] for entry in kept.values())
    # Without seals every kept file is read to hash it; with them none is.
    assert read["unsealed"] - read["sealed"] >= 0.9 * kept_bytes, (read, kept_bytes)
    assert published_files(sealed) == published_files(unsealed)


def test_a_file_sealed_as_it_was_written_is_hashed_all_the_same(
    tmp_path: Path, plant: Path
) -> None:
    """A file changed within the clock's tick after it was written keeps its size and date
    (git's racy clean entries): a seal no older than the seals file is no proof, and the
    file is hashed."""
    warehouse = tmp_path / "wh"
    run_etl(plant, warehouse)
    live, relative = _first_file(warehouse, "deviation")
    path = live / relative
    seals_file = live / "_state" / "seals.json"
    written = path.stat().st_mtime_ns
    assert json.loads(seals_file.read_text())[relative][1] == written
    _flip_byte(path)
    os.utime(path, ns=(written, written))  # the change did not move its date
    os.utime(seals_file, ns=(written, written))  # sealed in the tick it was written
    with pytest.raises(EtlError, match="is not the one its manifest lists"):
        run_etl(plant, warehouse)
    assert current_snapshot(warehouse) == live


@pytest.mark.parametrize("stray", ["part-9.parquet", ".part-0.parquet.swp"])
def test_a_file_the_plan_did_not_write_is_refused(plant: Path, tmp_path: Path, stray: str) -> None:
    """A file in a partition folder that the run did not write would be read with that
    partition's rows: verification refuses the snapshot, naming the file."""
    from etl.publish import PublishError, verify

    run_etl(plant, tmp_path / "wh", full=True)
    snapshot = shutil.copytree(current_snapshot(tmp_path / "wh"), tmp_path / "copy")
    files = json.loads((snapshot / MANIFEST).read_text())["files"]
    verify(snapshot, files)
    folder = next(p for p in (snapshot / "batch").iterdir() if p.name.startswith("sponsor_id="))
    (folder / stray).write_bytes(b"PAR1")
    with pytest.raises(PublishError, match=f"batch/{folder.name}/{stray}: file is not in the plan"):
        verify(snapshot, files)
