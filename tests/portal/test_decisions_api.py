"""GET /api/v1/decisions on the real sharing server: the CMO's QMS pulls signed decisions with
its integration token, page by page; a sponsor's token never reads them, and the integration
token never reads a sponsor's data."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
import requests

from portal import decisions, tokens, users
from tests.share_support import ShareServer, issue_tokens, start_share_server, stop_share_server
from warehouse.queries.decisions import CHANGE_KINDS, subjects
from warehouse.scope import open_sponsor_scope

API = "/api/v1"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("decisions-api-data")


@pytest.fixture(scope="module")
def signed(data_root, demo_warehouse) -> list[decisions.Decision]:
    """Three decisions of two sponsors, signed through the real store."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTAL_DATA_DIR", str(data_root))
        users.ensure_demo_users()
        made = []
        for sponsor, user in (("NWT", "priya"), ("TSP", "takeshi")):
            decisions.grant(user, "carla")
            principal = users.principal_for(user, decisions.utc_now())
            scope = open_sponsor_scope(demo_warehouse, sponsor)
            for subject in subjects(scope, CHANGE_KINDS)[:2]:
                meaning = subject.meanings[0]
                made.append(decisions.sign(
                    principal, scope, subject.record_type, subject.record_id, meaning,
                    typed_username=user, password=users.demo_password(user),
                    shown_hash=subject.content_hash, zone="Asia/Tokyo",
                ))  # fmt: skip
            scope.close()
    assert len(made) == 3  # NWT's approval and first notification, TSP's notification
    return made


@pytest.fixture(scope="module")
def secrets_(data_root, signed) -> dict[str, str]:
    issued = issue_tokens(data_root, "NWT", "CTB")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTAL_DATA_DIR", str(data_root))
        _, issued["cmo"] = tokens.create(
            tokens.CMO_INTEGRATION, "QMS import", date.today() + timedelta(days=30), "sam"
        )
    return issued


@pytest.fixture(scope="module")
def server(demo_warehouse, data_root, secrets_, tmp_path_factory):
    running = start_share_server(demo_warehouse, data_root,
                                 tmp_path_factory.mktemp("log") / "server.log")  # fmt: skip
    yield running
    stop_share_server(running)


def _get(server: ShareServer, path: str, secret: str | None, **params) -> requests.Response:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return requests.get(f"{server.url}{path}", headers=headers, params=params, timeout=60)


def test_the_integration_token_pulls_every_decision_in_chain_order_page_by_page(
    server, secrets_, signed
):
    first = _get(server, f"{API}/decisions", secrets_["cmo"], limit=2)
    assert first.status_code == 200, first.text
    body = first.json()
    assert [d["decision_id"] for d in body["decisions"]] == [d.decision_id for d in signed[:2]]
    assert body["next_after"] == signed[1].seq
    rest = _get(server, f"{API}/decisions", secrets_["cmo"], after=body["next_after"]).json()
    assert [d["decision_id"] for d in rest["decisions"]] == [signed[2].decision_id]
    assert rest["next_after"] is None
    record = body["decisions"][0]
    # The outbox record: the signature's manifestation and the chain position and hashes.
    assert record["signature"] == signed[0].manifestation()
    assert (record["seq"], record["row_hash"], record["prev_hash"]) == (
        signed[0].seq, signed[0].row_hash, signed[0].prev_hash)  # fmt: skip
    assert record["shown"] and record["signer_zone"] == "Asia/Tokyo"


def test_since_filters_by_signing_time(server, secrets_, signed):
    later = signed[-1].signed_moment + timedelta(seconds=1)
    answer = _get(server, f"{API}/decisions", secrets_["cmo"], since=later.isoformat())
    assert answer.status_code == 200 and answer.json()["decisions"] == []


@pytest.mark.parametrize(
    ("who", "path", "status"),
    [
        ("own", f"{API}/decisions", 403),  # a sponsor's token: not even its own decisions here
        ("other", f"{API}/decisions", 403),
        ("revoked", f"{API}/decisions", 401),
        ("expired", f"{API}/decisions", 401),
        (None, f"{API}/decisions", 401),
        ("cmo", f"{API}/datasets", 403),  # the integration token reads no sponsor data
        ("cmo", f"{API}/datasets/change_controls", 403),
        ("cmo", f"{API}/products", 403),
        ("cmo", f"{API}/measures/overdue_capas", 403),
        ("cmo", "/delta-sharing/shares", 403),
        ("cmo", "/delta-sharing/shares/NWT/schemas/portal/tables/batch/metadata", 403),
    ],
)
def test_each_token_reads_only_what_it_is_for(server, secrets_, who, path, status):
    answer = _get(server, path, secrets_[who] if who else None)
    assert answer.status_code == status, answer.text
    assert "decisions" not in answer.json() or status == 200
    for d in ("DEC-", "Priya", "Takeshi"):
        assert d not in answer.text


def test_the_cli_issues_an_integration_profile(data_root, tmp_path):
    out = tmp_path / "qms.share"
    env = {**os.environ, "PORTAL_DATA_DIR": str(data_root)}
    done = subprocess.run(
        [sys.executable, "-m", "portal", "tokens", "create", "--cmo-integration",
         "--label", "QMS nightly import", "--expires", str(date.today() + timedelta(days=9)),
         "--out", str(out), "--by", "sam"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "profile for the CMO integration (QMS nightly import)" in done.stdout
    assert out.stat().st_mode & 0o777 == 0o600
