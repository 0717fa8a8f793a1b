"""Every file a sponsor can take away names only that sponsor, by the source-derived oracle.

For each demo sponsor: its audit pack built through the portal (the Audit pack page under
AppTest, fetched through its download button) and through `python -m portal auditpack`,
over a period wider than the plant's history; and every CSV and XLSX export of every sponsor
dashboard, fetched through the pages' own download buttons as the sponsor's QA user. No file
may hold an identifier tests/ownership.py says the sponsor may not see (whole words, as
tests/browser_support.leaks matches); each must hold some of its own (positive control).

Files are read back as a recipient would: PDF text with pypdf, CSV and manifest as text,
Parquet with polars, XLSX cell by cell with the standard library (the project has no XLSX
reader: openpyxl is not installed and polars.read_excel has no engine here).
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import NamedTuple

import pytest

from portal import users
from portal.navigation import pages_for
from portal.widgets import REFUSED_EXPORT
from tests.browser_support import SPONSORS, leaks
from tests.download_capture import (
    RECORD_KEY,
    Fetched,
    as_text,
    batch_with_exceptions,
    csv_rows,
    data_rows,
    downloads,
    pack_files,
    recording_media,
    stamp_free,
    xlsx_sheets,
)
from tests.ownership import Ownership, ownership
from tests.page_harness import ROOT, run_page
from warehouse import clock

START = date(2000, 1, 1)
PACK_SCRIPT = "pages/sponsor/audit_pack.py"
ALWAYS_EXPORT = {"batch-list", "batch-record", "capa-aging", "change-control", "training-status",
                 "equipment-suppliers", "tech-transfer", "qa-agreement-compliance"}  # fmt: skip
# What a sponsor's own files must show of it, at the least (positive control).
OWN_KINDS = ("sponsor id", "product name", "batch number")


def period() -> tuple[date, date]:
    """Wider than the plant's whole history: from 2000 to a year after the suite's day."""
    return START, clock.today() + timedelta(days=365)


def page_period() -> tuple[date, date]:
    """The widest period a page's date widget keeps: Streamlit bounds st.date_input to ten
    years either side of its default value and puts a value set outside back to the default
    on the next run. It still starts years before the demo plant's first record."""
    return date(clock.today().year - 10, 1, 1), period()[1]


class Files(NamedTuple):
    """One take-away: its files as text, by name."""

    name: str
    texts: dict[str, str]
    content: bytes


@pytest.fixture(scope="module")
def oracle(demo_plant) -> Ownership:
    return ownership(demo_plant.path)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Iterator[Path]:
    """A portal data root (user registry, access log) for the pages and the command."""
    root = tmp_path_factory.mktemp("packs-oracle-data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTAL_DATA_DIR", str(root))
        for sponsor in SPONSORS:
            users.add_user(f"qa-{sponsor.lower()}", f"QA {sponsor}", "sponsor_qa",
                           "sponsor-password-1", sponsor_id=sponsor)  # fmt: skip
        yield root


