"""What a browser's fetch of a download button's file returns, under AppTest, and reading the
files back (CSV, XLSX, audit-pack ZIP) as text and rows.

How Streamlit 1.67 serves a download (streamlit/elements/widgets/button.py, marshall_file;
runtime/media_file_manager.py; runtime/backend_operation_handler.py): a callable `data` is
registered with the runtime's MediaFileManager (`add_deferred`) and only its placeholder id
(`deferred_file_id`) goes to the browser; when the browser asks for the file, the server runs
`execute_deferred(id)` -- the callable, with no rerun and no sign-in check of its own -- and
serves the result under /media/. Bytes given as `data` are stored at once and their /media/
URL sits in the button's proto (`url`).

AppTest builds a real MediaFileManager for each run (a fresh one per run, dropped from the
runtime afterwards). There is no public hook to reach it, so `recording_media` swaps the class
AppTest instantiates for a subclass that only remembers each instance: the manager, its
deferred callables and its storage are Streamlit's own and behave as on a server. A test then
fetches a button's file through the same `execute_deferred` / storage calls the server makes,
at any later moment (a stale button on a screen).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from xml.etree import ElementTree

import polars as pl
import pypdf
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import app_test
from streamlit.testing.v1.app_test import AppTest

from warehouse import clock
from warehouse.filters import Filters
from warehouse.queries.batch_record import (
    batch_choices,
    batch_record,
    exception_table,
    review_by_exception,
)
from warehouse.scope import open_sponsor_scope

RECORD_KEY = "batch_record:batch_id"  # the batch the batch-record page opens on


@contextmanager
def recording_media() -> Iterator[list[MediaFileManager]]:
    """While open, every AppTest run's MediaFileManager is appended to the yielded list."""
    made: list[MediaFileManager] = []

    class Recording(MediaFileManager):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(app_test, "MediaFileManager", Recording)
        yield made


@dataclass(frozen=True)
class Fetched:
    content: bytes
    mimetype: str
    filename: str | None  # the name the browser saves it under


@dataclass(frozen=True)
class Download:
    """One download button as a run rendered it, and the manager of that run."""

    page: str
    key: str
    label: str
    manager: MediaFileManager
    deferred_file_id: str | None
    url: str

    def fetch(self) -> Fetched:
        """What the browser receives when it asks for this button's file now."""
        if self.deferred_file_id is not None:
            url = self.manager.execute_deferred(self.deferred_file_id)  # the server's call
        else:
            url = self.url
        stored = self.manager.read_file(url.rsplit("/", 1)[-1])
        assert stored is not None, f"{self.page}/{self.key}: no file behind {url}"
        return Fetched(stored.content, stored.mimetype, stored.filename)


def downloads(at: AppTest, made: list[MediaFileManager], page: str) -> list[Download]:
    """Every download button of the run that produced `at` (its manager is the last made)."""
    assert made, "recording_media() is not active"
    found = []
    for button in at.download_button:
        proto = button.proto
        deferred = proto.deferred_file_id if proto.HasField("deferred_file_id") else None
        found.append(Download(page, button.key or button.id, button.label, made[-1], deferred,
                              proto.url))  # fmt: skip
    return found


def batch_with_exceptions(warehouse: Path, sponsor: str, *, required: bool = True) -> str:
    """A batch of `sponsor` whose record has review-by-exception rows: the batch-record page
    exports that table, which is empty for a clean batch (only picks the batch to open).
    Unless `required`, a sponsor whose records are all clean (the demo plant's excellent
    sponsor) gives its newest batch, whose export is the empty table."""
    scope = open_sponsor_scope(warehouse, sponsor)
    try:
        filters = Filters(start=date(2000, 1, 1), end=clock.today() + timedelta(days=365))
        choices = batch_choices(scope, filters)["batch_id"]
        for batch_id in choices:
            if exception_table(review_by_exception(batch_record(scope, batch_id))).height:
                return batch_id
    finally:
        scope.close()
    if not required and len(choices):
        return choices[0]
    raise AssertionError(f"no batch of {sponsor} has a data-integrity exception")


# --- reading files back --------------------------------------------------------------------


