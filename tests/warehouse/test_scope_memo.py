"""The scope's memo: remembered query results and charts stay inside their sponsor's scope.

A memo is another cache, so it is attacked like one: the same query through two sponsors'
scopes, a caller changing a returned frame in place, a failing query, an oversized result,
and two charts of the same name over different data.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from portal.widgets import fingerprint
from tests.security.test_scope_attacks import build_warehouse
from warehouse import scope as scope_module
from warehouse.scope import QueryError, open_sponsor_scope

SECRETS = "SELECT key, secret, sponsor_id FROM batch"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("warehouse")
    build_warehouse(root)
    return root


@pytest.fixture
def scopes(root: Path):
    opened = {sponsor: open_sponsor_scope(root, sponsor) for sponsor in ("S1", "S10")}
    yield opened
    for scope in opened.values():
        scope.close()


def test_the_same_query_through_two_scopes_answers_each_with_its_own_rows(scopes) -> None:
    for _ in range(3):  # warm, then from the memo
        for sponsor, scope in scopes.items():
            rows = scope.frame("batch", SECRETS).rows()
            assert rows == [(f"{sponsor}-batch-1", f"secret of {sponsor}", sponsor)]


def test_a_remembered_result_is_served_without_running_the_query_again(scopes) -> None:
    scope = scopes["S1"]
    first = scope.frame("batch", SECRETS)
    # A fresh cursor would be needed to run it again; a remembered result needs none.
    scope._local.cursor = None  # noqa: SLF001 - proving the memo answered
    scope._cursor = lambda: pytest.fail("the query ran again")  # noqa: SLF001
    assert scope.frame("batch", SECRETS).equals(first)


def test_params_are_part_of_the_key(scopes) -> None:
    scope = scopes["S1"]
    query = "SELECT count(*) AS n FROM batch WHERE key = $key"
    assert scope.frame("count", query, {"key": "S1-batch-1"})["n"].item() == 1
    assert scope.frame("count", query, {"key": "nothing"})["n"].item() == 0
    listed = "SELECT count(*) AS n FROM batch WHERE list_contains($keys, key)"
    assert scope.frame("list", listed, {"keys": ["S1-batch-1"]})["n"].item() == 1
    assert scope.frame("list", listed, {"keys": ["other"]})["n"].item() == 0


def test_changing_a_returned_frame_in_place_does_not_change_the_memo(scopes) -> None:
    scope = scopes["S1"]
    taken = scope.frame("batch", SECRETS)
    taken.drop_in_place("secret")
    taken.insert_column(0, pl.Series("planted", ["x"]))
    again = scope.frame("batch", SECRETS)
    assert again.columns == ["key", "secret", "sponsor_id"]
    assert again["secret"].to_list() == ["secret of S1"]


def test_a_failing_query_is_not_remembered(scopes) -> None:
    scope = scopes["S1"]
    for _ in range(2):
        with pytest.raises(QueryError, match="query 'bad' failed"):
            scope.frame("bad", "SELECT * FROM no_such_table")


def test_a_result_over_the_entry_budget_is_not_kept(scopes, monkeypatch) -> None:
    scope = scopes["S1"]
    monkeypatch.setattr(scope_module, "MEMO_ENTRY_BYTES", 0)
    calls = []
    build = lambda: calls.append(1) or pl.DataFrame({"a": [1, 2, 3]})  # noqa: E731
    for _ in range(2):
        scope.memo("big", build, size=pl.DataFrame.estimated_size)
    assert len(calls) == 2


def test_the_memo_drops_its_oldest_entries_past_its_budget(scopes, monkeypatch) -> None:
    scope = scopes["S1"]
    monkeypatch.setattr(scope_module, "MEMO_ENTRIES", 2)
    calls: list[str] = []
    for key in ("a", "b", "c", "a"):
        scope.memo(("test", key), lambda key=key: calls.append(key) or key)
    assert calls == ["a", "b", "c", "a"]  # "a" was the oldest when "c" came in


def test_chart_data_fingerprint_sees_order_values_and_schema() -> None:
    frame = pl.DataFrame({"status": ["OPEN", "CLOSED"], "n": [2, 1]})
    assert fingerprint(frame) == fingerprint(frame.clone())
    assert fingerprint(frame) != fingerprint(frame.reverse())
    assert fingerprint(frame) != fingerprint(frame.with_columns(pl.col("n") + 1))
    assert fingerprint(frame) != fingerprint(frame.rename({"n": "count"}))
    assert fingerprint(frame.clear()) != fingerprint(frame.clear().rename({"n": "count"}))
