"""Reading the warehouse on S3 (a real SeaweedFS on loopback): each sponsor's scope is fetched
with that sponsor's own identity and holds exactly what a local scope of the same run holds;
a misconfigured or missing identity, a tampered object and a store that stopped answering are
refused in words; a new run is picked up; pages and the sharing server work unchanged."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import polars as pl
import pyarrow.fs as pafs
import pytest
from streamlit.testing.v1 import AppTest

from etl import publish_s3
from etl.run import run_etl
from portal import tokens, users
from portal.share.tables import TABLE_NAMES
from tests.page_harness import ROOT, principal, run_page, shown_text
from tests.s3_support import (
    BUCKET,
    PREFIX,
    ObjectStore,
    running_object_store,
    write_identities,
)
from tests.share_support import issue_tokens, run_client, start_share_server, stop_share_server
from warehouse import layout, s3, s3_scope
from warehouse.contract import TABLES
from warehouse.scope import (
    DataUnavailable,
    ScopeError,
    UnknownSponsor,
    open_cmo_scope,
    open_sponsor_scope,
    snapshot_info,
    sponsor_ids,
)

OWN, OTHER = "NWT", "CTB"
WRITER_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


@pytest.fixture(scope="module")
def sponsors(demo_warehouse) -> list[str]:
    manifest = json.loads((layout.current_snapshot(demo_warehouse) / "manifest.json").read_text())
    return sorted({entry["sponsor_id"] for entry in manifest["files"].values()})


@pytest.fixture(scope="module")
def object_store(tmp_path_factory, sponsors, demo_warehouse):
    """The store, holding the demo warehouse's run as the nightly job publishes it."""
    with running_object_store(tmp_path_factory.mktemp("s3-read"), sponsors) as store:
        publish_s3.publish(layout.current_snapshot(demo_warehouse), s3.Location.parse(store.url),
                           store.fs(), lambda stage: None)  # fmt: skip
        yield store


