"""Property tests of the scoped read layer: hostile sponsor ids, filters and date ranges.

Whatever the input, a scope either refuses with a fixed message that names no path and no
sponsor, or returns only rows of its own sponsor.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.security.test_scope_attacks import SPONSORS, build_warehouse
from warehouse.filters import Filters
from warehouse.scope import QueryError, ScopeError, open_sponsor_scope

HOSTILE_IDS = st.one_of(
    st.text(max_size=40),
    st.sampled_from(SPONSORS).map(lambda s: s + "/"),
    st.sampled_from(SPONSORS).map(lambda s: "../" + s),
    st.sampled_from(
        ["S1*", "S1/../S10", "S1\x00", "S1'; --", "S1 OR 1=1", "sponsor_id=S10", "SITE"]
    ),
    st.sampled_from(SPONSORS),
)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("warehouse")
    build_warehouse(root)
    return root


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sponsor=HOSTILE_IDS)
def test_hostile_sponsor_id_is_refused_or_confined(root: Path, sponsor: str) -> None:
    try:
        scope = open_sponsor_scope(root, sponsor)
    except ScopeError as refused:
        assert str(refused) == "Unknown sponsor."
        return
    try:
        assert sponsor in SPONSORS
        owners = scope.frame("owners", "SELECT DISTINCT sponsor_id FROM batch")["sponsor_id"]
        assert owners.to_list() == [sponsor]
    finally:
        scope.close()


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sponsor=st.sampled_from(SPONSORS),
    products=st.lists(
        st.one_of(st.text(max_size=20), st.sampled_from(["S10-batch-1", "S1-batch-1"]))
    ),
    start=st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 1, 1)),
    end=st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 1, 1)),
)
def test_filter_values_never_widen_a_scope(
    root: Path, sponsor: str, products: list[str], start: date, end: date
) -> None:
    scope = open_sponsor_scope(root, sponsor)
    filters = Filters(start=start, end=end, products=tuple(products))
    sql = (
        "SELECT key, secret FROM batch WHERE (len($products::VARCHAR[]) = 0 "
        "OR list_contains($products::VARCHAR[], key)) AND $start <= $end"
    )
    try:
        rows = scope.frame("filtered batches", sql, filters.params())
    except QueryError as failed:
        assert "/" not in str(failed) and not any(s in str(failed) for s in SPONSORS)
        return
    finally:
        scope.close()
    assert all(secret == f"secret of {sponsor}" for secret in rows["secret"])
