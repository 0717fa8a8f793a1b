"""A system of record on a real PostgreSQL server, read by URI as README says: typed columns
(a timestamp for updated_at), a full build, then nightly runs that see what changed, each
equal to a full build of the same database."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import psycopg
import pytest
from psycopg import sql

from etl.run import run_etl
from tests.etl import assert_as_a_full_build
from tests.postgres_support import Cluster
from tests.source_fixtures import Plant, base_plant
from warehouse.contract import BOOL, DATE, DATETIME, FLOAT, INT, STR, TABLES
from warehouse.layout import MANIFEST, QUARANTINE, current_snapshot

# As a CMO's database would type them.
_TYPES = {STR: "TEXT", INT: "BIGINT", FLOAT: "DOUBLE PRECISION", BOOL: "BOOLEAN", DATE: "DATE",
          DATETIME: "TIMESTAMP"}  # fmt: skip


def _load(connection: psycopg.Connection, plant: Plant) -> None:
    for table in TABLES:
        columns = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(_TYPES[c.type]))
            for c in table.columns
        )
        name = sql.Identifier(table.name)
        connection.execute(sql.SQL("CREATE TABLE {} ({})").format(name, columns))
        connection.execute(
            sql.SQL("CREATE INDEX ON {} (updated_at)").format(name)  # as the nightly run asks
        )
        for row in plant[table.name]:
            values = [
                None if row.get(c.name) is None else str(row[c.name]).lower()
                if c.type == BOOL else row[c.name]
                for c in table.columns
            ]  # fmt: skip
            connection.execute(
                sql.SQL("INSERT INTO {} VALUES ({})").format(
                    name, sql.SQL(", ").join(sql.Placeholder() * len(values))
                ),
                values,
            )


@pytest.mark.parametrize(
    ("change", "published"),
    [("UPDATE capa SET title = 'Fix tank (revised)', updated_at = '2026-01-21 09:00:00'", True),
     ("UPDATE capa SET title = 'Fix tank (revised)', updated_at = NULL", False)],
    ids=["a change stamped later", "a change without its stamp"],
)  # fmt: skip
def test_a_postgresql_source_runs_nightly_as_a_full_build_does(
    postgres: Cluster, tmp_path: Path, change: str, published: bool
) -> None:
    """Without its stamp the CAPA is quarantined, as a full build quarantines it: a nightly
    run asks for the rows without one too."""
    database = postgres.empty_database()
    url = postgres.url(database)
    with psycopg.connect(url, autocommit=True) as connection:
        _load(connection, base_plant())
    warehouse = tmp_path / "wh"
    first = run_etl(url, warehouse, full=True)
    assert sum(first.quarantined.values()) == 0, first.quarantined
    assert ":***@" in _source_named(warehouse)  # the password is not in the manifest
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(change)
    assert run_etl(url, warehouse).mode == "incremental"
    run_etl(url, tmp_path / "full", full=True)
    assert_as_a_full_build(warehouse, tmp_path / "full")
    capas = pl.read_parquet(current_snapshot(warehouse) / "capa" / "*" / "*.parquet")
    assert (capas.filter(pl.col("title") == "Fix tank (revised)").height > 0) == published
    quarantined = pl.read_parquet(current_snapshot(warehouse) / QUARANTINE / "capa.parquet")
    assert quarantined.height == (0 if published else 1)


def _source_named(warehouse: Path) -> str:
    return json.loads((current_snapshot(warehouse) / MANIFEST).read_text())["source"]
