"""The one export helper: exactly the rows shown, stamped, and refused once access has ended."""

from __future__ import annotations

import io
import re
import sqlite3
import zipfile
from datetime import date, datetime, timedelta

import polars as pl
import pytest

from portal import users
from portal.store import to_text, utc_now
from portal.widgets import (
    REFUSED_EXPORT,
    content_hash,
    deliver,
    export_csv,
    export_stamp,
    export_xlsx,
)
from warehouse import layout
from warehouse.filters import Filters

ROWS = pl.DataFrame(
    {
        "batch_number": ["AVE01-1", "AVE01-2"],
        "status": ["SPONSOR_RELEASED", "QC_TESTING"],
        "mfg_end": [datetime(2026, 11, 1, 8), None],
        "cycle_time_days": [12.5, None],
    }
)


@pytest.fixture
def auditor(tmp_path, monkeypatch) -> users.Principal:
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    now = utc_now()
    user = users.add_user(
        "ex-auditor", "Ex Auditor", "auditor", "auditor-password-1", sponsor_id="NWT",
        valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=1),
    )  # fmt: skip
    return user.principal()


def stamp_for(principal: users.Principal) -> dict[str, str]:
    filters = Filters(start=date(2026, 1, 1), end=date(2026, 11, 26))
    return export_stamp(ROWS, principal, "batches", filters, "NWT", "20261126T020000Z-abc123")


def test_csv_holds_exactly_the_rows_behind_its_stamp(auditor) -> None:
    stamp = stamp_for(auditor)
    data = export_csv(ROWS, stamp)
    text = data.decode()
    assert "# exported_by: ex-auditor" in text
    assert "# data_snapshot: 20261126T020000Z-abc123" in text
    assert f"# content_sha256: {content_hash(ROWS)}" in text
    assert "# auditor_access_valid_until: " in text
    back = pl.read_csv(io.BytesIO(data), comment_prefix="#", try_parse_dates=True)
    assert back.select("batch_number", "status").equals(ROWS.select("batch_number", "status"))
    assert back.height == ROWS.height


def test_xlsx_has_the_rows_and_an_about_sheet(auditor) -> None:
    book = zipfile.ZipFile(io.BytesIO(export_xlsx(ROWS, stamp_for(auditor))))
    workbook = book.read("xl/workbook.xml").decode()
    assert re.findall(r'<sheet name="([^"]+)"', workbook) == ["data", "about"]
    data_sheet = book.read("xl/worksheets/sheet1.xml").decode()
    assert data_sheet.count("<row ") == ROWS.height + 1  # header row + rows
    strings = book.read("xl/sharedStrings.xml").decode()
    assert "AVE01-2" in strings and "ex-auditor" in strings


def test_delivery_is_refused_once_the_window_has_ended(auditor) -> None:
    delivered = []
    export = deliver(auditor, lambda: b"rows", lambda: delivered.append("logged"))
    assert export() == b"rows" and delivered == ["logged"]
    with sqlite3.connect(layout.portal_db()) as store:
        store.execute(
            "UPDATE portal_user SET valid_until = ? WHERE username = 'ex-auditor'",
            (to_text(utc_now() - timedelta(seconds=1)),),
        )
    assert export() == REFUSED_EXPORT
    assert delivered == ["logged"]  # a refusal is not an export: nothing more is logged


def test_delivery_is_refused_for_a_disabled_user(auditor) -> None:
    delivered = []
    export = deliver(auditor, lambda: b"rows", lambda: delivered.append("logged"))
    users.disable_user("ex-auditor")
    assert export() == REFUSED_EXPORT and not delivered