@pytest.fixture
def store(object_store: ObjectStore, sponsors, tmp_path, monkeypatch) -> ObjectStore:
    """The portal's view of the store: the identities file (every sponsor its own identity),
    no AWS keys in the environment, the pointer read on every call."""
    ids = write_identities(object_store, tmp_path / "identities.toml",
                           {s: f"sponsor-{s}" for s in sponsors})  # fmt: skip
    monkeypatch.setenv(s3.IDENTITIES_ENV, str(ids))
    for name in (*WRITER_KEYS, "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(s3_scope.POINTER_ENV, "0")
    _forget()
    yield object_store
    _forget()


def _forget() -> None:
    s3_scope.forget_pointers()
    s3_scope._partition_files.cache_clear()
    s3_scope.cmo_manifest.cache_clear()


def _same(s3_frame: pl.DataFrame, local: pl.DataFrame) -> bool:
    key = local.columns
    return s3_frame.columns == local.columns and s3_frame.sort(key).equals(local.sort(key))


# --- what a scope holds ---------------------------------------------------------------------


def test_a_sponsor_scope_on_s3_holds_exactly_its_local_partitions(store, demo_warehouse):
    info = snapshot_info(store.url)
    assert info.run_id == snapshot_info(demo_warehouse).run_id and info.path is None
    for sponsor in (OWN, OTHER):
        remote, local = (
            open_sponsor_scope(store.url, sponsor),
            open_sponsor_scope(demo_warehouse, sponsor),
        )
        for table in TABLES:
            sql = f"SELECT * FROM {table.name}"
            got, want = remote.frame("all", sql), local.frame("all", sql)
            assert _same(got, want), (sponsor, table.name)
            assert set(got["sponsor_id"]) <= {sponsor}, table.name
        assert remote.frame("n", "SELECT count(*) FROM batch_event").item() > 0
        remote.close(), local.close()


def test_the_cmo_scope_and_sponsor_list_match_the_local_run(store, demo_warehouse):
    assert sponsor_ids(store.url) == sponsor_ids(demo_warehouse)
    remote, local = open_cmo_scope(store.url), open_cmo_scope(demo_warehouse)
    for table in ("batch", "batch_event", "deviation"):
        sql = f"SELECT sponsor_id, count(*) AS n FROM {table} GROUP BY ALL"
        assert _same(remote.frame("n", sql), local.frame("n", sql)), table


def test_a_scope_on_s3_reads_no_file_and_no_network(store, demo_warehouse):
    scope = open_sponsor_scope(store.url, OWN)
    other = layout.partition_dir(snapshot_info(demo_warehouse).path, "batch", OTHER)
    for sql in (
        f"SELECT * FROM read_parquet('{other}/*.parquet')",
        f"SELECT * FROM read_parquet('{store.endpoint}/{BUCKET}/{PREFIX}/x.parquet')",
        "SET enable_external_access = true",
    ):
        with pytest.raises(Exception):  # noqa: B017 -- any refusal; the point is no rows
            scope._con.sql(sql).fetchall()


# --- identities -----------------------------------------------------------------------------


def test_a_sponsor_without_its_own_identity_is_refused_though_the_cmos_could_read_it(
    store, sponsors, tmp_path, monkeypatch
):
    ids = write_identities(store, tmp_path / "without.toml",
                           {s: f"sponsor-{s}" for s in sponsors if s != OWN})  # fmt: skip
    monkeypatch.setenv(s3.IDENTITIES_ENV, str(ids))
    with pytest.raises(ScopeError, match=f"No storage identity of its own .* sponsor {OWN}"):
        open_sponsor_scope(store.url, OWN)
    assert open_sponsor_scope(store.url, OTHER).sponsor_id == OTHER


def test_a_sponsor_given_another_sponsors_identity_is_refused_by_the_store(
    store, sponsors, tmp_path, monkeypatch
):
    """Above the storage, a misconfiguration (or a bug) pairs NWT with CTB's identity: the
    store itself answers 403 for NWT's objects, so nothing of NWT's reaches a CTB reader and
    no CTB object is read as NWT's."""
    swapped = {s: f"sponsor-{s}" for s in sponsors} | {OWN: f"sponsor-{OTHER}"}
    monkeypatch.setenv(s3.IDENTITIES_ENV, str(write_identities(store, tmp_path / "x.toml",
                                                                swapped)))  # fmt: skip
    with pytest.raises(ScopeError, match=f"refused sponsor {OWN}'s own identity"):
        open_sponsor_scope(store.url, OWN)


def test_a_bug_asking_for_another_sponsors_object_gets_403(store):
    """The reader's own code, given another sponsor's key with this sponsor's identity."""
    info = snapshot_info(store.url)
    theirs = s3_scope.partition_files(info, OTHER)
    location = s3.Location.parse(store.url)
    wanted = [(location.tenant(OTHER, info.run_id, name), entry)
              for name, entry in theirs.items()]  # fmt: skip
    with pytest.raises(ScopeError, match="refused"):
        dict(s3_scope._load(s3.reader(OWN), wanted, "refused"))


def test_an_unknown_sponsor_is_refused_naming_nothing_else(store, sponsors, tmp_path, monkeypatch):
    for unknown in ("ZZZ", "../NWT", "SITE2", "NWT/../CTB"):
        with pytest.raises(ScopeError, match="Unknown sponsor|No storage identity") as refused:
            open_sponsor_scope(store.url, unknown)
        assert not set(str(refused.value).replace(",", " ").split()) & set(sponsors)
    # Given an identity (its own prefix, where nothing was published): unknown, in words.
    known = {s: f"sponsor-{s}" for s in sponsors} | {"ZZZ": f"sponsor-{OWN}"}
    monkeypatch.setenv(s3.IDENTITIES_ENV, str(write_identities(store, tmp_path / "z.toml",
                                                                known)))  # fmt: skip
    with pytest.raises(ScopeError, match="Unknown sponsor|refused sponsor ZZZ"):
        open_sponsor_scope(store.url, "ZZZ")


# --- integrity ------------------------------------------------------------------------------


def test_an_object_swapped_in_the_sponsors_prefix_is_never_read(store):
    """The writer's identity (or an attacker with it) overwrites NWT's batch file with CTB's
    bytes, then adds a stray object: the scope refuses, naming no file."""
    info = snapshot_info(store.url)
    location = s3.Location.parse(store.url)
    writer = store.fs()
    own = location.tenant(OWN, info.run_id, f"batch/sponsor_id={OWN}/part-0.parquet")
    other = location.tenant(OTHER, info.run_id, f"batch/sponsor_id={OTHER}/part-0.parquet")
    original = s3.read_object(writer, own)
    try:
        s3.write_object(writer, own, s3.read_object(writer, other))
        with pytest.raises(ScopeError, match="integrity check") as refused:
            open_sponsor_scope(store.url, OWN)
        assert "parquet" not in str(refused.value) and OTHER not in str(refused.value)
    finally:
        s3.write_object(writer, own, original)
    stray = location.tenant(OWN, info.run_id, f"batch/sponsor_id={OWN}/part-9.parquet")
    s3.write_object(writer, stray, original)
    try:
        _forget()
        with pytest.raises(ScopeError, match="integrity check"):
            open_sponsor_scope(store.url, OWN)
    finally:
        writer.delete_file(stray)
    _forget()
    assert open_sponsor_scope(store.url, OWN).frame("n", "SELECT count(*) FROM batch").item()


# --- runs, and the store going away ----------------------------------------------------------


def test_a_new_run_reaches_readers_within_the_pointer_interval(
    store, demo_plant, tmp_path, monkeypatch
):
    before = snapshot_info(store.url).run_id
    monkeypatch.setenv(s3_scope.POINTER_ENV, "3600")
    assert snapshot_info(store.url).run_id == before  # remembered for the interval
    newer = tmp_path / "newer"
    run_etl(demo_plant.path, newer, full=True)
    with monkeypatch.context() as writer:
        for name, value in store.env().items():
            writer.setenv(name, value)
        publish_s3.publish(layout.current_snapshot(newer), s3.Location.parse(store.url),
                           store.fs(), lambda stage: None)  # fmt: skip
    assert snapshot_info(store.url).run_id == before
    monkeypatch.setenv(s3_scope.POINTER_ENV, "0")
    run_id = snapshot_info(store.url).run_id
    assert run_id != before and open_sponsor_scope(store.url, OWN).snapshot.run_id == run_id


def test_a_stopped_store_is_data_temporarily_unavailable_and_reading_resumes(store):
    assert open_sponsor_scope(store.url, OWN)
    store.stop()
    try:
        for attempt in (lambda: snapshot_info(store.url),
                        lambda: open_sponsor_scope(store.url, OWN)):  # fmt: skip
            with pytest.raises(DataUnavailable) as down:
                attempt()
            assert str(down.value).startswith("The published data cannot be reached right now")
            assert store.endpoint.split("//")[1] not in str(down.value)
    finally:
        store.start()
    _forget()
    assert open_sponsor_scope(store.url, OWN).sponsor_id == OWN


def test_a_store_stopping_mid_read_leaves_no_scope_and_reading_resumes(store, monkeypatch):
    """The reader resolved the run and listed the sponsor's files; then the store stops before
    the files are fetched: the open fails in words, nothing half-read is kept, and the next
    open after the store is back reads everything."""
    monkeypatch.setenv(s3_scope.POINTER_ENV, "3600")
    info = snapshot_info(store.url)
    assert s3_scope.partition_files(info, OWN)  # listed (and remembered) before the stop
    store.stop()
    try:
        with pytest.raises(DataUnavailable, match="cannot be reached right now"):
            open_sponsor_scope(store.url, OWN)
    finally:
        store.start()
    scope = open_sponsor_scope(store.url, OWN)
    assert scope.snapshot == info and scope.frame("n", "SELECT count(*) FROM batch").item() > 0


def _closed_port_containing_403() -> int:
    """A loopback port in 40300..40399 that nothing listens on (it was free a moment ago)."""
    for port in range(40300, 40400):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    pytest.fail("every port from 40300 to 40399 is in use")


def test_a_store_that_cannot_be_reached_on_a_port_holding_403_is_unavailable_not_refusing():
    """A failure to connect names the endpoint; on port 403xx that text holds "403", which
    once read as the store refusing the identity (a CI run failed so)."""
    port = _closed_port_containing_403()
    fs = pafs.S3FileSystem(
        access_key="reader", secret_key="secret", endpoint_override=f"http://127.0.0.1:{port}",
        scheme="http", region="us-east-1", connect_timeout=1, request_timeout=1,
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=1),
    )  # fmt: skip
    for request in (lambda: fs.get_file_info(f"{BUCKET}/{PREFIX}/current.json"),
                    lambda: s3.read_object(fs, f"{BUCKET}/{PREFIX}/current.json")):  # fmt: skip
        with pytest.raises(DataUnavailable):
            s3_scope._store(request, refused="refused")


