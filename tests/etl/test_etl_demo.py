"""The demo plant end to end: partitions are pure, the manifest matches the files, and an
incremental run after a simulated day equals a full rebuild."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import polars as pl

from etl.publish import SETTLED_FILES
from etl.run import run_etl
from tests.conftest import DemoPlant
from tests.etl import partition_folders, published_files
from warehouse.contract import SITE_PARTITION, TABLES
from warehouse.layout import MANIFEST, current_snapshot

# Published columns that name a sponsor-owned record: the record's sponsor must be the
# partition's (equipment_usage.previous_batch_id is kept only for the same sponsor).
OWNED_COLUMNS = {"batch_id": "batch", "previous_batch_id": "batch", "product_id": "product"}


def _source(plant: Path, query: str) -> pl.DataFrame:
    with sqlite3.connect(plant) as connection:
        cursor = connection.execute(query)
        names = [d[0] for d in cursor.description]
        return pl.DataFrame(cursor.fetchall(), schema=names, orient="row")


def _sponsor_files(snapshot: Path) -> list[tuple[str, str, Path]]:
    return [
        (t.name, path.parent.name.removeprefix("sponsor_id="), path)
        for t in TABLES
        for path in sorted((snapshot / t.name).glob("sponsor_id=*/*.parquet"))
    ]


def test_every_partition_holds_only_its_sponsors_records(
    demo_plant: DemoPlant, demo_warehouse: Path
) -> None:
    snapshot = current_snapshot(demo_warehouse)
    owner = {
        "batch": dict(
            _source(demo_plant.path, "SELECT batch_id, sponsor_id FROM batch").iter_rows()
        ),
        "product": dict(
            _source(demo_plant.path, "SELECT product_id, sponsor_id FROM product").iter_rows()
        ),
    }
    for _table, sponsor, path in _sponsor_files(snapshot):
        frame = pl.read_parquet(path)
        assert "sponsor_id" not in frame.columns, path
        if sponsor == SITE_PARTITION:
            continue
        for column, owned in OWNED_COLUMNS.items():
            if column in frame.columns:
                values = frame.get_column(column).drop_nulls().unique().to_list()
                strangers = [v for v in values if owner[owned][v] != sponsor]
                assert not strangers, f"{path}: {column} of other sponsors {strangers[:5]}"


def test_no_partition_names_another_sponsor(demo_plant: DemoPlant, demo_warehouse: Path) -> None:
    snapshot = current_snapshot(demo_warehouse)
    words = _source(
        demo_plant.path,
        "SELECT sponsor_id, sponsor_id AS word FROM sponsor "
        "UNION SELECT sponsor_id, name FROM product "
        "UNION SELECT sponsor_id, batch_number FROM batch",
    )
    for table, sponsor, path in _sponsor_files(snapshot):
        if sponsor == SITE_PARTITION:
            continue
        frame = pl.read_parquet(path)
        text = frame.select(pl.col(pl.String))
        if text.width == 0 or frame.height == 0:
            continue
        cells = set(text.unpivot().get_column("value").drop_nulls().unique().to_list())
        foreign = words.filter(pl.col("sponsor_id") != sponsor).get_column("word")
        leaked = cells & set(foreign.to_list())
        assert not leaked, f"{table} under {sponsor} names {sorted(leaked)[:5]}"


def test_manifest_matches_files(demo_warehouse: Path) -> None:
    snapshot = current_snapshot(demo_warehouse)
    manifest = json.loads((snapshot / MANIFEST).read_text())
    on_disk = {p.relative_to(snapshot).as_posix() for _, _, p in _sponsor_files(snapshot)}
    assert on_disk == set(manifest["files"])
    for relative, entry in manifest["files"].items():
        path = snapshot / relative
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        assert pl.read_parquet(path).height == entry["rows"]
    for name, counts in manifest["tables"].items():
        assert counts["extracted"] == counts["valid"] + counts["quarantined"], name


def _published(warehouse: Path) -> dict[str, pl.DataFrame]:
    live = current_snapshot(warehouse)
    return {
        t.name: pl.read_parquet(live / t.name / "*/*.parquet", hive_partitioning=True).sort(
            "sponsor_id", t.key
        )
        for t in TABLES
    }


def test_deletions_seen_by_a_full_run_equal_a_fresh_build(
    demo_plant: DemoPlant, tmp_path: Path
) -> None:
    """Deleted rows leave no updated_at behind: `--full` on a live warehouse sees them, and
    its snapshot is the fresh build's, file for file, keeping the partitions they spared."""
    plant = Path(shutil.copy(demo_plant.path, tmp_path / "plant.sqlite"))
    warehouse = tmp_path / "wh"
    run_etl(plant, warehouse, full=True)
    live = current_snapshot(warehouse)
    with sqlite3.connect(plant) as connection:
        batch_id, sponsor = connection.execute(
            "SELECT batch_id, sponsor_id FROM batch WHERE status = 'IN_PROCESS' ORDER BY batch_id"
        ).fetchone()
        deleted = connection.execute(
            "DELETE FROM batch_event WHERE batch_id = ? AND seq > 3", (batch_id,)
        ).rowcount
    assert deleted > 0
    result = run_etl(plant, warehouse, full=True)
    assert result.mode == "full"
    run_etl(plant, tmp_path / "wh-fresh", full=True)
    files = published_files(warehouse)
    assert files == published_files(tmp_path / "wh-fresh")
    before = json.loads((live / MANIFEST).read_text())["files"]
    rewritten = {path for path, digest in files.items() if before[path]["sha256"] != digest}
    # The batch is open: its entries are in the small file of open batches, and the files of
    # the settled batches' entries are kept.
    assert f"batch_event/sponsor_id={sponsor}/part-1.parquet" in rewritten
    settled = {f"batch_event/sponsor_id={sponsor}/{name}" for name in SETTLED_FILES}
    assert settled <= files.keys() and not settled & rewritten
    assert all(path.split("=")[1].startswith(sponsor) for path in rewritten), rewritten
    events = pl.read_parquet(current_snapshot(warehouse) / "batch_event" / f"sponsor_id={sponsor}")
    assert events.filter(pl.col("batch_id") == batch_id).get_column("seq").max() == 3


