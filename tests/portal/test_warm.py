"""The cockpit's first view after a nightly run is computed before anyone asks (portal.warm):
the warmed memo is exactly what the page's first run needs, on the pages' own CMO scope, and a
new snapshot is warmed by the server's thread without a page being opened."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import streamlit as st

from etl.run import run_etl
from portal import context, warm
from tests.conftest import DemoPlant
from tests.page_harness import principal, run_page
from warehouse import clock
from warehouse.queries import cockpit
from warehouse.scope import Scope, snapshot_info


def _keys(scope: Scope) -> set:
    return set(scope._memo)


@pytest.fixture
def fresh_caches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path / "portal-data"))
    context._scope.clear()
    st.cache_data.clear()
    warm.warmed.clear()
    yield
    warm.stop()
    context._scope.clear()
    warm.warmed.clear()


WARMED_PAGES = ("cockpit.py", "compliance.py", "shared_equipment.py")


def test_the_warmer_computes_what_the_pages_first_views_read(
    demo_warehouse: Path, fresh_caches
) -> None:
    """Each page's first view on a fresh scope needs some of what the warmer computes, and
    the warmer computes nothing those first views do not (its defaults are the pages')."""
    info = snapshot_info(demo_warehouse)
    cmo = principal("cmo_quality")
    fresh = {}
    for page in WARMED_PAGES:
        context._scope.clear()
        app = run_page(page, cmo, demo_warehouse)
        assert not app.exception, [e.value for e in app.exception]
        fresh[page] = _keys(context.open_cached_scope(demo_warehouse, info.run_id, None))

    context._scope.clear()
    assert warm.warm(demo_warehouse) is True
    assert warm.warm(demo_warehouse) is False  # same snapshot, same day: nothing to do
    scope = context.open_cached_scope(demo_warehouse, info.run_id, None)
    warmed = _keys(scope)
    assert warmed <= set().union(*fresh.values())
    for page, needed in fresh.items():
        assert warmed & needed, f"nothing warmed for {page}"
    for page in WARMED_PAGES:  # the pages run on the warmed scope as before
        app = run_page(page, cmo, demo_warehouse)
        assert not app.exception, [e.value for e in app.exception]
    assert warmed <= _keys(scope)


def test_the_cockpit_s_default_view_is_warmed(demo_warehouse: Path, fresh_caches) -> None:
    warm.warm(demo_warehouse)
    scope = context.open_cached_scope(demo_warehouse, snapshot_info(demo_warehouse).run_id, None)
    today = clock.today()
    start, end = cockpit.default_period(today)
    assert ("cockpit", start, end, today, cockpit.DEFAULT_THRESHOLD) in _keys(scope)
    assert ("cockpit-inputs",) in _keys(scope)


def test_a_new_snapshot_is_warmed_by_the_server_s_thread(
    demo_plant: DemoPlant, tmp_path: Path, fresh_caches, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = Path(shutil.copy(demo_plant.path, tmp_path / "plant.sqlite"))
    warehouse = tmp_path / "warehouse"
    first = run_etl(source, warehouse, full=True)
    monkeypatch.setenv(warm.WARM_SECONDS_ENV, "0.2")
    warm.keep_warm(warehouse)
    warm.keep_warm(warehouse)  # once per root and process
    assert len(warm._watched) == 1
    _wait_for(lambda: warm.warmed.get(str(warehouse), ("",))[0] == first.run_id)

    second = run_etl(source, warehouse, full=True)  # the nightly run publishes a new snapshot
    assert second.run_id != first.run_id
    _wait_for(lambda: warm.warmed.get(str(warehouse), ("",))[0] == second.run_id)
    scope = context.open_cached_scope(warehouse, second.run_id, None)
    _wait_for(lambda: ("cockpit-inputs",) in scope._memo)
    assert scope.sponsor_id is None  # only the CMO scope is warmed


def test_warming_is_off_at_zero_seconds(
    demo_warehouse: Path, fresh_caches, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(warm.WARM_SECONDS_ENV, "0")
    warm.keep_warm(demo_warehouse)
    assert str(demo_warehouse) not in warm._watched


def _wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the warming thread did not warm the new snapshot"
        time.sleep(0.1)


def test_a_view_that_cannot_be_warmed_is_tried_once_per_snapshot(
    demo_warehouse: Path, tmp_path: Path, fresh_caches
) -> None:
    """A snapshot the warmer cannot read (a table's files gone) fails once, not every pass:
    the page then computes the view, and shows its own error, as it would unwarmed."""
    broken = tmp_path / "warehouse"
    shutil.copytree(demo_warehouse, broken, symlinks=True)
    live = snapshot_info(broken).path
    shutil.rmtree(live / "batch_event")
    with pytest.raises(Exception):  # noqa: B017 - whichever way the snapshot fails to read
        warm.warm(broken)
    assert warm.warm(broken) is False