@contextmanager
def damaged_pointer(store: ObjectStore) -> Iterator[None]:
    """current.json cut short while inside; then the published one again."""
    fs, pointer = store.fs(), s3.Location.parse(store.url).pointer()
    whole = s3.read_object(fs, pointer)
    s3.write_object(fs, pointer, whole[: len(whole) // 2])
    try:
        yield
    finally:
        s3.write_object(fs, pointer, whole)


def test_a_damaged_pointer_is_said_in_words_and_reading_resumes_once_it_is_replaced(store):
    with damaged_pointer(store):
        with pytest.raises(ScopeError) as damaged:
            snapshot_info(store.url)
        assert not isinstance(damaged.value, DataUnavailable)  # no use trying again in a minute
        assert str(damaged.value) == s3_scope.POINTER
        page = run_page("overview.py", principal("sponsor_qa", OWN), store.url)
        assert not page.exception
        assert [e.value for e in page.error] == [s3_scope.POINTER]
    assert open_sponsor_scope(store.url, OWN).frame("n", "SELECT count(*) FROM batch").item()


def test_the_signed_in_portal_says_a_damaged_pointer_in_words_and_keeps_its_sidebar(
    store, demo_users_store, tmp_path, monkeypatch
):
    """The whole app, not one page: its sidebar header reads the pointer before the page."""
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path / "data"))
    layout.portal_db().parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(demo_users_store, layout.portal_db())
    monkeypatch.setenv("PORTAL_MODE", "production")
    monkeypatch.setenv("PORTAL_COOKIE_KEY", "k" * 48)
    monkeypatch.setenv("PORTAL_BOOTSTRAP", "off")
    monkeypatch.setenv("PORTAL_WAREHOUSE", store.url)
    monkeypatch.delenv("PORTAL_IDLE_MINUTES", raising=False)
    at = AppTest.from_file(str(ROOT / "portal_app.py"), default_timeout=60).run()
    at.text_input(key="sign_in_username").input("priya")
    at.text_input(key="sign_in_password").input(users.demo_password("priya"))
    with damaged_pointer(store):
        at = at.button[0].click().run()
    assert not at.exception
    assert at.session_state["_principal"].sponsor_id == OWN
    assert [e.value for e in at.error] == [s3_scope.POINTER]
    assert [w.value for w in at.sidebar.warning] == ["The published data cannot be read right now."]
    assert "Sign out" in [b.label for b in at.sidebar.button]
    at = at.run()  # the pointer is whole again: the page reads
    assert not at.exception and not at.error
    assert any(c.value.startswith("Data as of ") for c in at.sidebar.caption)


