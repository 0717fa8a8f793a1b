"""Audit pack: confinement of every file, watermark on every page, manifest hashes, a stable
content hash, and every ground-truth anomaly of the sponsor, products and period in the pack.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import polars as pl
import pypdf
import pytest

from etl.demo_source.anomalies import EVENT_KINDS
from tests.page_checks import foreign_identifiers, partition
from warehouse import clock
from warehouse.auditpack import PackError, PackRequest, build_pack, generate_pack
from warehouse.scope import open_cmo_scope, open_sponsor_scope, sponsor_ids

GENERATED_AT = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


class OpenedPack(NamedTuple):
    sponsor: str
    content_hash: str
    manifest: dict
    files: dict[str, bytes]  # every entry of the ZIP by path
    pages: list[str]  # the PDF's extracted text, page by page

    def frame(self, key: str) -> pl.DataFrame:
        """A section's data as read back from its Parquet file."""
        section = next(s for s in self.manifest["sections"] if s["key"] == key)
        return pl.read_parquet(io.BytesIO(self.files[section["files"][1]]))


def _open(pack) -> OpenedPack:
    with zipfile.ZipFile(io.BytesIO(pack.zip_bytes)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    reader = pypdf.PdfReader(io.BytesIO(files["report.pdf"]))
    pages = [page.extract_text() for page in reader.pages]
    manifest = json.loads(files["manifest.json"])
    return OpenedPack(manifest["parameters"]["sponsor_id"], pack.content_hash, manifest, files,
                      pages)  # fmt: skip


def _as_of(warehouse: Path) -> date:
    """The day the demo plant's data ends (the suite's day), not the day the snapshot was
    written: with the wall clock a year on, the snapshot's last year holds no batch."""
    return clock.today()


@pytest.fixture(scope="session")
def pair(demo_warehouse: Path, demo_plant) -> tuple[str, str]:
    """Two sponsors whose batches ran on the same equipment (A, B); A has the most kinds of
    ground-truth anomaly."""
    used = {
        s: set(partition(demo_warehouse, "equipment_usage", s)["equipment_id"])
        for s in sponsor_ids(demo_warehouse)
    }
    kinds = Counter(
        a["sponsor_id"] for a in {(a["sponsor_id"], a["kind"]): a
                                  for a in demo_plant.ground_truth["anomalies"]}.values()
    )  # fmt: skip
    ranked = sorted(used, key=lambda s: (-kinds[s], s))
    return next((a, b) for a in ranked for b in sorted(used) if a != b and used[a] & used[b])


@pytest.fixture(scope="session")
def full_pack(demo_warehouse: Path, pair) -> OpenedPack:
    """Sponsor A's pack over its whole history, every product."""
    request = PackRequest(pair[0], date(2000, 1, 1), _as_of(demo_warehouse), "Ida Inspector",
                          "test suite")  # fmt: skip
    return _open(generate_pack(demo_warehouse, request, GENERATED_AT))


@pytest.fixture(scope="session")
def year_request(demo_warehouse: Path, demo_plant, pair) -> PackRequest:
    """Sponsor A, the snapshot's last year, the one product with most batch findings in it."""
    end = _as_of(demo_warehouse)
    start = end - timedelta(days=365)
    batches = partition(demo_warehouse, "batch", pair[0]).filter(
        pl.col("mfg_start").dt.date().is_between(start, end)
    )
    product = dict(zip(batches["batch_id"], batches["product_id"], strict=True))
    hits = Counter(
        product[a["batch_id"]] for a in demo_plant.ground_truth["anomalies"]
        if a["kind"] in EVENT_KINDS and a.get("batch_id") in product
    )  # fmt: skip
    return PackRequest(pair[0], start, end, "Ida Inspector", "test suite",
                       (hits.most_common(1)[0][0],))  # fmt: skip


@pytest.fixture(scope="session")
def year_pack(demo_warehouse: Path, year_request) -> OpenedPack:
    return _open(generate_pack(demo_warehouse, year_request, GENERATED_AT))


# --- confinement ---------------------------------------------------------------------------


def _texts(pack: OpenedPack) -> dict[str, str]:
    """Every file as text: CSV as is, Parquet read back as CSV, the PDF's extracted text."""
    texts = {"report.pdf": "\n".join(pack.pages), "manifest.json": pack.files["manifest.json"]}
    for path, body in pack.files.items():
        if path.endswith(".csv"):
            texts[path] = body.decode()
        elif path.endswith(".parquet"):
            texts[path] = pl.read_parquet(io.BytesIO(body)).write_csv()
    return {path: str(text) for path, text in texts.items()}


def test_no_file_names_another_sponsor(full_pack, demo_warehouse, pair) -> None:
    a, b = pair
    assert b in sponsor_ids(demo_warehouse) and full_pack.sponsor == a
    texts = _texts(full_pack)
    assert len(texts) == len(full_pack.files)
    for other in sponsor_ids(demo_warehouse):
        if other == a:
            continue
        names = foreign_identifiers(demo_warehouse, a, other)
        assert names, other
        leaks = {(path, n) for path, text in texts.items() for n in names if n in text}
        assert not leaks, (other, sorted(leaks)[:5])


def test_a_pack_is_built_only_from_its_own_sponsors_scope(demo_warehouse, pair) -> None:
    a, b = pair
    request = PackRequest(a, date(2025, 1, 1), date(2025, 3, 31), "Ida", "test suite")
    cmo = open_cmo_scope(demo_warehouse)
    other = open_sponsor_scope(demo_warehouse, b)
    try:
        for scope in (cmo, other):
            with pytest.raises(PackError):
                build_pack(scope, request)
        b_product = partition(demo_warehouse, "product", b)["product_id"][0]
        with pytest.raises(PackError, match="^Unknown product for this sponsor.$"):
            generate_pack(demo_warehouse, replace(request, products=(b_product,)))
    finally:
        cmo.close()
        other.close()


# --- the PDF -------------------------------------------------------------------------------


def test_every_page_carries_the_watermark(full_pack, demo_warehouse) -> None:
    name = partition(demo_warehouse, "sponsor", full_pack.sponsor)["name"][0]
    marks = (
        f"Confidential — {name}",
        "Prepared for Ida Inspector",
        "Generated 2026-01-05 09:30 UTC",
        "Valid until 2026-02-04 09:30 UTC",
    )
    assert len(full_pack.pages) > 10
    for number, text in enumerate(full_pack.pages, start=1):
        missing = [mark for mark in marks if mark not in text]
        assert not missing, (number, missing)


def test_no_page_is_blank(full_pack) -> None:
    """Every page holds more than its header and footer (the contents once left one blank)."""
    for number, text in enumerate(full_pack.pages, start=1):
        body = [line for line in text.splitlines() if not line.startswith("Confidential — ")]
        assert body, f"page {number} holds only its header and footer"
    assert full_pack.pages[1].splitlines()[2] == "Contents"
    assert "Quality system" in full_pack.pages[2]  # the first system follows the contents


def test_cover_states_snapshot_period_expiry_and_content_hash(full_pack) -> None:
    cover = full_pack.pages[0]
    snapshot = full_pack.manifest["snapshot"]["run_id"]
    for fact in (full_pack.content_hash, snapshot, "Ida Inspector", "test suite",
                 "2000-01-01 to", "Pack valid until"):  # fmt: skip
        assert fact in cover, fact
    contents = full_pack.pages[1]
    systems = ["Quality system", "Facilities & equipment", "Materials", "Production",
               "Packaging & labeling", "Laboratory controls"]  # fmt: skip
    positions = [contents.index(s) for s in systems]
    assert positions == sorted(positions)


# --- manifest and content hash --------------------------------------------------------------


def test_manifest_hashes_and_row_counts_match_the_files(full_pack) -> None:
    manifest = full_pack.manifest
    assert set(manifest["files"]) == set(full_pack.files) - {"manifest.json"}
    for path, entry in manifest["files"].items():
        body = full_pack.files[path]
        assert entry["sha256"] == hashlib.sha256(body).hexdigest(), path
        assert entry["bytes"] == len(body), path
    assert manifest["content_sha256"] == full_pack.content_hash
    assert manifest["generator"]["version"]
    for section in manifest["sections"]:
        csv_path, parquet_path = section["files"]
        csv = pl.read_csv(io.BytesIO(full_pack.files[csv_path]), infer_schema=False)
        parquet = pl.read_parquet(io.BytesIO(full_pack.files[parquet_path]))
        assert csv.height == parquet.height == section["rows"], section["key"]


def test_same_inputs_give_the_same_content(demo_warehouse, year_request, year_pack) -> None:
    again = _open(generate_pack(
        demo_warehouse,
        replace(year_request, recipient="Someone Else", generated_by="another user"),
        GENERATED_AT + timedelta(hours=5),
    ))  # fmt: skip
    assert again.content_hash == year_pack.content_hash
    data = [p for p in year_pack.files if p.startswith("data/")]
    assert data and sorted(data) == sorted(p for p in again.files if p.startswith("data/"))
    assert all(again.files[p] == year_pack.files[p] for p in data)

    def stable_part(manifest: dict) -> dict:
        files = {p: e for p, e in manifest["files"].items() if p != "report.pdf"}
        return {**manifest, "issue": None, "files": files}

    assert stable_part(again.manifest) == stable_part(year_pack.manifest)
    assert again.manifest["issue"] != year_pack.manifest["issue"]
    assert again.content_hash in again.pages[0]

    other_period = replace(year_request, start=year_request.start + timedelta(days=1))
    assert generate_pack(demo_warehouse, other_period).content_hash != year_pack.content_hash


# --- ground truth ---------------------------------------------------------------------------


def _lookup(warehouse: Path, sponsor: str, table: str, key: str, value: str) -> dict[str, str]:
    rows = partition(warehouse, table, sponsor)
    return dict(zip(rows[key], rows[value], strict=True))


def _has(frame: pl.DataFrame, **match) -> bool:
    found = frame
    for column, value in match.items():
        found = found.filter(pl.col(column) == value)
    return found.height > 0


def _checks(pack: OpenedPack, warehouse: Path) -> dict:
    """For each anomaly kind: where in the pack its anomaly must be seen."""
    sponsor = pack.sponsor
    capa_number = _lookup(warehouse, sponsor, "capa", "capa_id", "capa_number")
    deviation_number = _lookup(warehouse, sponsor, "deviation", "deviation_id", "deviation_number")
    supplier = _lookup(warehouse, sponsor, "supplier", "supplier_id", "name")
    findings = pack.frame("batch_exceptions")
    capas = pack.frame("capas")

    def finding(a: dict) -> bool:
        return _has(findings, kind=a["kind"], record=a["key"])

    checks = dict.fromkeys(EVENT_KINDS, finding)
    checks |= {
        "OOS_CONFIRMED": finding,
        "OOS_INVALIDATED": finding,
        "DISPOSITION_WITH_OPEN_DEVIATION": lambda a: _has(
            findings, kind=a["kind"], batch_id=a["key"], record=a["deviation_id"]
        ),
        "CALIBRATION_OVERDUE_IN_USE": lambda a: (
            finding(a) and _has(pack.frame("equipment_invalid_uses"), usage_id=a["key"])
        ),
        "CALIBRATION_FAILED_IN_USE": lambda a: (
            finding(a) and _has(pack.frame("equipment_invalid_uses"), usage_id=a["key"])
        ),
        "CAPA_OVERDUE": lambda a: _has(capas, capa_number=capa_number[a["key"]], overdue=True),
        "CAPA_EXTENDED": lambda a: _has(
            pack.frame("capa_extensions"), capa_number=capa_number[a["key"]]
        ),
        "CAPA_NOT_EFFECTIVE": lambda a: _has(
            pack.frame("capa_effectiveness"),
            capa_number=capa_number[a["key"]],
            result="NOT_EFFECTIVE",
        ),  # fmt: skip
        "CHANGE_EFFECTIVE_BEFORE_APPROVAL": lambda a: _has(
            pack.frame("change_controls"), impact_id=a["key"], violation=True
        ),
        "CHANGE_OBLIGATION_BELOW_AGREEMENT": lambda a: _has(
            pack.frame("change_controls"), impact_id=a["key"], violation=True
        ),
        "CHANGE_OBLIGATION_DIFFERS": lambda a: _has(
            pack.frame("change_controls"), impact_id=a["key"]
        ),
        "SUPPLIER_CONDITIONAL": lambda a: _has(
            pack.frame("suppliers"), supplier=supplier[a["key"]], supplier_status="CONDITIONAL"
        ),
        "SUPPLIER_DISQUALIFIED": lambda a: _has(
            pack.frame("suppliers"), supplier=supplier[a["key"]], supplier_status="DISQUALIFIED"
        ),
        "NOTIFICATION_LATE": lambda a: _has(
            pack.frame("deviations"),
            deviation_number=deviation_number[a["deviation_id"]],
            notified_late=True,
        ),  # fmt: skip
        # Informational stories of the demo (today's open work) are records like any other.
        "BATCH_AWAITING_RELEASE": lambda a: (
            pack.frame("batches")
            .filter(pl.col("batch_id") == a["key"])["awaiting_release_days"]
            .is_not_null()
            .any()
        ),
        "CHANGE_AWAITING_APPROVAL": lambda a: _has(
            pack.frame("change_controls"), impact_id=a["key"], awaiting_sponsor=True
        ),
        "MAJOR_DEVIATION_OPEN": lambda a: _has(
            pack.frame("deviations").filter(pl.col("closed_at").is_null()),
            deviation_number=deviation_number[a["key"]],
            classification="MAJOR",
        ),  # fmt: skip
    }
    return checks


def test_every_ground_truth_anomaly_of_the_sponsor_is_in_its_pack(
    full_pack, demo_plant, demo_warehouse
) -> None:
    truth = [
        a for a in demo_plant.ground_truth["anomalies"] if a["sponsor_id"] == full_pack.sponsor
    ]
    checks = _checks(full_pack, demo_warehouse)
    assert {a["kind"] for a in demo_plant.ground_truth["anomalies"]} <= set(checks)
    assert len({a["kind"] for a in truth}) >= 10
    missing = [a for a in truth if not checks[a["kind"]](a)]
    assert not missing, missing
    report = "\n".join(full_pack.pages)
    for a in truth:
        if a["kind"] in EVENT_KINDS:
            assert a["key"] in report, a


def test_product_and_period_decide_which_batch_findings_are_in(
    year_pack, year_request, demo_plant, demo_warehouse
) -> None:
    """A batch's anomaly is in the pack exactly when its product and start are in scope."""
    batches = partition(demo_warehouse, "batch", year_request.sponsor_id)
    start = dict(zip(batches["batch_id"], batches["mfg_start"], strict=True))
    product = dict(zip(batches["batch_id"], batches["product_id"], strict=True))
    findings = year_pack.frame("batch_exceptions")
    truth = [
        a for a in demo_plant.ground_truth["anomalies"]
        if a["sponsor_id"] == year_request.sponsor_id and a["kind"] in EVENT_KINDS
    ]  # fmt: skip
    inside = 0
    for a in truth:
        began = start[a["batch_id"]]
        belongs = (
            product[a["batch_id"]] in year_request.products
            and began is not None
            and year_request.start <= began.date() <= year_request.end
        )
        inside += belongs
        assert _has(findings, kind=a["kind"], record=a["key"]) == belongs, a
    assert set(findings["batch_id"]) <= {
        b for b, p in product.items() if p in year_request.products
    }
    assert 0 < inside < len(truth)
