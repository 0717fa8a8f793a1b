"""The sharing server over the demo warehouse, attacked and read as a sponsor's IT would:
raw HTTP for the protocol's answers and refusals, and the official `delta-sharing` client
for reading every table. The server runs as a real process on a loopback port."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import polars as pl
import pytest
import requests

from portal import access_log, tokens
from portal.share import signing
from portal.share.tables import TABLE_NAMES
from tests.share_support import issue_tokens, run_client, start_share_server, stop_share_server
from warehouse import layout
from warehouse.scope import snapshot_info

OWN, OTHER = "NWT", "CTB"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("share-data")


@pytest.fixture(scope="module")
def issued(data_root) -> dict[str, str]:
    """Secrets of live tokens for OWN and OTHER, and of a revoked and an expired one."""
    return issue_tokens(data_root, OWN, OTHER)


@pytest.fixture(scope="module")
def server(demo_warehouse, data_root, issued, tmp_path_factory):
    log = tmp_path_factory.mktemp("share-log") / "server.log"
    running = start_share_server(demo_warehouse, data_root, log)
    yield running
    stop_share_server(running)


def _partition(warehouse: Path, table: str, sponsor: str) -> pl.DataFrame:
    snapshot = snapshot_info(warehouse).path
    return pl.read_parquet(layout.partition_dir(snapshot, table, sponsor) / "*.parquet")


def _files(server, secret: str, table: str) -> list[dict]:
    answer = server.post(f"/shares/{OWN}/schemas/quality/tables/{table}/query", secret)
    assert answer.status_code == 200, answer.text
    lines = [json.loads(line) for line in answer.text.splitlines()]
    return [line["file"] for line in lines if "file" in line]


# --- what a token sees ----------------------------------------------------------------------


def test_a_token_lists_only_its_own_sponsors_share_and_tables(server, issued) -> None:
    shares = server.get("/shares", issued["own"]).json()
    assert [s["name"] for s in shares["items"]] == [OWN]
    tables = server.get(f"/shares/{OWN}/all-tables", issued["own"]).json()["items"]
    assert sorted(t["name"] for t in tables) == sorted(TABLE_NAMES)
    assert {(t["share"], t["schema"]) for t in tables} == {(OWN, "quality")}
    schemas = server.get(f"/shares/{OWN.lower()}/schemas", issued["own"]).json()["items"]
    assert schemas == [{"name": "quality", "share": OWN}]


def test_lists_page_with_max_results_and_page_tokens(server, issued) -> None:
    names, token = [], None
    while True:
        params = {"maxResults": 7} | ({"pageToken": token} if token else {})
        page = server.get(f"/shares/{OWN}/schemas/quality/tables", issued["own"], params=params)
        body = page.json()
        assert len(body["items"]) <= 7
        names += [t["name"] for t in body["items"]]
        token = body.get("nextPageToken")
        if not token:
            break
    assert names == list(TABLE_NAMES)
    bad = server.get("/shares", issued["own"], params={"pageToken": "not-a-token"})
    assert bad.status_code == 400 and bad.json()["errorCode"] == "INVALID_PARAMETER_VALUE"


def test_version_and_metadata_follow_the_snapshot(server, issued, demo_warehouse) -> None:
    version = server.get(f"/shares/{OWN}/schemas/quality/tables/batch/version", issued["own"])
    assert version.status_code == 200
    run_id = snapshot_info(demo_warehouse).run_id
    assert version.headers["delta-table-version"] == run_id.split("Z")[0].replace("T", "")
    meta = server.get(f"/shares/{OWN}/schemas/quality/tables/batch/metadata", issued["own"])
    protocol, metadata = (json.loads(line) for line in meta.text.splitlines())
    assert protocol == {"protocol": {"minReaderVersion": 1}}
    schema = json.loads(metadata["metaData"]["schemaString"])
    columns = _partition(demo_warehouse, "batch", OWN).columns
    assert [f["name"] for f in schema["fields"]] == columns
    assert metadata["metaData"]["partitionColumns"] == []


def test_query_lists_the_partitions_files_and_each_fetches_byte_for_byte(
    server, issued, demo_warehouse
) -> None:
    snapshot = snapshot_info(demo_warehouse).path
    manifest = json.loads((snapshot / "manifest.json").read_text())["files"]
    for table in ("batch", "deviation", "change_control"):
        files = _files(server, issued["own"], table)
        listed = {n: e for n, e in manifest.items() if e["table"] == table
                  and e["sponsor_id"] == OWN}  # fmt: skip
        assert len(files) == len(listed)
        for file in files:
            body = requests.get(file["url"], timeout=30).content
            digest = hashlib.sha256(body).hexdigest()
            assert digest in {e["sha256"] for e in listed.values()}
            assert len(body) == file["size"]
            assert file["expirationTimestamp"] <= (datetime.now(UTC).timestamp() + 15 * 60) * 1000


# --- refusals -------------------------------------------------------------------------------

FOREIGN_PATHS = [
    f"/shares/{OTHER}", f"/shares/{OTHER}/schemas", f"/shares/{OTHER}/all-tables",
    f"/shares/{OTHER}/schemas/quality/tables",
    f"/shares/{OTHER}/schemas/quality/tables/batch/version",
    f"/shares/{OTHER}/schemas/quality/tables/batch/metadata", f"/shares/{OTHER.lower()}",
    f"/shares/{OWN}/schemas/{OTHER}/tables",
    f"/shares/{OWN}/schemas/quality/tables/nope/metadata",
    f"/shares/{OWN}/schemas/quality/tables/..%2F..%2Fsponsor/metadata",
    f"/shares/{OWN}%2F..%2F{OTHER}/schemas",
]  # fmt: skip


@pytest.mark.parametrize("path", FOREIGN_PATHS)
def test_another_sponsors_share_or_any_unknown_object_is_the_same_404(server, issued, path):
    answer = server.get(path, issued["own"])
    assert answer.status_code == 404, (path, answer.text)
    assert answer.json() == {"errorCode": "RESOURCE_DOES_NOT_EXIST",
                             "message": "Not found, or not shared with this token."}  # fmt: skip
    assert OTHER not in answer.text.replace(path, "")


def test_another_sponsors_table_cannot_be_queried(server, issued) -> None:
    answer = server.post(f"/shares/{OTHER}/schemas/quality/tables/batch/query", issued["own"])
    assert answer.status_code == 404


@pytest.mark.parametrize("who", ["none", "garbage", "expired", "revoked"])
def test_no_live_token_is_401(server, issued, who) -> None:
    secret = {"none": None, "garbage": "x" * 43}.get(who) or issued.get(who)
    for path in ("/shares", f"/shares/{OWN}/all-tables"):
        answer = server.get(path, secret)
        assert answer.status_code == 401, (who, path)
        assert answer.json()["errorCode"] == "UNAUTHENTICATED"


def _tampered(url: str, **change: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | change.pop("query", {})
    path = change.pop("path", parts.path)
    return f"{parts.scheme}://{parts.netloc}{path}?" + "&".join(
        f"{k}={v}" for k, v in query.items()
    )


def test_a_file_link_is_refused_once_tampered_with_or_expired(server, issued, data_root) -> None:
    [file] = _files(server, issued["own"], "sponsor")
    url = file["url"]
    assert requests.get(url, timeout=30).status_code == 200
    path = urlsplit(url).path
    token_id = path.split("/")[3]
    other_token = next(t for t in _tokens(data_root) if t.sponsor_id == OTHER).token_id
    expires = int(parse_qs(urlsplit(url).query)["expires"][0])
    sneak = f"/sponsor/..%2F..%2Fbatch%2Fsponsor_id={OTHER}%2F"
    attempts = {
        "later expiry": _tampered(url, query={"expires": str(expires + 3600)}),
        "other token": _tampered(url, path=path.replace(token_id, other_token)),
        "other table": _tampered(url, path=path.replace("/sponsor/", "/batch/")),
        "traversal": _tampered(url, path=path.replace("/sponsor/", sneak)),
        "no signature": _tampered(url, query={"signature": ""}),
    }  # fmt: skip
    for name, attempt in attempts.items():
        answer = requests.get(attempt, timeout=30)
        assert answer.status_code in (403, 404), (name, answer.status_code)
        assert answer.headers["content-type"].startswith("application/json"), name
    # A link signed by the server's own key for a moment already past.
    key = (data_root / signing.KEY_FILE).read_text().strip().encode()
    name = path.split("/", 4)[-1]
    past = int(datetime.now(UTC).timestamp()) - 1
    stale = _tampered(
        url, query={"expires": str(past), "signature": signing.signature(key, token_id, name, past)}
    )
    assert requests.get(stale, timeout=30).status_code == 403


def test_a_link_dies_with_its_token(server, data_root) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTAL_DATA_DIR", str(data_root))
        token, secret = tokens.create(
            OWN, "short-lived", (datetime.now(UTC) + timedelta(days=2)).date(), "carla"
        )
        [file] = _files(server, secret, "sponsor")
        assert requests.get(file["url"], timeout=30).status_code == 200
        tokens.revoke(token.token_id, "carla")
    assert requests.get(file["url"], timeout=30).status_code == 401


def _tokens(data_root: Path) -> list[tokens.Token]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTAL_DATA_DIR", str(data_root))
        return tokens.list_tokens()


def test_calls_and_files_are_in_the_sponsors_access_log_only(
    server, issued, data_root, demo_warehouse
) -> None:
    _files(server, issued["own"], "batch")
    since = datetime.now(UTC) - timedelta(hours=1)
    until = datetime.now(UTC) + timedelta(hours=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTAL_DATA_DIR", str(data_root))
        own = access_log.entries_for_sponsor(OWN, since, until)
        other = access_log.entries_for_sponsor(OTHER, since, until)
    queried = [e for e in own if e["event"] == "API_REQUEST" and e["page"].endswith("/batch/query")]
    assert queried and queried[0]["row_count"] == _partition(demo_warehouse, "batch", OWN).height
    assert {e["event"] for e in own} >= {"API_REQUEST", "FILE_FETCH", "TOKEN_CREATED"}
    assert not any(
        OWN in (e["username"] or "") or "/shares/NWT" in (e["page"] or "") for e in other
    )


# --- the official client ----------------------------------------------------------------------

CLIENT_SCRIPT = """
import json, sys
import delta_sharing
profile, out = sys.argv[1], sys.argv[2]
client = delta_sharing.SharingClient(profile)
tables = client.list_all_tables()
listed = sorted((t.share, t.schema, t.name) for t in tables)
for t in tables:
    frame = delta_sharing.load_as_pandas(f"{profile}#{t.share}.{t.schema}.{t.name}")
    frame.to_parquet(f"{out}/{t.name}.parquet")
print(json.dumps(listed))
"""


def test_the_official_client_reads_exactly_the_sponsors_partitions(
    server, issued, data_root, demo_warehouse, tmp_path
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTAL_DATA_DIR", str(data_root))
        token = tokens.authenticate(issued["own"])
        profile = tokens.profile(issued["own"], server.endpoint, token)
    path = tmp_path / "nwt.share"
    path.write_text(json.dumps(profile))
    done = run_client(CLIENT_SCRIPT, str(path), str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    listed = json.loads(done.stdout.strip().splitlines()[-1])
    assert listed == sorted([OWN, "quality", t] for t in TABLE_NAMES)
    for table in TABLE_NAMES:
        read = pl.read_parquet(tmp_path / f"{table}.parquet")
        own = _partition(demo_warehouse, table, OWN)
        assert read.columns == own.columns, table
        key = own.columns[0]
        assert read.height == own.height, table
        # Through pandas, times come back in nanoseconds: the values must be the same.
        same_types = read.cast(dict(own.schema))
        assert same_types.sort(key).equals(own.sort(key)), table
