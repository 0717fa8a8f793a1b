"""The bd_demo role reads the demo warehouse root only, with a real warehouse right beside it.

The real warehouse is a copy of the demo snapshot whose sponsors are renamed (directories,
file labels, manifest, ids and names inside the rows) to REAL1..REALn, "Real Client n Ltd":
a published warehouse the sponsor scopes open, whose identifiers the demo never holds.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest

from portal.navigation import pages_for
from portal.session import warehouse_root
from tests.page_harness import principal, run_page, shown_text
from warehouse import layout
from warehouse.contract import SITE_PARTITION
from warehouse.scope import (
    QueryError,
    ScopeError,
    open_demo_scope,
    open_sponsor_scope,
    sponsor_ids,
)

# Pages of this brief, checked here before the lead registers them for bd_demo.
TOUR_PAGES = (
    "pages/sponsor/compliance.py",
    "pages/cmo/shared_equipment.py",
    "pages/demo/demo_tour.py",
)
TOUR_STEPS = (
    "Batch record exception",
    "CAPA aging",
    "Change awaiting approval",
    "Audit-ready view",
    "Same vessel, two sponsors",
)
REAL_NAME = "Real Client {n} Ltd"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_real_warehouse(demo: Path, real: Path) -> dict[str, str]:
    """Copy the demo's current snapshot to `real` with every sponsor renamed; returns
    {demo id: real id}."""
    source = layout.current_snapshot(demo)
    manifest = json.loads((source / layout.MANIFEST).read_text())
    renamed = {old: f"REAL{n}" for n, old in enumerate(sponsor_ids(demo), start=1)}
    target = layout.snapshot_dir(real, manifest["run_id"])
    files = {}
    for relative, entry in manifest["files"].items():
        old = entry["sponsor_id"]
        new = renamed.get(old, SITE_PARTITION)
        frame = pl.read_parquet(source / relative)
        for old_id, new_id in renamed.items():
            frame = frame.with_columns(pl.col(pl.String).str.replace_all(old_id, new_id))
        if entry["table"] == "sponsor" and frame.height:
            frame = frame.with_columns(name=pl.lit(REAL_NAME.format(n=new.removeprefix("REAL"))))
        path = layout.partition_dir(target, entry["table"], new) / Path(relative).name
        path.parent.mkdir(parents=True, exist_ok=True)
        metadata = {"sponsor_id": new, "table": entry["table"], "run_id": manifest["run_id"]}
        frame.write_parquet(path, metadata=metadata)
        files[path.relative_to(target).as_posix()] = {
            **entry, "sponsor_id": new, "sha256": _sha256(path), "bytes": path.stat().st_size,
        }  # fmt: skip
    (target / layout.MANIFEST).write_text(json.dumps({**manifest, "files": files}))
    (real / layout.CURRENT).symlink_to(Path(layout.SNAPSHOTS) / manifest["run_id"])
    return renamed


@pytest.fixture(scope="module")
def data_root(demo_warehouse, tmp_path_factory) -> Path:
    """A data root holding the demo warehouse and, beside it, a renamed real warehouse."""
    root = tmp_path_factory.mktemp("data-root")
    (root / "demo").mkdir()
    (root / "demo" / "warehouse").symlink_to(demo_warehouse, target_is_directory=True)
    build_real_warehouse(demo_warehouse, root / "warehouse")
    return root


@pytest.fixture()
def portal_data(data_root, monkeypatch) -> Path:
    monkeypatch.setenv("PORTAL_DATA_DIR", str(data_root))
    return data_root


def real_identifiers(data_root: Path) -> list[str]:
    real = data_root / "warehouse"
    return sponsor_ids(real) + [
        open_sponsor_scope(real, s).frame("name", "SELECT name FROM sponsor")["name"][0]
        for s in sponsor_ids(real)
    ]


def test_the_real_warehouse_is_a_published_warehouse_of_other_sponsors(portal_data) -> None:
    real = layout.real_warehouse()
    assert sponsor_ids(real)[:2] == ["REAL1", "REAL2"]
    scope = open_sponsor_scope(real, "REAL1")
    assert scope.frame("name", "SELECT name FROM sponsor")["name"].to_list() == [
        "Real Client 1 Ltd"
    ]
    assert scope.frame("batches", "SELECT count(*) AS n FROM batch")["n"][0] > 0
    assert not set(sponsor_ids(real)) & set(sponsor_ids(layout.demo_warehouse()))


def test_bd_demo_is_routed_to_the_demo_root_in_every_mode(portal_data) -> None:
    for mode in ("demo", "production"):
        assert warehouse_root(principal("bd_demo"), mode) == layout.demo_warehouse()


@pytest.mark.parametrize("sponsor", ["REAL1", "REAL2"])
def test_the_demo_scope_cannot_open_a_real_sponsor(portal_data, sponsor) -> None:
    with pytest.raises(ScopeError):
        open_demo_scope(sponsor)


def test_the_demo_site_scope_holds_demo_sponsors_only(portal_data) -> None:
    scope = open_demo_scope()
    listed = set(scope.frame("sponsors", "SELECT DISTINCT sponsor_id FROM batch")["sponsor_id"])
    assert listed == set(sponsor_ids(layout.demo_warehouse()))
    names = " ".join(scope.frame("names", "SELECT name FROM sponsor")["name"])
    assert "Real Client" not in names and "(fictional)" in names


@pytest.mark.parametrize("sponsor", [None, "NWT"])
def test_the_demo_scope_cannot_read_real_files_by_path(portal_data, sponsor) -> None:
    real_files = layout.real_warehouse() / "current" / "sponsor" / "sponsor_id=REAL1" / "*.parquet"
    scope = open_demo_scope(sponsor)
    with pytest.raises(QueryError):
        scope.frame("attack", f"SELECT * FROM read_parquet('{real_files}')")
    with pytest.raises(QueryError):
        scope.frame("attack", f"SELECT * FROM glob('{layout.real_warehouse()}/**')")


def _bd_demo_pages() -> list[str]:
    registered = [spec.script for spec in pages_for("bd_demo")]
    return sorted(set(registered) | set(TOUR_PAGES))


@pytest.mark.parametrize("script", _bd_demo_pages())
def test_no_real_identifier_reaches_any_bd_demo_page(portal_data, script) -> None:
    who = principal("bd_demo")
    root = warehouse_root(who, "production")
    forbidden = real_identifiers(portal_data)
    steps = TOUR_STEPS if script.endswith("demo_tour.py") else (None,)
    for step in steps:
        # A picked sponsor of the real warehouse is a value the page must refuse, not follow.
        state = {"tour:step": step} if step else {}
        app = run_page(Path(script).name, who, root, picked_sponsor="REAL1", state=state)
        assert not app.exception, (script, step, [e.value for e in app.exception])
        text = shown_text(app)
        assert text.strip(), (script, step)
        assert [name for name in forbidden if name in text] == [], (script, step)
