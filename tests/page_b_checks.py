"""Shared steps of the part-B dashboard tests: render a page per sponsor, read its tables.

Expected values come from tests.page_checks.partition (plain DuckDB over the Parquet files),
never from the pages' own named queries.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from tests.page_checks import foreign_identifiers
from tests.page_harness import principal, run_page, shown_text
from warehouse import clock
from warehouse.scope import sponsor_ids

SPONSORS = ("NWT", "CTB")
# Wide enough to hold the demo plant's whole history, so counts equal whole partitions.
WIDE_START = date(2000, 1, 1)
ROLES = ("sponsor_qa", "auditor", "cmo_quality", "bd_demo")


def run_wide(
    script: str, page: str, who, warehouse: Path, products: tuple[str, ...] = ()
) -> AppTest:
    """Run a page with its period set to the whole history (and optionally some products)."""
    state = {f"{page}:range": (WIDE_START, clock.today()), f"{page}:products": list(products)}
    return run_page(script, who, warehouse, picked_sponsor=who.sponsor_id, state=state)


def render_per_sponsor(
    script: str, page: str, warehouse: Path, data_dir: Path
) -> dict[str, tuple[AppTest, str]]:
    """Each test sponsor's QA view of the page (whole history): the app and all it showed."""
    shown = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTAL_DATA_DIR", str(data_dir))
        for sponsor in SPONSORS:
            app = run_wide(script, page, principal("sponsor_qa", sponsor), warehouse)
            assert not app.exception, (sponsor, [e.value for e in app.exception])
            shown[sponsor] = (app, shown_text(app))
    return shown


def render_as(role: str, script: str, warehouse: Path) -> AppTest:
    """The page with default filters as `role` (CMO and demo roles pick the first sponsor)."""
    sponsor = SPONSORS[0] if role in ("sponsor_qa", "auditor") else None
    return run_page(script, principal(role, sponsor), warehouse, picked_sponsor=SPONSORS[0])


def table(app: AppTest, column: str) -> pl.DataFrame:
    """The first table shown that has `column` (empty frame when none is shown)."""
    for frame in app.dataframe:
        if column in frame.value.columns:
            return pl.from_pandas(frame.value)
    return pl.DataFrame({column: []}, schema={column: pl.String})


def leaked(warehouse: Path, sponsor: str, text: str) -> list[str]:
    """Other sponsors' names, batch numbers and product names found in `sponsor`'s page."""
    others = [s for s in sponsor_ids(warehouse) if s != sponsor]
    return sorted(
        name for other in others for name in foreign_identifiers(warehouse, sponsor, other)
        if name in text
    )  # fmt: skip


def anomalies(ground_truth: dict, *kinds: str) -> list[dict]:
    """Ground-truth anomalies of `kinds` that belong to a test sponsor."""
    return [
        a for a in ground_truth["anomalies"] if a["kind"] in kinds and a["sponsor_id"] in SPONSORS
    ]