def test_a_page_on_s3_shows_what_it_shows_on_the_local_run(store, demo_warehouse):
    qa = principal("sponsor_qa", OWN)
    on_s3 = run_page("overview.py", qa, store.url)
    local = run_page("overview.py", qa, demo_warehouse)
    assert not on_s3.exception and not local.exception
    assert shown_text(on_s3) == shown_text(local)
    assert "Unknown sponsor" not in shown_text(on_s3)


def test_a_page_says_data_unavailable_while_the_store_is_stopped(store):
    store.stop()
    try:
        page = run_page("overview.py", principal("sponsor_qa", OTHER), store.url)
    finally:
        store.start()
    assert not page.exception
    assert [e.value for e in page.error] == [
        "The published data cannot be reached right now: the object store does not answer. "
        "Nothing was lost; try again in a minute."
    ]


# --- the sharing server on S3 ---------------------------------------------------------------

CLIENT_SCRIPT = """
import json, sys
import delta_sharing
profile, out = sys.argv[1], sys.argv[2]
client = delta_sharing.SharingClient(profile)
for t in client.list_all_tables():
    frame = delta_sharing.load_as_pandas(f"{profile}#{t.share}.{t.schema}.{t.name}")
    frame.to_parquet(f"{out}/{t.name}.parquet")
print("read")
"""


