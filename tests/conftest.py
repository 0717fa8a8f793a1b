"""Session fixtures shared by every test: one generated demo plant and one full ETL run of it."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import NamedTuple

import pytest


class DemoPlant(NamedTuple):
    path: Path  # the generated SQLite system of record
    ground_truth: dict  # what the generator planted (<stem>.ground_truth.json)


@pytest.fixture(scope="session")
def demo_plant(tmp_path_factory: pytest.TempPathFactory) -> DemoPlant:
    """The demo preset plant, seed 7, with today as its as-of date."""
    generator = pytest.importorskip("etl.demo_source")
    if not hasattr(generator, "generate"):
        pytest.skip("etl.demo_source.generate is not available yet")
    path = tmp_path_factory.mktemp("demo-plant") / "plant.sqlite"
    generator.generate(path, seed=7, preset="demo", as_of=date.today())
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
