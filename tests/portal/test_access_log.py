"""The access log is append-only and a sponsor reads only its own users' entries."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from portal import access_log, users
from portal.store import connect, utc_now
from portal.users import Principal
from tests.store_support import database_errors, engine

PRIYA = Principal("priya", "Priya", "sponsor_qa", "NWT", None, None)
BRUNO = Principal("bruno", "Bruno", "sponsor_qa", "CTB", None, None)


@pytest.fixture(autouse=True)
def data_root(store_engine, tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))


def window():
    now = utc_now()
    return now - timedelta(minutes=1), now + timedelta(minutes=1)


def test_record_writes_every_field():
    access_log.record(
        "EXPORT", PRIYA, page="capa", filters={"products": ["P1"], "days": 90},
        row_count=12, content_hash="ab12", detail="xlsx",
    )  # fmt: skip
    (entry,) = access_log.entries_for_sponsor("NWT", *window())
    assert entry["username"] == "priya" and entry["role"] == "sponsor_qa"
    assert entry["event"] == "EXPORT" and entry["page"] == "capa"
    assert json.loads(entry["filters_json"]) == {"days": 90, "products": ["P1"]}
    assert (entry["row_count"], entry["content_hash"], entry["detail"]) == (12, "ab12", "xlsx")


def test_an_entry_without_principal_names_the_typed_user():
    access_log.record("SIGN_IN_FAILED", None, username="mallory")
    (entry,) = access_log.entries_all(*window())
    assert entry["username"] == "mallory" and entry["sponsor_id"] is None


def test_unknown_events_are_refused():
    with pytest.raises(ValueError):
        access_log.record("READ_EVERYTHING", PRIYA)


def test_a_sponsor_sees_only_its_own_users():
    access_log.record("PAGE_VIEW", PRIYA, page="home")
    access_log.record("PAGE_VIEW", BRUNO, page="home")
    access_log.record("SIGN_IN_FAILED", None, username="someone")
    assert {e["username"] for e in access_log.entries_for_sponsor("NWT", *window())} == {"priya"}
    assert len(access_log.entries_all(*window())) == 3


@pytest.mark.parametrize(
    "statement",
    ["UPDATE access_log SET username = 'nobody'", "DELETE FROM access_log"],
)
def test_the_database_refuses_to_rewrite_history(statement):
    access_log.record("SIGN_IN", PRIYA)
    # The portal's own PostgreSQL role is not even granted the statement; its owner meets the
    # trigger (tests/portal/test_store_postgresql.py).
    refused = "append-only" if engine() == "sqlite" else "permission denied for table"
    with pytest.raises(database_errors(), match=refused), connect() as conn:
        conn.execute(statement)
    assert len(access_log.entries_all(*window())) == 1


def test_the_portal_db_uses_wal(store_engine):
    if store_engine != "sqlite":
        pytest.skip("a SQLite file's journal mode")
    access_log.record("SIGN_IN", PRIYA)
    with connect() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_page_reads_as_a_timeline_with_filters_and_exports_what_it_shows(demo_warehouse):
    from tests.download_capture import csv_rows, downloads, recording_media
    from tests.page_harness import principal, run_page

    carla = Principal("carla", "Carla", "cmo_quality", None, None, None)
    users.add_user("priya", "Priya", "sponsor_qa", "a-long-password-2026", sponsor_id="NWT")
    access_log.record("PAGE_VIEW", PRIYA, page="batch-list")
    access_log.record("EXPORT", PRIYA, page="batches", row_count=3, detail="csv")
    access_log.record("PAGE_VIEW", replace(carla, sponsor_id="NWT"), page="capa-aging")
    access_log.record("PAGE_VIEW", BRUNO, page="home")  # another sponsor's: never shown
    with recording_media() as made:
        app = run_page("access_log.py", principal("sponsor_qa", "NWT", username="priya"),
                       demo_warehouse)  # fmt: skip
        assert not app.exception
        shown = app.dataframe[0].value
        assert list(shown["event"]) == ["Viewed a page", "Exported", "Viewed a page"]
        assert list(shown["page"]) == ["CAPA aging", "Batches", "Batches"]  # titles, not paths
        assert "bruno" not in shown.to_csv(index=False)
        assert app.multiselect(key="access-log:who").options == ["carla", "priya"]
        assert not [m for m in app.multiselect if m.label == "Whose data"]  # one sponsor's log

        app.multiselect(key="access-log:who").set_value(["carla"]).run()
        assert list(app.dataframe[0].value["username"]) == ["carla"]
        (export,) = [d for d in downloads(app, made, "access-log") if d.key.endswith(":csv")]
        content = export.fetch().content
        rows = csv_rows(content)
    assert b"# exported_by: priya" in content  # stamped like every export
    assert rows["Username"].to_list() == ["carla"] and rows["Page"].to_list() == ["CAPA aging"]
    (logged,) = [e for e in access_log.entries_for_sponsor("NWT", *window())
                 if e["page"] == "access-log" and e["event"] == "EXPORT"]  # fmt: skip
    assert logged["row_count"] == 1 and json.loads(logged["filters_json"])["who"] == ["carla"]
