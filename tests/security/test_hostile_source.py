"""Hostile source data through both the SQLite and the CSV source.

Every bad-input kind of tests/etl/test_etl_bad_input.py at once, then Hypothesis-generated batch
rows (hostile sponsor ids, foreign products, junk text and dates): the run never crashes;
every row is published in its own sponsor's partition or quarantined with a reason; per
table, extracted = valid + quarantined, and the published keys are exactly the valid ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl.run import run_etl
from tests.etl.test_etl_bad_input import CASES
from tests.source_fixtures import Plant, U, base_plant, write_csv, write_sqlite
from warehouse import layout
from warehouse.contract import TABLES

WRITERS = {"sqlite": lambda p, d: write_sqlite(p, d / "plant.sqlite"),
           "csv": lambda p, d: write_csv(p, d / "csv")}  # fmt: skip


def check_published_or_quarantined(snapshot: Path) -> dict:
    """The invariants of one run; returns its manifest."""
    manifest = json.loads((snapshot / layout.MANIFEST).read_text())
    for table in TABLES:
        counts = manifest["tables"][table.name]
        assert counts["extracted"] == counts["valid"] + counts["quarantined"], table.name
        quarantine = pl.read_parquet(snapshot / layout.QUARANTINE / f"{table.name}.parquet")
        assert quarantine.height == counts["quarantined"], table.name
        assert (quarantine["reason"].fill_null("").str.len_chars() > 0).all(), table.name
        published = pl.read_parquet(snapshot / table.name / "*/*.parquet", hive_partitioning=True)
        assert published[table.key].n_unique() == counts["valid"], table.name
        if "sponsor_id" in published.columns and table.route == "direct":
            # A directly routed row carries its sponsor; it lands in that partition only.
            source = pl.read_parquet(snapshot / layout.SOURCE_STATE / f"{table.name}.parquet")
            owner = dict(zip(source[table.key], source["sponsor_id"], strict=True))
            for key, partition in zip(published[table.key], published["sponsor_id"], strict=True):
                assert owner[key] == partition, (table.name, key)
        quarantined = set(quarantine["key"].cast(pl.String).to_list())
        assert not quarantined & set(published[table.key].cast(pl.String).to_list()), table.name
    return manifest


def every_bad_kind() -> Plant:
    plant = base_plant()
    for _, mutate, *_ in CASES:
        mutate(plant)
    return plant


@pytest.mark.parametrize("source", sorted(WRITERS))
def test_every_bad_kind_at_once(tmp_path: Path, source: str) -> None:
    result = run_etl(WRITERS[source](every_bad_kind(), tmp_path), tmp_path / "wh", full=True)
    manifest = check_published_or_quarantined(result.snapshot)
    # Cases share keys (several add a bad "B-BAD"), so every case's own row must be in
    # quarantine: each (table, key) the cases name, none missing.
    expected = {(table, key) for _, _, table, key, _ in CASES}
    quarantined = {
        (t.name, key)
        for t in TABLES
        if manifest["tables"][t.name]["quarantined"]
        for key in pl.read_parquet(result.snapshot / layout.QUARANTINE / f"{t.name}.parquet")
        .get_column("key").cast(pl.String).to_list()
    }  # fmt: skip
    assert expected <= quarantined, sorted(expected - quarantined)


TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=12)  # fmt: skip
SPONSOR = st.one_of(st.sampled_from(["ACME", "BETA", "GAMMA", "../BETA", "BETA/", "*", "SITE",
                                     "acme", "", " ACME", "BETA'--"]), TEXT)  # fmt: skip
DATETIME = st.one_of(st.sampled_from(["2026-01-10T08:00:00", "2026-02-30T08:00:00", "yesterday",
                                      "", "9999-12-31T23:59:59"]), TEXT)  # fmt: skip


@st.composite
def hostile_batches(draw) -> list[dict[str, object]]:
    template = base_plant()["batch"][0]
    rows = []
    for number in range(draw(st.integers(min_value=1, max_value=4))):
        rows.append({
            **template,
            "batch_id": draw(st.sampled_from([f"B-H{number}", "B-ACME-1", f"B-H{number}"])),
            "batch_number": draw(TEXT),
            "sponsor_id": draw(SPONSOR),
            "product_id": draw(st.sampled_from(["P-ACME", "P-BETA", "P-NONE", ""])),
            "mfg_end": draw(DATETIME),
            "units_produced": draw(st.one_of(st.integers(-5, 10**6).map(str), TEXT)),
            "updated_at": U,
        })  # fmt: skip
    return rows


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(rows=hostile_batches(), source=st.sampled_from(sorted(WRITERS)))
def test_generated_hostile_rows(tmp_path_factory, rows, source: str) -> None:
    folder = tmp_path_factory.mktemp("hostile")
    plant = base_plant()
    plant["batch"] += rows
    result = run_etl(WRITERS[source](plant, folder), folder / "wh", full=True)
    check_published_or_quarantined(result.snapshot)
    published = pl.read_parquet(result.snapshot / "batch" / "*/*.parquet", hive_partitioning=True)
    assert set(published["sponsor_id"]) <= {"ACME", "BETA"}