def test_the_sharing_server_on_s3_serves_the_sponsors_tables_to_the_official_client(
    store, demo_warehouse, tmp_path
):
    data_root = tmp_path / "data"
    issued = issue_tokens(data_root, OWN, OTHER)
    server = start_share_server(store.url, data_root, tmp_path / "share.log")
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PORTAL_DATA_DIR", str(data_root))
            token = tokens.authenticate(issued["own"])
            profile = tokens.profile(issued["own"], server.endpoint, token)
        (tmp_path / "own.share").write_text(json.dumps(profile))
        done = run_client(CLIENT_SCRIPT, str(tmp_path / "own.share"), str(tmp_path))
        assert done.returncode == 0, done.stderr[-3000:]
        local = open_sponsor_scope(demo_warehouse, OWN)
        for table in TABLE_NAMES:
            read = pl.read_parquet(tmp_path / f"{table}.parquet")
            want = local.frame("all", f"SELECT * EXCLUDE (sponsor_id) FROM {table}")
            assert read.height == want.height and read.columns == want.columns, table

        answer = server.post(f"/shares/{OWN}/schemas/quality/tables/batch/query", issued["own"])
        (url,) = [json.loads(x)["file"]["url"] for x in answer.text.splitlines() if '"file"' in x]
        whole = server_get(url)
        assert whole.status_code == 200 and whole.content[:4] == b"PAR1"
        tail = server_get(url, headers={"Range": "bytes=-8"})
        assert tail.status_code == 206 and tail.content == whole.content[-8:]
        middle = server_get(url, headers={"Range": "bytes=4-99"})
        assert middle.status_code == 206 and middle.content == whole.content[4:100]
        assert server_get(url, method="HEAD").headers["content-length"] == str(len(whole.content))

        store.stop()
        try:
            down = server.get("/shares", issued["own"])
        finally:
            store.start()
        # Whether the pointer or the scope is what failed, the answer is the same 503.
        assert down.status_code == 503 and down.headers["retry-after"], down.text
        assert down.json()["errorCode"] == "TEMPORARILY_UNAVAILABLE"

        with damaged_pointer(store):
            # The sponsor's IT reading a dataset and the sharing client: words, not a 500.
            for answer in (
                server_get(
                    f"{server.url}/api/v1/datasets/batches",
                    headers={"Authorization": f"Bearer {issued['own']}"},
                ),  # fmt: skip
                server.post(f"/shares/{OWN}/schemas/quality/tables/batch/query", issued["own"]),
            ):
                assert answer.status_code == 503, answer.text
                assert answer.json()["errorCode"] == "SNAPSHOT_UNAVAILABLE"
    finally:
        stop_share_server(server)


def server_get(url: str, method: str = "GET", **kwargs):
    import requests

    return requests.request(method, url, timeout=30, **kwargs)


def test_a_missing_identities_file_is_refused_naming_no_path_to_the_reader(
    store, tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv(s3.IDENTITIES_ENV, str(tmp_path / "missing.toml"))
    with pytest.raises(ScopeError, match="storage settings cannot be read") as refused:
        open_sponsor_scope(store.url, OWN)
    assert "missing.toml" not in str(refused.value) and "/" not in str(refused.value)
    assert "missing.toml, which does not exist" in caplog.text  # the CMO's IT reads the log
    assert UnknownSponsor().args == ("Unknown sponsor.",)
