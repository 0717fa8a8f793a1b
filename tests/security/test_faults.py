"""Fault injection on the nightly job, with a reader in a loop throughout.

`python -m etl run` is killed with SIGKILL at every stage boundary and midway through writing
files (PORTAL_ETL_FAIL_AFTER=<stage>:hang). While that happens a reader opens every sponsor's
scope over and over: it must always find a complete snapshot (every manifest file present,
every hash matching) and read it, and what each sponsor reads holds none of another
sponsor's identifiers (by the source's ownership, tests/ownership.py) and some of its own.
Afterwards one undisturbed run converges to the same published tables as a run that was never
disturbed. A full disk (a small tmpfs) fails the run cleanly and leaves `current` untouched,
still serving each sponsor only its own records.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl
import pytest

from etl.run import FAIL_AFTER_ENV, STAGES, EtlError, run_etl
from tests.ownership import Ownership, ownership
from tests.scope_reads import leak_problems, served
from tests.source_fixtures import base_plant, write_sqlite
from warehouse import layout
from warehouse.contract import TABLES
from warehouse.scope import ScopeError, open_sponsor_scope, snapshot_info, sponsor_ids

REPO = Path(__file__).resolve().parents[2]


def _command(source: Path, warehouse: Path) -> list[str]:
    return [sys.executable, "-m", "etl", "run", "--source", str(source), "--warehouse",
            str(warehouse), "--full"]  # fmt: skip


def complete_snapshot_problems(warehouse: Path) -> list[str]:
    """What is wrong with the snapshot `current` points at (nothing, for a good one)."""
    live = layout.current_snapshot(warehouse)
    if live is None:
        return ["no current snapshot"]
    manifest = json.loads((live / layout.MANIFEST).read_text())
    problems = []
    for relative, expected in manifest["files"].items():
        path = live / relative
        if not path.is_file():
            problems.append(f"missing {relative}")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != expected["sha256"]:
            problems.append(f"hash mismatch {relative}")
    return problems


class Reader(threading.Thread):
    """Opens every sponsor's scope in a loop and records anything incomplete or refused, or
    any read that serves a sponsor another sponsor's records (or none of its own)."""

    def __init__(self, warehouse: Path, oracle: Ownership) -> None:
        super().__init__(daemon=True)
        self.warehouse, self.stop, self.rounds, self.problems = warehouse, False, 0, []
        self.oracle, self.reads = oracle, 0

    def run(self) -> None:
        try:
            self._loop()
        except Exception as failed:  # a reader that dies must not look like a clean one
            self.problems.append(f"the reader failed: {failed!r}")

    def _loop(self) -> None:
        while not self.stop:
            info = snapshot_info(self.warehouse)
            self.problems += complete_snapshot_problems(self.warehouse)
            for sponsor in sponsor_ids(self.warehouse):
                try:
                    scope = open_sponsor_scope(self.warehouse, sponsor)
                except ScopeError as refused:
                    # A snapshot pruned under an open scope is a retention race, not
                    # half a snapshot; anything else is a failure.
                    self.problems.append(f"{sponsor}: {refused}")
                    continue
                try:
                    rows = scope.frame("batches", "SELECT count(*) AS n FROM batch")["n"][0]
                    if rows == 0:
                        self.problems.append(f"{sponsor}: empty batch partition")
                    self.problems += leak_problems(sponsor, served(scope), self.oracle)
                    self.reads += 1
                finally:
                    scope.close()
            assert info is not None
            self.rounds += 1


def published(warehouse: Path) -> dict[str, pl.DataFrame]:
    live = layout.current_snapshot(warehouse)
    return {
        t.name: pl.read_parquet(live / t.name / "*/*.parquet", hive_partitioning=True).sort(
            "sponsor_id", t.key
        )
        for t in TABLES
    }


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return write_sqlite(base_plant(), tmp_path_factory.mktemp("faults") / "plant.sqlite")


