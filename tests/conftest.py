"""Session fixtures shared by every test: one generated demo plant and one full ETL run of it.

No test reads the wall clock's date. The suite's day is AS_OF: PORTAL_TODAY when it is set
(to run the suite as of another day), else a fixed day. It is set in the environment here,
before any test runs, so that `warehouse.clock.today()` - in this process and in every portal
or command a test starts - and every plant built by a test agree on it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import NamedTuple

import pytest

from portal import decisions, store, users
from portal.store import DATABASE_URL_ENV
from tests.postgres_support import APP_ROLE, Cluster, running_cluster
from warehouse import layout
from warehouse.clock import TODAY_ENV

STORE_ENGINES = ("sqlite", "postgresql")

AS_OF = date.fromisoformat(os.environ.get(TODAY_ENV) or "2026-11-26")
os.environ[TODAY_ENV] = AS_OF.isoformat()
# The portal's warming thread (portal.warm) stays off: each test's warehouse would get one,
# computing beside the tests. tests/portal/test_warm.py turns it on where it is under test.
os.environ["PORTAL_WARM_SECONDS"] = "0"


class DemoPlant(NamedTuple):
    path: Path  # the generated SQLite system of record
    ground_truth: dict  # what the generator planted (<stem>.ground_truth.json)


@pytest.fixture(scope="session")
def demo_plant(tmp_path_factory: pytest.TempPathFactory) -> DemoPlant:
    """The demo preset plant, seed 7, ending at the suite's day AS_OF."""
    generator = pytest.importorskip("etl.demo_source")
    if not hasattr(generator, "generate"):
        pytest.skip("etl.demo_source.generate is not available yet")
    path = tmp_path_factory.mktemp("demo-plant") / "plant.sqlite"
    generator.generate(path, seed=7, preset="demo", as_of=AS_OF)
    truth_path = path.with_name(f"{path.stem}.ground_truth.json")
    truth = json.loads(truth_path.read_text()) if truth_path.is_file() else {}
    return DemoPlant(path, truth)


@pytest.fixture(scope="session")
def demo_warehouse(demo_plant: DemoPlant, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse holding one full ETL run of the demo plant (`current` points at it)."""
    from etl.run import run_etl

    warehouse = tmp_path_factory.mktemp("demo-warehouse")
    run_etl(demo_plant.path, warehouse, full=True)
    return warehouse


@pytest.fixture(scope="session")
def demo_data_root(tmp_path_factory, demo_warehouse: Path) -> Path:
    """A data root with the demo users and a copy of the published demo warehouse, for the
    real app (portal_app.py) under AppTest."""
    root = tmp_path_factory.mktemp("app-data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTAL_DATA_DIR", str(root))
        users.ensure_demo_users()
        decisions.ensure_demo_signers()
        shutil.copytree(demo_warehouse, layout.demo_warehouse(), symlinks=True)
    return root


@pytest.fixture
def portal(demo_data_root: Path, monkeypatch) -> Path:
    """The environment portal_app.py reads, on demo_data_root; its demo warehouse."""
    monkeypatch.setenv("PORTAL_DATA_DIR", str(demo_data_root))
    monkeypatch.setenv("PORTAL_BOOTSTRAP", "off")
    for name in ("PORTAL_MODE", "PORTAL_COOKIE_KEY", "PORTAL_IDLE_MINUTES"):
        monkeypatch.delenv(name, raising=False)
    return demo_data_root / "demo" / "warehouse"


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """A real PostgreSQL 15 cluster for the whole run, with the portal's role and a migrated
    template database (tests/postgres_support.py)."""
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture(params=STORE_ENGINES)
def store_engine(request: pytest.FixtureRequest, monkeypatch) -> str:
    """Runs the test once on each engine of the portal store: the embedded SQLite file, and a
    fresh PostgreSQL database signed into as the portal's own role (PORTAL_DATABASE_URL)."""
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    if request.param == "postgresql":
        cluster: Cluster = request.getfixturevalue("postgres")
        demo_users = "demo_users_store" in request.fixturenames
        database = cluster.fresh_database(demo_users=demo_users)
        monkeypatch.setenv(DATABASE_URL_ENV, cluster.url(database, APP_ROLE))
        request.addfinalizer(store.close)  # this database's pooled connections
    return request.param


@pytest.fixture(scope="session")
def demo_users_store(tmp_path_factory) -> Path:
    """A portal store holding the demo users, made once: bcrypt-hashing ten passwords costs
    seconds, so each test that needs its own store starts from a copy (fresh_store)."""
    root = tmp_path_factory.mktemp("demo-users-store")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTAL_DATA_DIR", str(root))
        users.ensure_demo_users()
        path = layout.portal_db()
    assert not path.with_name(f"{path.name}-wal").exists()  # checkpointed: the file is whole
    return path


@pytest.fixture
def fresh_store(tmp_path: Path, monkeypatch, demo_users_store: Path) -> Path:
    """A data root of this test's own (PORTAL_DATA_DIR) with a copy of demo_users_store and
    the lockout at its defaults."""
    root = tmp_path / "data"
    root.mkdir()
    # On PostgreSQL (store_engine), the test's database is already a copy with the demo users.
    shutil.copyfile(demo_users_store, root / demo_users_store.name)
    monkeypatch.setenv("PORTAL_DATA_DIR", str(root))
    for name in ("PORTAL_LOCKOUT_FAILURES", "PORTAL_LOCKOUT_WINDOW_MINUTES",
                 "PORTAL_LOCKOUT_MINUTES"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    assert users.ensure_demo_users() == []  # every demo user is already there
    return root
