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
    failures: list[BaseException] = []
    first_holds, second_asks = threading.Event(), threading.Event()

    def first() -> None:
        with connect() as conn:
            begin_write(conn, "decision")
            first_holds.set()
            second_asks.wait(timeout=10)
            time.sleep(0.3)  # the second is asking for the lock now: it must not get it
            conn.execute("INSERT INTO saved_view VALUES ('a', 'p', 'n', '{}', 't')")
            order.append("first commits")

    def second() -> None:
        first_holds.wait(timeout=10)
        with connect() as conn:
            second_asks.set()
            begin_write(conn, "decision")
            (seen,) = conn.execute("SELECT count(*) FROM saved_view").fetchone()
            order.append(f"second writes, seeing {seen} row")

    def guarded(work):
        def run() -> None:
            try:
                work()
            except BaseException as failure:  # noqa: BLE001 -- reported by the test below
                failures.append(failure)

        return threading.Thread(target=run)

    threads = [guarded(first), guarded(second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not failures and not any(thread.is_alive() for thread in threads)
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