@pytest.fixture(scope="module", params=SPONSORS)
def sponsor(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def cli_run(sponsor: str, demo_warehouse: Path, data_root: Path) -> Iterator[tuple]:
    """`python -m portal auditpack` for the sponsor over the whole period, started in the
    background (the pages run meanwhile)."""
    start, end = period()
    out = data_root / f"cli-{sponsor}.zip"
    process = subprocess.Popen(
        [sys.executable, "-m", "portal", "auditpack", "--warehouse", str(demo_warehouse),
         "--sponsor", sponsor, "--from", start.isoformat(), "--to", end.isoformat(),
         "--recipient", "Ida Inspector", "--out", str(out), "--generated-by", "oracle.test"],
        cwd=ROOT, env={**os.environ, "PORTAL_DATA_DIR": str(data_root)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        yield process, out
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=60)


@pytest.fixture(scope="module")
def cli_pack(sponsor: str, cli_run) -> Files:
    """The sponsor's pack as the command wrote it."""
    process, out = cli_run
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-2000:]
    content = out.read_bytes()
    return Files(f"CLI pack {sponsor}", pack_files(content), content)


@pytest.fixture(scope="module")
def sponsor_exports(sponsor: str, demo_warehouse: Path, data_root: Path, cli_run):
    """What the sponsor's QA user fetches from every download button of every sponsor page:
    (the Audit pack page's pack, [every dashboard export])."""
    who = users.get_user(f"qa-{sponsor.lower()}").principal()
    pack, exports = None, []
    with recording_media() as made:
        for spec in pages_for("sponsor_qa"):
            source = (ROOT / spec.script).read_text()
            if "export_buttons(" not in source and "download_button(" not in source:
                continue
            state = {f"{name}:range": page_period() for name in re.findall(
                r'dashboard_filters\(\s*scope,\s*"([^"]+)"', source)}  # fmt: skip
            if spec.script == PACK_SCRIPT:
                state["pack:range"] = page_period()
            if Path(spec.script).stem == "batch_record":  # opens on a batch with exceptions
                state[RECORD_KEY] = batch_with_exceptions(
                    demo_warehouse,
                    sponsor,
                    required=sponsor != "WGT",  # clean: the story's
                )
            at = run_page(spec.script, who, demo_warehouse, state=state, timeout=300)
            assert not at.exception, (spec.script, [e.value for e in at.exception])
            if spec.script == PACK_SCRIPT:
                at = at.button(key="pack:generate").click().run(timeout=300)
                assert not at.exception, [e.value for e in at.exception]
                (button,) = downloads(at, made, spec.url_path)
                fetched = button.fetch()
                pack = Files(f"page pack {sponsor}", pack_files(fetched.content),
                             fetched.content)  # fmt: skip
                continue
            for button in downloads(at, made, spec.url_path):
                exports.append((f"{spec.url_path}/{button.key}", button.fetch()))
    assert pack is not None, "the Audit pack page gave no pack"
    return pack, exports


def _check_pack(pack: Files, sponsor: str, oracle: Ownership) -> None:
    foreign = oracle.foreign(sponsor)
    assert foreign, "the oracle knows no other sponsor"
    leaked = {name: found for name, text in pack.texts.items() if (found := leaks(text, foreign))}
    assert not leaked, {name: found[:5] for name, found in leaked.items()}
    # Positive control: the pack is about this sponsor, and the matcher finds its names.
    own = leaks("\n".join(pack.texts.values()), oracle.own(sponsor))
    for kind in OWN_KINDS:
        assert set(own) & oracle.own(sponsor, kind), (pack.name, kind)
    pdf = pack.texts["report.pdf"]
    assert leaks(pdf, oracle.own(sponsor, "sponsor name")), "the cover names no sponsor"
    assert leaks(pdf, oracle.own(sponsor, "batch number")), "the report lists no own batch"
    manifest = json.loads(pack.texts["manifest.json"])
    assert manifest["parameters"]["sponsor_id"] == sponsor
    with zipfile.ZipFile(io.BytesIO(pack.content)) as archive:
        assert len(pack.texts) == len(archive.namelist())
    assert data_rows(Fetched(pack.content, "application/zip", None)) > 0


def test_portal_pack_names_only_its_sponsor(sponsor, sponsor_exports, oracle) -> None:
    _check_pack(sponsor_exports[0], sponsor, oracle)


def test_cli_pack_names_only_its_sponsor(sponsor, cli_pack, oracle) -> None:
    _check_pack(cli_pack, sponsor, oracle)


def test_portal_and_cli_packs_hold_the_same_data(sponsor, cli_pack, sponsor_exports) -> None:
    """Both periods cover the whole history: the same data files, byte for byte."""
    page = json.loads(sponsor_exports[0].texts["manifest.json"])
    cli = json.loads(cli_pack.texts["manifest.json"])
    assert (page["parameters"]["from"], cli["parameters"]["from"]) == (
        page_period()[0].isoformat(), period()[0].isoformat())  # fmt: skip
    data = lambda m: {p: f["sha256"] for p, f in m["files"].items() if "/" in p}  # noqa: E731
    assert data(page) and data(page) == data(cli)


def test_every_export_names_only_its_sponsor(sponsor, sponsor_exports, oracle) -> None:
    _, exports = sponsor_exports
    # Pages that export whatever the data (others only when they have rows to show).
    drew = {name.split("/")[0] for name, _ in exports}
    assert drew >= ALWAYS_EXPORT, ALWAYS_EXPORT - drew
    foreign = oracle.foreign(sponsor)
    refused = [name for name, f in exports if f.content == REFUSED_EXPORT]
    assert not refused, refused
    leaked = {name: found for name, f in exports if (found := leaks(as_text(f), foreign))}
    assert not leaked, {name: found[:5] for name, found in leaked.items()}
    # Positive control, on the rows alone (the stamp lines name the sponsor anyway).
    rows_text = "\n".join(stamp_free(_rows_text(f)) for _, f in exports)
    own = set(leaks(rows_text, oracle.own(sponsor)))
    for kind in ("product name", "batch number"):
        assert own & oracle.own(sponsor, kind), kind
    assert sum(data_rows(f) for _, f in exports) > 0


def test_each_csv_and_its_xlsx_hold_the_same_rows(sponsor, sponsor_exports) -> None:
    """The reader is sound: an export's CSV and XLSX read back to the same number of rows."""
    _, exports = sponsor_exports
    by_name = dict(exports)
    pairs = [(n, n.removesuffix(":csv") + ":xlsx") for n in by_name if n.endswith(":csv")]
    assert pairs
    for csv_name, xlsx_name in pairs:
        csv_height = csv_rows(by_name[csv_name].content).height
        assert csv_height == data_rows(by_name[xlsx_name]), csv_name


def _rows_text(fetched: Fetched) -> str:
    """An export's data rows as text, without its stamp (CSV) or its 'about' sheet (XLSX)."""
    if fetched.content.startswith(b"PK"):
        rows = xlsx_sheets(fetched.content)["data"]
        return "\n".join("\t".join(row) for row in rows)
    return fetched.content.decode()
