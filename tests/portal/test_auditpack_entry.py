"""The two ways in to an audit pack: `python -m portal auditpack` and the Audit pack page.

Both log the pack with its content hash where its sponsor can see it. Short periods keep
these fast; test_auditpack.py covers the pack's content.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from portal import access_log, users
from tests.download_capture import downloads, recording_media
from tests.page_harness import ROOT, principal, run_page
from warehouse.scope import snapshot_info, sponsor_ids

SPONSOR = "CTB"
OTHER = "FBK"
PAGE = "audit_pack.py"


def _period(warehouse: Path) -> tuple[date, date]:
    end = snapshot_info(warehouse).created_at.date()
    return end - timedelta(days=45), end


def _log(sponsor: str) -> list[dict]:
    """The sponsor's own access log, as its access-log page reads it."""
    now = datetime.now().astimezone()
    return access_log.entries_for_sponsor(sponsor, now - timedelta(days=1), now + timedelta(days=1))


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    return tmp_path


def _cli(
    warehouse: Path, data_root: Path, *args: str, module: str = "portal"
) -> subprocess.CompletedProcess:
    env = {**os.environ, "PORTAL_DATA_DIR": str(data_root)}
    return subprocess.run(
        [sys.executable, "-m", module, "auditpack", "--warehouse", str(warehouse), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_cli_writes_the_pack_and_logs_it_for_the_sponsor(demo_warehouse, data_root) -> None:
    start, end = _period(demo_warehouse)
    out = data_root / "packs" / "ctb.zip"
    done = _cli(demo_warehouse, data_root, "--sponsor", SPONSOR, "--from", start.isoformat(),
                "--to", end.isoformat(), "--recipient", "Ida Inspector", "--out", str(out),
                "--generated-by", "ops.user")  # fmt: skip
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(out) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    content_hash = manifest["content_sha256"]
    assert f"content hash {content_hash}" in done.stdout
    assert manifest["issue"]["generated_by"] == "ops.user"
    assert manifest["parameters"] == {"sponsor_id": SPONSOR, "products": [],
                                      "from": start.isoformat(), "to": end.isoformat(),
                                      "as_of": end.isoformat()}  # fmt: skip
    logged = [e for e in _log(SPONSOR) if e["event"] == "AUDIT_PACK"]
    assert [(e["username"], e["content_hash"]) for e in logged] == [("ops.user", content_hash)]
    assert not any(e["event"] == "AUDIT_PACK" for e in _log(OTHER))


def test_former_command_name_still_writes_the_pack(demo_warehouse, data_root) -> None:
    start, end = _period(demo_warehouse)
    out = data_root / "former.zip"
    done = _cli(demo_warehouse, data_root, "--sponsor", SPONSOR, "--from", start.isoformat(),
                "--to", end.isoformat(), "--recipient", "Ida Inspector", "--out", str(out),
                module="warehouse")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "now `python -m portal auditpack`" in done.stderr
    assert zipfile.is_zipfile(out)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sponsor", "NOPE"], "error: Unknown sponsor."),
        (["--sponsor", "../CTB"], "error: Unknown sponsor."),
        (["--sponsor", SPONSOR, "--product", "P-FBK-003"], "error: Unknown product"),
    ],
)
def test_cli_refuses_what_is_not_this_sponsors(args, message, demo_warehouse, data_root) -> None:
    out = data_root / "refused.zip"
    done = _cli(demo_warehouse, data_root, *args, "--from", "2025-01-01", "--to", "2025-01-31",
                "--recipient", "Ida", "--out", str(out))  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith(message)
    assert not out.exists()
    assert OTHER not in done.stderr


# --- the page ------------------------------------------------------------------------------


def _generate(app):
    app.button(key="pack:generate").click().run(timeout=300)
    assert not app.exception, app.exception
    return app.session_state["_audit_pack"][1]


def test_sponsor_qa_generates_and_downloads_a_logged_pack(demo_warehouse, data_root) -> None:
    # A registered user: a download is logged only while the registry still lets them in.
    users.add_user("qa.ctb", "Test sponsor_qa", "sponsor_qa", "a-long-password-2026",
                   sponsor_id=SPONSOR)  # fmt: skip
    who = principal("sponsor_qa", SPONSOR, username="qa.ctb")
    with recording_media() as made:
        app = run_page(PAGE, who, demo_warehouse, state={"pack:range": _period(demo_warehouse)},
                       timeout=300)  # fmt: skip
        assert not app.exception
        assert "Sponsor" not in [box.label for box in app.selectbox]
        assert app.text_input(key="pack:recipient").value == who.display_name
        assert not app.download_button
        pack = _generate(app)
        button = next(d for d in downloads(app, made, PAGE) if d.key == "pack:download")
    assert [c.value for c in app.code] == [pack.content_hash]
    assert pack.manifest["parameters"]["sponsor_id"] == SPONSOR
    assert pack.manifest["issue"]["recipient"] == who.display_name
    assert [e["event"] for e in _log(SPONSOR)][:1] == ["AUDIT_PACK"]  # drawn, not yet fetched
    fetched = button.fetch()  # what the browser's click fetches: the download is logged then
    assert fetched.content == pack.zip_bytes and fetched.filename == pack.file_name
    events = [(e["event"], e["content_hash"]) for e in _log(SPONSOR)]
    assert events[:2] == [("DOWNLOAD", pack.content_hash), ("AUDIT_PACK", pack.content_hash)]
    with zipfile.ZipFile(io.BytesIO(pack.zip_bytes)) as archive:
        assert {"report.pdf", "manifest.json"} <= set(archive.namelist())


def test_auditor_packs_carry_their_name_and_expiry(demo_warehouse, data_root) -> None:
    who = principal("auditor", SPONSOR)
    app = run_page(PAGE, who, demo_warehouse, state={"pack:range": _period(demo_warehouse)},
                   timeout=300)  # fmt: skip
    fixed = app.text_input(key="pack:auditor")
    assert fixed.disabled and fixed.value == who.display_name
    pack = _generate(app)
    issue = pack.manifest["issue"]
    assert issue["recipient"] == who.display_name
    assert issue["valid_until"].startswith(who.valid_until.strftime("%Y-%m-%dT%H:%M:%S"))


def test_cmo_staff_pick_a_sponsor_and_that_sponsor_sees_the_pack(demo_warehouse, data_root):
    assert OTHER in sponsor_ids(demo_warehouse)
    who = principal("cmo_quality")
    app = run_page(PAGE, who, demo_warehouse, picked_sponsor=OTHER,
                   state={"pack:range": _period(demo_warehouse)}, timeout=300)  # fmt: skip
    assert "Sponsor" in [box.label for box in app.selectbox]
    pack = _generate(app)
    assert pack.manifest["parameters"]["sponsor_id"] == OTHER
    logged = [e for e in _log(OTHER) if e["event"] == "AUDIT_PACK"]
    assert [(e["username"], e["content_hash"]) for e in logged] == [
        (who.username, pack.content_hash)
    ]
    assert not _log(SPONSOR)


def test_roles_without_audit_packs_are_refused(demo_warehouse, data_root) -> None:
    app = run_page(PAGE, principal("bd_demo"), demo_warehouse, picked_sponsor=SPONSOR)
    assert not app.exception
    assert [e.value for e in app.error] == [
        "Audit packs are for sponsor QA, auditors and CMO quality staff."
    ]
    assert not app.button