@pytest.fixture(scope="module")
def undisturbed(source: Path, tmp_path_factory) -> dict[str, pl.DataFrame]:
    warehouse = tmp_path_factory.mktemp("undisturbed")
    run_etl(source, warehouse, full=True)
    return published(warehouse)


def test_sigkill_at_every_stage_keeps_a_complete_snapshot_and_converges(
    source: Path, undisturbed, tmp_path: Path
) -> None:
    warehouse = tmp_path / "wh"
    run_etl(source, warehouse, full=True)
    first = layout.current_snapshot(warehouse).name
    reader = Reader(warehouse, ownership(source))
    reader.start()
    killed = []
    try:
        for stage in STAGES:
            env = {**os.environ, FAIL_AFTER_ENV: f"{stage}:hang"}
            process = subprocess.Popen(_command(source, warehouse), cwd=REPO, env=env,
                                       stderr=subprocess.PIPE, text=True)  # fmt: skip
            deadline, seen = time.monotonic() + 120, ""
            while "injected failure point reached" not in seen and time.monotonic() < deadline:
                seen = process.stderr.readline()
                if not seen and process.poll() is not None:
                    break
            process.kill()  # SIGKILL, exactly where the run hangs
            process.wait(timeout=60)
            assert process.returncode == -signal.SIGKILL, stage
            killed.append(stage)
            assert layout.current_snapshot(warehouse).name == first, stage
    finally:
        reader.stop = True
        reader.join(timeout=120)
    assert killed == list(STAGES)
    assert reader.rounds > 0 and not reader.problems, reader.problems[:5]
    assert reader.reads >= reader.rounds * len(reader.oracle.sponsors())  # all, every round
    result = run_etl(source, warehouse, full=True)
    assert layout.current_snapshot(warehouse).name == result.run_id
    assert not complete_snapshot_problems(warehouse)
    assert not list((warehouse / layout.SNAPSHOTS).glob(".tmp-*"))
    after = published(warehouse)
    for table in TABLES:
        assert after[table.name].equals(undisturbed[table.name]), table.name


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@pytest.fixture
def small_disk(tmp_path: Path):
    """A size-limited tmpfs mount, or a skip saying why it cannot be had here."""
    mount = tmp_path / "disk"
    mount.mkdir()

    def attach(size: int) -> Path:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0:
            pytest.skip(f"mount -t tmpfs refused here: {done.stderr.strip()}")
        return mount

    yield attach
    subprocess.run(["umount", str(mount)], capture_output=True)


def test_a_full_disk_fails_the_run_cleanly(source: Path, tmp_path: Path, small_disk) -> None:
    probe = tmp_path / "probe"
    run_etl(source, probe, full=True)
    snapshot = _size(layout.current_snapshot(probe))
    # Room for one snapshot and a half: the next run runs out of space midway.
    warehouse = small_disk(int(snapshot * 1.5) // 4096 * 4096 + 64 * 4096) / "wh"
    run_etl(source, warehouse, full=True)
    before = layout.current_snapshot(warehouse)
    manifest = (before / layout.MANIFEST).read_text()
    done = subprocess.run(_command(source, warehouse), cwd=REPO, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "No space left" in done.stderr or "space" in done.stderr.lower(), done.stderr[-500:]
    assert layout.current_snapshot(warehouse) == before
    assert (before / layout.MANIFEST).read_text() == manifest
    assert not complete_snapshot_problems(warehouse)
    assert not list((warehouse / layout.SNAPSHOTS).glob(".tmp-*")), "half snapshot left"
    with pytest.raises((EtlError, OSError)):
        run_etl(source, warehouse, full=True)  # in process: an error, never a publish
    assert layout.current_snapshot(warehouse) == before
    oracle = ownership(source)
    assert sponsor_ids(warehouse) == oracle.sponsors()
    for sponsor in oracle.sponsors():  # what the untouched snapshot serves: own records only
        scope = open_sponsor_scope(warehouse, sponsor)
        try:
            assert not leak_problems(sponsor, served(scope), oracle)
        finally:
            scope.close()
