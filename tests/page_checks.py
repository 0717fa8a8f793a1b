"""Ground truth for the part-A page tests, read straight from the published partitions.

Deliberately plain DuckDB over the Parquet files, not the pages' named queries: a test that
reused the page's own SQL could not catch that SQL leaking or dropping rows.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
from streamlit.testing.v1 import AppTest

from portal.users import Principal
from tests.page_harness import run_page


def partition(warehouse: Path, table: str, sponsor_id: str) -> pl.DataFrame:
    """Every row of one sponsor's partition of `table` in the current snapshot."""
    files = warehouse / "current" / table / f"sponsor_id={sponsor_id}" / "*.parquet"
    return duckdb.sql(f"SELECT * FROM read_parquet('{files}')").pl()


def identifiers(warehouse: Path, sponsor_id: str) -> set[str]:
    """What names a sponsor: its name, its batch numbers and its product names."""
    # sponsor, product and batch are routed `direct`: a partition holds only its own rows.
    names = partition(warehouse, "sponsor", sponsor_id)["name"]
    batches = partition(warehouse, "batch", sponsor_id)["batch_number"]
    products = partition(warehouse, "product", sponsor_id)["name"]
    return {*names, *batches, *products}


def foreign_identifiers(warehouse: Path, sponsor_id: str, other: str) -> set[str]:
    """`other`'s identifiers that cannot occur in `sponsor_id`'s own text by coincidence."""
    own = identifiers(warehouse, sponsor_id)
    return {name for name in identifiers(warehouse, other) if not any(name in mine for mine in own)}


def run_with_query(
    script: str, who: Principal, warehouse: Path, *, state: dict, query: dict
) -> AppTest:
    """Like page_harness.run_page, with URL query parameters (a hand-made link)."""
    return run_page(script, who, warehouse, state=state, query=query)
