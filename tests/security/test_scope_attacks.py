"""A sponsor scope, attacked with raw SQL: every route to another sponsor is refused.

Each line of ATTACKS is one attempt an attacker holding the scope's own DuckDB cursor could
make, with the refusal it must get. The snapshot is built here from real Parquet files laid
out as the publisher lays them, with sponsors S1 and S10 whose ids are prefixes of each other.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from warehouse import layout
from warehouse.contract import TABLES
from warehouse.scope import ScopeError, open_cmo_scope, open_sponsor_scope

SPONSORS = ("S1", "S10", "S2")


def write_partition(snapshot: Path, table: str, sponsor: str, label: str | None = None) -> Path:
    directory = layout.partition_dir(snapshot, table, sponsor)
    directory.mkdir(parents=True, exist_ok=True)
    rows = pa.table({"key": [f"{sponsor}-{table}-1"], "secret": [f"secret of {sponsor}"]})
    metadata = {"sponsor_id": label or sponsor, "table": table, "run_id": snapshot.name}
    rows = rows.replace_schema_metadata(metadata)
    path = directory / "part-0.parquet"
    pq.write_table(rows, path)
    return path


def build_warehouse(root: Path, run_id: str = "20261126T020000Z-aaaaaa") -> Path:
    snapshot = layout.snapshot_dir(root, run_id)
    files = {}
    for table in TABLES:
        for sponsor in SPONSORS:
            path = write_partition(snapshot, table.name, sponsor)
            files[path.relative_to(snapshot).as_posix()] = {
                "sponsor_id": sponsor, "table": table.name, "rows": 1,
                "bytes": path.stat().st_size,
            }  # fmt: skip
    for sponsor in SPONSORS:  # entries of open batches: a second file of the partition
        path = layout.partition_dir(snapshot, "batch_event", sponsor) / "part-1.parquet"
        rows = pa.table({"key": [f"{sponsor}-open-1"], "secret": [f"secret of {sponsor}"]})
        pq.write_table(rows.replace_schema_metadata({"sponsor_id": sponsor}), path)
        files[path.relative_to(snapshot).as_posix()] = {
            "sponsor_id": sponsor, "table": "batch_event", "rows": 1,
            "bytes": path.stat().st_size,
        }  # fmt: skip
    manifest = {
        "run_id": run_id,
        "created_at": "2026-11-26T02:00:00+00:00",
        "sponsors": list(SPONSORS),
        "files": files,
    }
    (snapshot / layout.MANIFEST).write_text(json.dumps(manifest))
    (snapshot / layout.QUARANTINE).mkdir()
    pq.write_table(pa.table({"reason": ["secret of S10"]}), snapshot / "_quarantine/batch.parquet")
    # What an incremental run keeps for the next one, every sponsor's: never a scope's to read.
    for folder, name in (("_state", "quarantine"), ("_source", "batch_event")):
        (snapshot / folder).mkdir()
        secret = pa.table({"values": ["secret of S10"]})
        pq.write_table(secret, snapshot / folder / f"{name}.parquet")
    os.symlink(Path(layout.SNAPSHOTS) / run_id, root / layout.CURRENT)
    return snapshot


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("warehouse")
    build_warehouse(root)
    return root


@pytest.fixture(scope="module")
def s1(root: Path):
    scope = open_sponsor_scope(root, "S1")
    yield scope
    scope.close()


def test_scope_reads_its_own_rows(s1) -> None:
    rows = s1.frame("batch", "SELECT key, secret, sponsor_id FROM batch").rows()
    assert rows == [("S1-batch-1", "secret of S1", "S1")]


def test_every_view_holds_only_its_sponsor(s1) -> None:
    for table in TABLES:
        secrets = s1.frame(table.name, f"SELECT DISTINCT secret FROM {table.name}")["secret"]
        assert secrets.to_list() == ["secret of S1"], table.name


S10 = "{root}/snapshots/20261126T020000Z-aaaaaa/batch/sponsor_id=S10"
S1 = "{root}/snapshots/20261126T020000Z-aaaaaa/batch/sponsor_id=S1"
SNAP = "{root}/snapshots/20261126T020000Z-aaaaaa"

# (attack, SQL, fragment of the expected refusal)
ATTACKS = [
    ("direct path", f"SELECT * FROM read_parquet('{S10}/part-0.parquet')", "Permission"),
    ("prefix sibling glob", f"SELECT * FROM read_parquet('{S1}*/part-0.parquet')", "Permission"),
    (
        "dot-dot traversal",
        f"SELECT * FROM read_parquet('{S1}/../sponsor_id=S10/part-0.parquet')",
        "Permission",
    ),
    ("table-wide glob", f"SELECT * FROM read_parquet('{SNAP}/batch/*/*.parquet')", "Permission"),
    ("recursive glob", f"SELECT * FROM read_parquet('{SNAP}/**/*.parquet')", "Permission"),
    (
        "via current symlink",
        "SELECT * FROM read_parquet('{root}/current/batch/sponsor_id=S10/part-0.parquet')",
        "Permission",
    ),
    ("manifest as text", f"SELECT * FROM read_text('{SNAP}/manifest.json')", "Permission"),
    ("manifest as json", f"SELECT * FROM read_json_auto('{SNAP}/manifest.json')", "Permission"),
    (
        "quarantine file",
        f"SELECT * FROM read_parquet('{SNAP}/_quarantine/batch.parquet')",
        "Permission",
    ),
    ("run state", f"SELECT * FROM read_parquet('{SNAP}/_state/quarantine.parquet')", "Permission"),
    (
        "extracted source text",
        f"SELECT * FROM read_parquet('{SNAP}/_source/batch_event.parquet')",
        "Permission",
    ),
    (
        "extracted copy of every open batch's entries",
        f"SELECT * FROM read_parquet('{SNAP}/_source/batch_event.open.parquet')",
        "Permission",
    ),
    (
        "open batches' entries file",
        f"SELECT * FROM read_parquet('{SNAP}/batch_event/sponsor_id=S10/part-1.parquet')",
        "Permission",
    ),
    ("read_csv", f"SELECT * FROM read_csv('{S10}/part-0.parquet')", "Permission"),
    ("read_blob", f"SELECT * FROM read_blob('{S10}/part-0.parquet')", "Permission"),
    ("glob listing", f"SELECT * FROM glob('{SNAP}/batch/*')", "Permission"),
    ("parquet_metadata", f"SELECT * FROM parquet_metadata('{S10}/part-0.parquet')", "Permission"),
    (
        "parquet_kv_metadata",
        f"SELECT * FROM parquet_kv_metadata('{S10}/part-0.parquet')",
        "Permission",
    ),
    ("parquet_schema", f"SELECT * FROM parquet_schema('{S10}/part-0.parquet')", "Permission"),
    ("system file", "SELECT * FROM read_text('/etc/passwd')", "Permission"),
    ("ATTACH a database", "ATTACH '{root}/stolen.duckdb' AS stolen", "Permission"),
    ("COPY TO a file", "COPY (SELECT * FROM batch) TO '{root}/exfil.csv'", "Permission"),
    ("EXPORT DATABASE", "EXPORT DATABASE '{root}/exfil'", "Permission"),
    ("INSTALL extension", "INSTALL httpfs", "Permission"),
    ("LOAD extension", "LOAD httpfs", "Permission"),
    ("widen allowed_directories", "SET allowed_directories = ['/']", "locked"),
    ("re-enable external access", "SET enable_external_access = true", "locked"),
    ("unlock configuration", "SET lock_configuration = false", "locked"),
    ("reset allowed_directories", "RESET allowed_directories", "locked"),
    ("reset external access", "RESET enable_external_access", "locked"),
    ("allowed_paths", "SET allowed_paths = ['{root}/current/manifest.json']", "locked"),
    ("global scope set", "SET GLOBAL enable_external_access = true", "locked"),
]


@pytest.mark.parametrize(("sql", "refusal"), [a[1:] for a in ATTACKS], ids=[a[0] for a in ATTACKS])
def test_attack_is_refused(s1, root: Path, sql: str, refusal: str) -> None:
    cursor = s1._cursor()
    with pytest.raises(duckdb.Error) as refused:
        cursor.sql(sql.format(root=root)).fetchall()
    assert refusal.lower() in str(refused.value).lower()
    assert not (root / "exfil.csv").exists()
    assert not (root / "stolen.duckdb").exists()


def test_cursor_of_another_thread_is_confined_too(s1, root: Path) -> None:
    import threading

    errors: list[Exception] = []

    def attack() -> None:
        try:
            s1._cursor().execute(f"SELECT * FROM read_parquet('{S10.format(root=root)}/*')")
        except duckdb.Error as exc:
            errors.append(exc)

    worker = threading.Thread(target=attack)
    worker.start()
    worker.join()
    assert len(errors) == 1 and "Permission" in str(errors[0])


@pytest.mark.parametrize(
    "sponsor", ["../S10", "S1/../S10", "S1/", "*", "", "s1", "S1*", "SITE", "S9", "S1 ", "S1'--"]
)
def test_unsafe_or_unknown_sponsor_is_refused_before_any_path(root: Path, sponsor: str) -> None:
    with pytest.raises(ScopeError) as refused:
        open_sponsor_scope(root, sponsor)
    assert str(refused.value) == "Unknown sponsor."


def test_query_errors_do_not_leak_paths(s1) -> None:
    from warehouse.scope import QueryError

    with pytest.raises(QueryError) as failed:
        s1.frame("broken", "SELECT * FROM read_parquet('/nowhere/sponsor_id=S10/x.parquet')")
    assert "S10" not in str(failed.value) and "/" not in str(failed.value)


def test_misplaced_file_in_partition_is_refused_at_open(tmp_path: Path) -> None:
    snapshot = build_warehouse(tmp_path)
    write_partition(snapshot, "batch", "S1", label="S10")
    with pytest.raises(ScopeError, match="integrity"):
        open_sponsor_scope(tmp_path, "S1")


def test_unlabelled_file_in_partition_is_refused_at_open(tmp_path: Path) -> None:
    snapshot = build_warehouse(tmp_path)
    stray = layout.partition_dir(snapshot, "deviation", "S1") / "part-1.parquet"
    pq.write_table(pa.table({"key": ["x"], "secret": ["secret of S10"]}), stray)
    with pytest.raises(ScopeError, match="integrity"):
        open_sponsor_scope(tmp_path, "S1")


def test_extra_file_rightly_labelled_is_refused_at_open(tmp_path: Path) -> None:
    """A copy of the sponsor's own file, label and all, that the manifest does not list."""
    snapshot = build_warehouse(tmp_path)
    own = layout.partition_dir(snapshot, "batch", "S1") / "part-0.parquet"
    shutil.copy(own, own.with_name("part-1.parquet"))
    with pytest.raises(ScopeError, match="integrity"):
        open_sponsor_scope(tmp_path, "S1")