def kind(fetched: Fetched) -> str:
    """csv, xlsx or zip, from the bytes themselves (a refusal is plain text: csv)."""
    if fetched.content.startswith(b"PK"):
        with zipfile.ZipFile(io.BytesIO(fetched.content)) as archive:
            return "xlsx" if "xl/workbook.xml" in archive.namelist() else "zip"
    return "csv"


def csv_rows(content: bytes) -> pl.DataFrame:
    """An export CSV's rows, behind its '# field: value' stamp lines."""
    return pl.read_csv(io.BytesIO(content), comment_prefix="#", infer_schema=False)


def xlsx_sheets(content: bytes) -> dict[str, list[list[str]]]:
    """An XLSX workbook's sheets as rows of cell texts (stdlib only: no XLSX reader is a
    dependency of the project; xlsxwriter writes shared strings and numeric values)."""
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    rel_ns = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
    with zipfile.ZipFile(io.BytesIO(content)) as book:
        shared = []
        if "xl/sharedStrings.xml" in book.namelist():
            root = ElementTree.fromstring(book.read("xl/sharedStrings.xml"))
            shared = ["".join(t.text or "" for t in si.iter(f"{{{ns['m']}}}t"))
                      for si in root.findall("m:si", ns)]  # fmt: skip
        rels = ElementTree.fromstring(book.read("xl/_rels/workbook.xml.rels"))
        targets = {r.get("Id"): r.get("Target") for r in rels}
        workbook = ElementTree.fromstring(book.read("xl/workbook.xml"))
        sheets = {}
        for sheet in workbook.find("m:sheets", ns):
            target = targets[sheet.get(rel_ns)].lstrip("/")
            path = target if target.startswith("xl/") else f"xl/{target}"
            rows = []
            for row in ElementTree.fromstring(book.read(path)).iter(f"{{{ns['m']}}}row"):
                cells = []
                for cell in row.findall("m:c", ns):
                    value = cell.find("m:v", ns)
                    text = "" if value is None else value.text or ""
                    if cell.get("t") == "s":
                        text = shared[int(text)]
                    elif cell.get("t") == "inlineStr":
                        text = "".join(t.text or "" for t in cell.iter(f"{{{ns['m']}}}t"))
                    cells.append(text)
                rows.append(cells)
            sheets[sheet.get("name")] = rows
    return sheets


def pack_files(content: bytes) -> dict[str, str]:
    """Every file of an audit-pack ZIP as text: the PDF's extracted text, CSV and manifest
    as they are, Parquet read back and written as CSV."""
    texts = {}
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        for name in archive.namelist():
            body = archive.read(name)
            if name.endswith(".pdf"):
                reader = pypdf.PdfReader(io.BytesIO(body))
                texts[name] = "\n".join(page.extract_text() for page in reader.pages)
            elif name.endswith(".parquet"):
                texts[name] = pl.read_parquet(io.BytesIO(body)).write_csv()
            else:
                texts[name] = body.decode()
    return texts


def pack_rows(content: bytes) -> int:
    """Data rows in an audit pack's section CSVs."""
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        return sum(
            csv_rows(archive.read(path)).height
            for section in manifest["sections"]
            for path in section["files"]
            if path.endswith(".csv")
        )


def data_rows(fetched: Fetched) -> int:
    """How many rows of data the file holds (stamp and header lines are not rows)."""
    what = kind(fetched)
    if what == "zip":
        return pack_rows(fetched.content)
    if what == "xlsx":
        return max(len(xlsx_sheets(fetched.content).get("data", [])) - 1, 0)
    text = fetched.content.decode(errors="replace")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return max(len(lines) - 1, 0)  # the first is the header


def as_text(fetched: Fetched) -> str:
    """Everything the file says, as text (for identifier checks)."""
    what = kind(fetched)
    if what == "zip":
        return "\n".join(pack_files(fetched.content).values())
    if what == "xlsx":
        sheets = xlsx_sheets(fetched.content)
        return "\n".join("\t".join(row) for rows in sheets.values() for row in rows)
    return fetched.content.decode(errors="replace")


def stamp_free(text: str) -> str:
    """An export's text without its '# field: value' stamp lines (which name the sponsor)."""
    return "\n".join(line for line in text.splitlines() if not re.match(r"# \w+: ", line))
