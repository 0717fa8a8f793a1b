"""portal.store itself, on both engines: one writer per subject, rows read by name and by
position, the store's SQL taken as written (qmark placeholders, a literal %)."""

from __future__ import annotations

import threading
import time

import pytest

from portal.store import begin_write, connect


@pytest.fixture(autouse=True)
def data_root(store_engine, tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))


def test_a_second_writer_of_a_subject_waits_for_the_first_to_commit():
    order: list[str] = []
    first_holds = threading.Event()

    def first() -> None:
        with connect() as conn:
            begin_write(conn, "decision")
            first_holds.set()
            time.sleep(0.3)  # room for the second to get in, were it not kept out
            conn.execute("INSERT INTO saved_view VALUES ('a', 'p', 'n', '{}', 't')")
            order.append("first commits")

    def second() -> None:
        first_holds.wait(timeout=10)
        with connect() as conn:
            begin_write(conn, "decision")
            (seen,) = conn.execute("SELECT count(*) FROM saved_view").fetchone()
            order.append(f"second writes, seeing {seen} row")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert order == ["first commits", "second writes, seeing 1 row"]


def test_rows_read_by_name_and_position_and_sql_taken_as_written():
    with connect() as conn:
        conn.execute(
            "INSERT INTO saved_view VALUES (?, ?, ?, ?, ?)", ("u", "p", "50% off?", "{}", "t")
        )
        row = conn.execute(
            "SELECT name, '100%' AS literal FROM saved_view WHERE name LIKE '50%'"
        ).fetchone()
    assert (row["name"], row[0], row["literal"], tuple(row)) == (
        "50% off?", "50% off?", "100%", ("50% off?", "100%"),
    )  # fmt: skip
    assert dict(row) == {"name": "50% off?", "literal": "100%"}
