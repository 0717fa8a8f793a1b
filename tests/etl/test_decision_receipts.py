"""Decisions back to the CMO's system: the QMS records what sponsors signed in the portal
(contract table decision_receipt), and the nightly job brings it back to that sponsor only.

A source without the table publishes it empty; a receipt reaches exactly its change impact's
sponsor; the whole loop - sign in the portal, export the outbox, the demo QMS import
(`python -m etl.demo_source record-decisions`), the nightly run - shows the receipt and takes
the change off the sponsor's list. Every plant here is this module's own (session fixtures
are never written to).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from etl.demo_source import generate
from etl.demo_source.__main__ import main as demo_source_main
from etl.demo_source.qms_import import RECORDED_BY, record_decisions
from etl.run import EtlError, run_etl
from portal import decisions, users
from tests.conftest import AS_OF
from tests.ownership import record_sponsors
from tests.source_fixtures import base_plant, write_csv, write_sqlite
from warehouse.contract import SITE_PARTITION, table
from warehouse.layout import MANIFEST, current_snapshot
from warehouse.queries.decision_receipts import receipts
from warehouse.queries.decisions import subjects
from warehouse.scope import open_cmo_scope, open_sponsor_scope

ROOT = Path(__file__).resolve().parents[2]
RECEIPT = table("decision_receipt")
PASSWORD = users.demo_password("priya")  # priya-demo-2026, NWT's QA


def _partitions(snapshot: Path) -> dict[str, pl.DataFrame]:
    """decision_receipt as published, per partition (straight from the Parquet files)."""
    return {
        folder.name.removeprefix("sponsor_id="): pl.read_parquet(folder / "part-0.parquet")
        for folder in sorted((snapshot / "decision_receipt").glob("sponsor_id=*"))
    }


def _rows(db: Path, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


# --- a source without receipts --------------------------------------------------------------


def _without_receipts(tmp_path: Path, kind: str) -> Path:
    if kind == "csv":
        folder = write_csv(base_plant(), tmp_path / "csv")
        (folder / "decision_receipt.csv").unlink()
        return folder
    db = write_sqlite(base_plant(), tmp_path / "plant.sqlite")
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE decision_receipt")
    return db


@pytest.mark.parametrize("kind", ["sqlite", "csv"])
def test_a_source_without_the_table_publishes_it_empty(tmp_path: Path, kind: str) -> None:
    source = _without_receipts(tmp_path, kind)
    result = run_etl(source, tmp_path / "wh")
    assert result.extracted["decision_receipt"] == result.published["decision_receipt"] == 0
    manifest = json.loads((result.snapshot / MANIFEST).read_text())
    assert manifest["tables"]["decision_receipt"]["valid"] == 0
    published = _partitions(result.snapshot)
    # Every partition has its (empty) file, typed as the contract says: scopes open as usual.
    assert sorted(published) == ["ACME", "BETA", SITE_PARTITION]
    for frame in published.values():
        assert frame.height == 0 and frame.columns == RECEIPT.column_names
        assert frame.schema["recorded_at"] == pl.Datetime("us")
    scope = open_sponsor_scope(tmp_path / "wh", "ACME")
    found = receipts(scope)
    assert found.height == 0
    assert found.columns == ["decision_id", "impact_id", "meaning", "recorded_at", "recorded_by"]
    # The next run from the same source is incremental and still finds no table.
    again = run_etl(source, tmp_path / "wh")
    assert again.mode == "incremental" and again.published["decision_receipt"] == 0


@pytest.mark.parametrize("kind", ["sqlite", "csv"])
def test_every_other_table_stays_required(tmp_path: Path, kind: str) -> None:
    source = _without_receipts(tmp_path, kind)
    if kind == "csv":
        (source / "change_market.csv").unlink()
        expected = "table change_market: CSV export change_market.csv is missing"
    else:
        with sqlite3.connect(source) as conn:
            conn.execute("DROP TABLE change_market")
        expected = "table change_market: cannot be read from the source"
    with pytest.raises(EtlError, match=expected):
        run_etl(source, tmp_path / "wh")
    assert current_snapshot(tmp_path / "wh") is None


@pytest.mark.parametrize("kind", ["sqlite", "csv"])
def test_a_present_receipt_table_needs_every_column(tmp_path: Path, kind: str) -> None:
    if kind == "csv":
        source = write_csv(base_plant(), tmp_path / "csv")
        (source / "decision_receipt.csv").write_text("decision_id,impact_id,meaning,updated_at\n")
        expected = "table decision_receipt: CSV export is missing column 'recorded_at'"
    else:
        source = write_sqlite(base_plant(), tmp_path / "plant.sqlite")
        with sqlite3.connect(source) as conn:
            conn.execute("ALTER TABLE decision_receipt DROP COLUMN recorded_at")
        expected = "table decision_receipt: source is missing column 'recorded_at'"
    with pytest.raises(EtlError, match=expected):
        run_etl(source, tmp_path / "wh")


def test_a_table_or_column_gone_since_the_last_run_fails_the_day_s_run(tmp_path: Path) -> None:
    """A day's run asks each table's changes straight away; when that fails, it says why as
    a full build does, and the live snapshot stays."""
    source = write_sqlite(base_plant(), tmp_path / "plant.sqlite")
    run_etl(source, tmp_path / "wh")
    live = current_snapshot(tmp_path / "wh")
    with sqlite3.connect(source) as conn:
        conn.execute("ALTER TABLE decision_receipt DROP COLUMN recorded_at")
    expected = "table decision_receipt: source is missing column 'recorded_at'"
    with pytest.raises(EtlError, match=expected):
        run_etl(source, tmp_path / "wh")
    with sqlite3.connect(source) as conn:
        conn.execute("DROP TABLE change_market")
    with pytest.raises(EtlError, match="table change_market: cannot be read from the source"):
        run_etl(source, tmp_path / "wh")
    assert current_snapshot(tmp_path / "wh") == live
    # The thread that asked the changes ahead stopped with the run, its connection closed.
    assert "source-changes" not in {thread.name for thread in threading.enumerate()}


# --- routing --------------------------------------------------------------------------------


def _receipt(decision_id: str, impact_id: str, **changes) -> dict:
    return {"decision_id": decision_id, "impact_id": impact_id, "meaning": "APPROVED",
            "recorded_at": "2026-01-05T09:00:00", "recorded_by": "QMS",
            "updated_at": "2026-01-05T09:00:00", **changes}  # fmt: skip


@pytest.mark.parametrize("kind", ["sqlite", "csv"])
def test_a_receipt_reaches_only_its_impacts_sponsor(tmp_path: Path, kind: str) -> None:
    plant = base_plant()
    plant["decision_receipt"] = [
        _receipt("DEC-000001", "CI-ACME"),
        _receipt("DEC-000002", "CI-BETA", meaning="REJECTED", recorded_by=None),
        _receipt("DEC-000003", "CI-NOPE"),  # an impact the source does not have
        _receipt("DEC-000004", "CI-ACME", meaning="SIGNED"),
    ]
    write = write_csv if kind == "csv" else write_sqlite
    source = write(plant, tmp_path / ("csv" if kind == "csv" else "plant.sqlite"))
    result = run_etl(source, tmp_path / "wh")
    published = _partitions(result.snapshot)
    assert published["ACME"].get_column("decision_id").to_list() == ["DEC-000001"]
    assert published["BETA"].get_column("decision_id").to_list() == ["DEC-000002"]
    assert published[SITE_PARTITION].height == 0
    assert published["BETA"].get_column("recorded_by").to_list() == [None]
    quarantine = pl.read_parquet(result.snapshot / "_quarantine" / "decision_receipt.parquet")
    reasons = dict(quarantine.select("key", "reason").iter_rows())
    assert reasons.keys() == {"DEC-000003", "DEC-000004"}
    assert "impact_id 'CI-NOPE' has no change impact" in reasons["DEC-000003"]
    assert "meaning 'SIGNED' is not an allowed value" in reasons["DEC-000004"]
    # The CMO reads every receipt, each once.
    everyone = receipts(open_cmo_scope(tmp_path / "wh"))
    assert sorted(everyone.get_column("decision_id")) == ["DEC-000001", "DEC-000002"]


# --- the whole loop on the demo plant --------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's own demo plant (seed 7, demo preset, ending at AS_OF); copied per test."""
    path = tmp_path_factory.mktemp("receipts-plant") / "plant.sqlite"
    generate(path, seed=7, preset="demo", as_of=AS_OF)
    return path