def test_listed_file_of_another_size_is_refused_at_open(tmp_path: Path) -> None:
    """The listed name, the right label, other content: the manifest's size gives it away."""
    snapshot = build_warehouse(tmp_path)
    path = layout.partition_dir(snapshot, "deviation", "S1") / "part-0.parquet"
    rows = pa.table({"key": ["S1-a", "S1-b"], "secret": ["planted", "planted too"]})
    pq.write_table(rows.replace_schema_metadata({"sponsor_id": "S1"}), path)
    with pytest.raises(ScopeError, match="integrity"):
        open_sponsor_scope(tmp_path, "S1")


def test_listed_file_missing_is_refused_at_open(tmp_path: Path) -> None:
    snapshot = build_warehouse(tmp_path)
    (layout.partition_dir(snapshot, "capa", "S1") / "part-0.parquet").unlink()
    with pytest.raises(ScopeError, match="integrity"):
        open_sponsor_scope(tmp_path, "S1")


def test_cmo_scope_reads_every_sponsor(root: Path) -> None:
    scope = open_cmo_scope(root)
    sponsors = scope.frame("batch", "SELECT DISTINCT sponsor_id FROM batch ORDER BY 1")
    assert sponsors["sponsor_id"].to_list() == sorted(SPONSORS)
    scope.close()


def test_no_snapshot_yet(tmp_path: Path) -> None:
    with pytest.raises(ScopeError, match="No data"):
        open_sponsor_scope(tmp_path, "S1")