def test_incremental_after_a_day_equals_full_rebuild(demo_plant: DemoPlant, tmp_path: Path) -> None:
    from etl.demo_source import simulate_day

    plant = Path(shutil.copy(demo_plant.path, tmp_path / "plant.sqlite"))
    incremental = tmp_path / "wh-incremental"
    run_etl(plant, incremental, full=True)
    before = _source(plant, "SELECT batch_id, sponsor_id FROM batch")
    simulate_day(plant, seed=7)
    after = _source(plant, "SELECT batch_id, sponsor_id FROM batch")
    live = current_snapshot(incremental)
    assert run_etl(plant, incremental).mode == "incremental"
    run_etl(plant, tmp_path / "wh-full", full=True)
    inc, full = _published(incremental), _published(tmp_path / "wh-full")
    for table in TABLES:
        assert inc[table.name].equals(full[table.name]), table.name
    # File for file: the same partitions with the same bytes as the full build.
    files = published_files(incremental)
    assert files == published_files(tmp_path / "wh-full")
    assert partition_folders(incremental) == partition_folders(tmp_path / "wh-full")
    # What the day did not change is the live snapshot's file itself, not a rewrite of it.
    earlier = json.loads((live / MANIFEST).read_text())["files"]
    kept = {path for path, digest in files.items() if earlier[path]["sha256"] == digest}
    assert 0 < len(kept) < len(files), "a day changes some partitions and leaves the rest"
    snapshot = current_snapshot(incremental)
    for path in kept:
        assert (snapshot / path).stat().st_ino == (live / path).stat().st_ino, path
    changed = {earlier[path]["table"] for path in set(files) - kept}
    assert {"batch", "batch_event", "deviation"} <= changed
    manifest = json.loads((snapshot / MANIFEST).read_text())
    assert manifest["kept_files"] == len(kept)
    moved = before.join(after, on="batch_id").filter(
        pl.col("sponsor_id") != pl.col("sponsor_id_right")
    )
    assert moved.height == 1, "simulate_day corrects one batch's sponsor"
    for batch_id, old, new in moved.iter_rows():
        rows = inc["batch"].filter(pl.col("batch_id") == batch_id)
        assert rows.get_column("sponsor_id").to_list() in ([], [new]), (batch_id, old)