@pytest.fixture
def plant(generated: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(generated, tmp_path / "plant.sqlite"))


@pytest.fixture
def portal_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A portal data root of its own: demo users, and priya (NWT's QA) may sign."""
    root = tmp_path / "portal-data"
    monkeypatch.setenv("PORTAL_DATA_DIR", str(root))
    users.ensure_demo_users()
    decisions.grant("priya", "carla")
    return root


def _sign_an_approval(warehouse: Path) -> decisions.Decision:
    """priya approves the first NWT change awaiting NWT's prior approval, as shown to her."""
    scope = open_sponsor_scope(warehouse, "NWT")
    subject = next(s for s in subjects(scope) if s.record_type == "change_approval")
    return decisions.sign(
        users.get_user("priya").principal(), scope, subject.record_type, subject.record_id,
        "APPROVED", typed_username="priya", password=PASSWORD,
        shown_hash=subject.content_hash, zone="Europe/Berlin",
    )  # fmt: skip


def _awaiting(warehouse: Path, sponsor: str) -> set[str]:
    return {s.record_id for s in subjects(open_sponsor_scope(warehouse, sponsor))}


def test_signed_in_the_portal_recorded_in_the_qms_and_back_in_the_portal(
    plant: Path, portal_data: Path, tmp_path: Path
) -> None:
    warehouse = tmp_path / "wh"
    run_etl(plant, warehouse, full=True)
    decision = _sign_an_approval(warehouse)
    impact = decision.record_id
    assert impact in _awaiting(warehouse, "NWT")
    outbox = tmp_path / "outbox"
    assert decisions.export_outbox(None, outbox) == (1, 2)

    summary = record_decisions(plant, outbox)
    assert (summary.recorded, summary.already, summary.refused) == ([decision.decision_id], [], [])
    ((decided, decided_at, updated_at),) = _rows(
        plant, "SELECT decision, decided_at, updated_at FROM change_impact WHERE impact_id = ?",
        impact,
    )  # fmt: skip
    ((recorded_at,),) = _rows(plant, "SELECT recorded_at FROM decision_receipt")
    signed = decision.signed_moment.astimezone().replace(tzinfo=None, microsecond=0)
    assert decided == "APPROVED" and decided_at == signed.isoformat()
    assert updated_at == recorded_at >= decided_at  # the next incremental run picks it up

    incremental = run_etl(plant, warehouse)
    assert incremental.mode == "incremental"
    assert incremental.extracted["decision_receipt"] == 1
    assert incremental.quarantined["decision_receipt"] == incremental.quarantined[
        "change_impact"
    ] == 0  # fmt: skip
    full_warehouse = tmp_path / "wh-full"
    run_etl(plant, full_warehouse, full=True)
    for root in (warehouse, full_warehouse):
        scope = open_sponsor_scope(root, "NWT")
        found = receipts(scope)
        assert found.rows(named=True) == [
            {"decision_id": decision.decision_id, "impact_id": impact, "meaning": "APPROVED",
             "recorded_at": datetime.fromisoformat(recorded_at), "recorded_by": RECORDED_BY},
        ]  # fmt: skip
        # Signed in the portal at ..., recorded in the QMS at ... (never before the signature).
        assert found.item(0, "recorded_at") >= signed
        # The QMS's decision is published: the change no longer awaits NWT.
        assert impact not in _awaiting(root, "NWT")
        # Exactly NWT's partition holds the receipt; the other sponsors see none.
        published = _partitions(current_snapshot(root))
        holders = {p for p, frame in published.items() if frame.height}
        assert holders == {"NWT"}
        for sponsor in set(published) - {"NWT", SITE_PARTITION}:
            assert receipts(open_sponsor_scope(root, sponsor)).height == 0, sponsor
        # Ownership from the source alone (tests/ownership.py) agrees.
        owners = record_sponsors(plant)["decision_receipt"]
        assert owners == {decision.decision_id: frozenset({"NWT"})}


def test_the_import_records_each_decision_once(
    plant: Path, portal_data: Path, tmp_path: Path
) -> None:
    warehouse = tmp_path / "wh"
    run_etl(plant, warehouse, full=True)
    decision = _sign_an_approval(warehouse)
    outbox = tmp_path / "outbox"
    decisions.export_outbox(None, outbox)
    command = [sys.executable, "-m", "etl.demo_source", "record-decisions",
               "--source", str(plant), "--outbox", str(outbox)]  # fmt: skip
    first = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    assert f"recorded {decision.decision_id}" in first.stdout
    before = _rows(plant, "SELECT * FROM change_impact ORDER BY impact_id")
    receipts_before = _rows(plant, "SELECT * FROM decision_receipt")

    second = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert second.returncode == 0, second.stderr
    assert "0 decision(s) recorded" in second.stdout and "1 already recorded" in second.stdout
    later = datetime.now() + timedelta(hours=1)
    again = record_decisions(plant, outbox, at=later)
    assert (again.recorded, again.already, again.refused) == ([], [decision.decision_id], [])
    assert _rows(plant, "SELECT * FROM change_impact ORDER BY impact_id") == before
    assert _rows(plant, "SELECT * FROM decision_receipt") == receipts_before


# A day before the times these tests record at, whatever the machine's zone.
SIGNED_AT = "2026-11-25T10:00:00.000000+00:00"


def _outbox_file(outbox: Path, **record) -> Path:
    outbox.mkdir(exist_ok=True)
    base = {"decision_id": "DEC-NWT-0001", "sponsor_id": "NWT", "record_type": "change_approval",
            "record_id": "", "meaning": "APPROVED",
            "signed_at": SIGNED_AT, **record}  # fmt: skip
    path = outbox / f"{base['decision_id']}.json"
    path.write_text(json.dumps(base))
    return path


def _impact(db: Path, sponsor: str, obligation: str) -> str:
    sql = "SELECT impact_id FROM change_impact WHERE sponsor_id = ? AND obligation = ? LIMIT 1"
    return _rows(db, sql, sponsor, obligation)[0][0]


def test_an_acknowledgement_gets_its_receipt_and_decides_nothing(plant: Path, tmp_path) -> None:
    notified = _impact(plant, "NWT", "NOTIFY")
    before = _rows(plant, "SELECT * FROM change_impact WHERE impact_id = ?", notified)
    outbox = tmp_path / "outbox"
    _outbox_file(outbox, record_type="change_notification", record_id=notified,
                 meaning="ACKNOWLEDGED")  # fmt: skip
    code = demo_source_main(["record-decisions", "--source", str(plant), "--outbox",
                             str(outbox), "--at", "2026-11-26T12:00:00"])  # fmt: skip
    assert code == 0
    assert _rows(plant, "SELECT * FROM change_impact WHERE impact_id = ?", notified) == before
    assert _rows(plant, "SELECT decision_id, impact_id, meaning, recorded_at FROM "
                 "decision_receipt") == [("DEC-NWT-0001", notified, "ACKNOWLEDGED",
                                          "2026-11-26T12:00:00")]  # fmt: skip


def test_the_qms_refuses_what_it_cannot_record(plant: Path, tmp_path: Path, capsys) -> None:
    prior = _impact(plant, "NWT", "PRIOR_APPROVAL")
    foreign = _impact(plant, "CTB", "PRIOR_APPROVAL")
    notified = _impact(plant, "NWT", "NOTIFY")
    outbox = tmp_path / "outbox"
    cases = {
        "DEC-NWT-0001": {"record_id": foreign},  # another sponsor's change impact
        "DEC-NWT-0002": {"record_id": "CI-NOT-THERE"},
        "DEC-NWT-0003": {"record_id": notified},  # an approval of a mere notification
        "DEC-NWT-0004": {"record_id": prior, "meaning": "ACKNOWLEDGED"},
        "DEC-NWT-0005": {"record_id": prior, "signed_at": "2026-11-28T13:00:00+00:00"},  # later
    }
    for decision_id, changes in cases.items():
        _outbox_file(outbox, decision_id=decision_id, **changes)
    (outbox / "DEC-NWT-0006.json").write_text("{not json")
    before = _rows(plant, "SELECT * FROM change_impact ORDER BY impact_id")
    code = demo_source_main(["record-decisions", "--source", str(plant), "--outbox",
                             str(outbox), "--at", "2026-11-26T12:00:00"])  # fmt: skip
    assert code == 1
    refused = capsys.readouterr().err
    for decision_id in (*cases, "DEC-NWT-0006"):
        assert f"refused {decision_id}.json" in refused, refused
    assert "not sponsor NWT's" in refused and "before it was signed" in refused
    assert _rows(plant, "SELECT count(*) FROM decision_receipt") == [(0,)]
    assert _rows(plant, "SELECT * FROM change_impact ORDER BY impact_id") == before


def test_an_older_plant_file_gets_the_table(plant: Path, tmp_path: Path) -> None:
    with sqlite3.connect(plant) as conn:
        conn.execute("DROP TABLE decision_receipt")
    prior = _impact(plant, "NWT", "PRIOR_APPROVAL")
    _outbox_file(tmp_path / "outbox", record_id=prior, meaning="REJECTED")
    summary = record_decisions(plant, tmp_path / "outbox", at=datetime(2026, 11, 26, 12))
    assert summary.recorded == ["DEC-NWT-0001"]
    signed = datetime.fromisoformat(SIGNED_AT).astimezone().replace(tzinfo=None)
    assert _rows(plant, "SELECT decision, decided_at, updated_at FROM change_impact "
                 "WHERE impact_id = ?", prior) == [
        ("REJECTED", signed.isoformat(timespec="seconds"), "2026-11-26T12:00:00")
    ]  # fmt: skip


def test_a_deviation_acknowledgement_is_left_to_the_deviation_records(
    plant: Path, tmp_path: Path, capsys
) -> None:
    before = _rows(plant, "SELECT * FROM change_impact ORDER BY impact_id")
    _outbox_file(tmp_path / "outbox", record_type="deviation_notification",
                 record_id="DEV-ANY", meaning="ACKNOWLEDGED")  # fmt: skip
    code = demo_source_main(["record-decisions", "--source", str(plant), "--outbox",
                             str(tmp_path / "outbox"), "--at", "2026-11-26T12:00:00"])  # fmt: skip
    assert code == 0
    assert "1 acknowledgement(s) of deviation or OOS notifications" in capsys.readouterr().out
    assert _rows(plant, "SELECT count(*) FROM decision_receipt") == [(0,)]
    assert _rows(plant, "SELECT * FROM change_impact ORDER BY impact_id") == before
