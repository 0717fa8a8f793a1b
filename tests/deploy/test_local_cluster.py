"""The deployment on one machine (`bash deploy/local-cluster.sh up`): PostgreSQL, SeaweedFS,
two portal and two sharing-server replicas behind nginx. Two sponsors sign in through nginx
in real Chromium and see only their own; a sponsor's S3 identity is refused everyone else's
objects; the replica serving a signed-in user is killed and the user's next click lands on
the other replica, signed in, on the same page, with the access log whole; `down` stops
every process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pyarrow.fs as pafs
import pytest
import requests

from tests.browser_support import (
    CHROMIUM,
    LAUNCH_ARGS,
    open_from_sidebar,
    open_signed_out,
    require_chromium,
    seen_text,
    settle,
    sign_in,
    wait_for_session_cookie,
)
from tests.page_harness import ROOT

SCRIPT = ROOT / "deploy" / "local-cluster.sh"
USERS = {"priya": ("priya-demo-2026", "NWT"), "bruno": ("bruno-demo-2026", "CTB")}
PREFIX = "portal/sponsor-portal"


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict]:
    """The cluster as README starts it, in a folder of its own; stopped and removed after."""
    folder = Path(tempfile.mkdtemp(prefix="portal-cluster-"))  # PostgreSQL's user reaches /tmp
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "AWS_"))}
    env["PORTAL_CLUSTER_DIR"] = str(folder)
    try:
        started = subprocess.run(["bash", str(SCRIPT), "up", "--replicas", "2"], env=env,
                                 capture_output=True, text=True, timeout=600)  # fmt: skip
        assert started.returncode == 0, started.stderr[-3000:]
        state = json.loads((folder / "state.json").read_text())
        assert f"Sponsor Portal: {state['url']}" in started.stdout
        yield state | {"folder": folder, "env": env}
    finally:
        subprocess.run(["bash", str(SCRIPT), "down"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


def _signed_in(browser, url: str, username: str):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    open_signed_out(page, url)
    sign_in(page, username, USERS[username][0])
    settle(page, "Overview")
    wait_for_session_cookie(page)
    return context, page


def _page_views(cluster: dict, username: str) -> list[tuple]:
    with psycopg.connect(_owner_url(cluster)) as conn:
        return conn.execute(
            "SELECT id, at, event, page FROM access_log WHERE username = %s ORDER BY id",
            (username,),
        ).fetchall()


def _owner_url(cluster: dict) -> str:
    port = cluster["ports"]["postgres"]
    return f"postgresql://portal_owner:{cluster['pg_password']}@127.0.0.1:{port}/portal"


def test_status_names_every_process_up(cluster):
    shown = subprocess.run(["bash", str(SCRIPT), "status"], env=cluster["env"],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert shown.returncode == 0, shown.stdout
    for name in ("postgres", "s3", "nginx", "portal-1", "portal-2", "share-1", "share-2"):
        assert any(line.split()[:2] == [name, "up"] for line in shown.stdout.splitlines()), name
    assert cluster["url"] in shown.stdout


def _listening(pid: int) -> list[str]:
    """The addresses a process listens on (TCP, from /proc: no tool needed)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                address, port = fields[1].split(":")
                found.append(f"{_address(address)}:{int(port, 16)}")
    return found


def _address(hexed: str) -> str:
    raw = bytes.fromhex(hexed)
    words = [raw[i : i + 4][::-1] for i in range(0, len(raw), 4)]  # little-endian words
    packed = b"".join(words)
    if len(packed) == 16 and packed[:12] == b"\0" * 10 + b"\xff\xff":
        packed = packed[12:]  # an IPv4 address mapped into IPv6
    return ".".join(map(str, packed)) if len(packed) == 4 else packed.hex()


def test_every_port_is_on_loopback_only(cluster):
    everything = [a for pid in cluster["pids"].values() for a in _listening(pid)]
    assert len(everything) >= 7, everything  # postgres, weed's, nginx, 2+2 replicas
    assert all(a.startswith("127.0.0.1:") for a in everything), everything


def test_two_sponsors_through_nginx_see_only_their_own(cluster, browser):
    seen = {}
    for username in USERS:
        context, page = _signed_in(browser, cluster["url"], username)
        open_from_sidebar(page, "Deviations & OOS")
        seen[username] = seen_text(page)
        context.close()
    for username, (_, sponsor) in USERS.items():
        other = next(s for u, (_, s) in USERS.items() if u != username)
        assert sponsor in seen[username] or "Deviations" in seen[username]
        assert other not in seen[username].split(), (username, other)


def test_a_sponsors_s3_identity_is_refused_every_other_sponsors_objects(cluster):
    settings = tomllib.loads((cluster["folder"] / "identities.toml").read_text())["s3"]
    own = settings["sponsors"]["NWT"]
    fs = pafs.S3FileSystem(access_key=own["access_key_id"], secret_key=own["secret_access_key"],
                           endpoint_override=settings["endpoint_url"].removeprefix("http://"),
                           scheme="http", region="us-east-1")  # fmt: skip
    run_id = json.loads(fs.open_input_stream(f"{PREFIX}/current.json").read())["run_id"]
    assert fs.get_file_info(pafs.FileSelector(f"{PREFIX}/tenants/NWT/{run_id}", recursive=True))
    for path in (f"{PREFIX}/tenants/CTB/{run_id}/manifest.json",
                 f"{PREFIX}/tenants/CTB/{run_id}/batch/sponsor_id=CTB/part-0.parquet",
                 f"{PREFIX}/cmo/{run_id}/manifest.json"):  # fmt: skip
        with pytest.raises(OSError, match="ACCESS_DENIED|403"):
            fs.open_input_stream(path).read()
    with pytest.raises(OSError, match="ACCESS_DENIED|403"):
        fs.get_file_info(pafs.FileSelector(f"{PREFIX}/tenants/CTB", recursive=True))


def test_the_sharing_replicas_answer_through_nginx(cluster):
    env = cluster["env"] | {
        "PORTAL_DATA_DIR": str(cluster["folder"] / "data"),
        "PORTAL_DATABASE_URL": _owner_url(cluster).replace("portal_owner", "portal_web"),
    }
    made = subprocess.run(
        ["python", "-m", "portal", "tokens", "create", "--sponsor", "NWT", "--label", "cluster",
         "--expires", str(date.today() + timedelta(days=30)),
         "--endpoint", f"{cluster['url']}/delta-sharing",
         "--by", "carla", "--out", str(cluster["folder"] / "nwt.share")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    profile = json.loads((cluster["folder"] / "nwt.share").read_text())
    headers = {"Authorization": f"Bearer {profile['bearerToken']}"}
    for _ in range(4):  # round robin: both replicas answer the same
        shares = requests.get(f"{cluster['url']}/delta-sharing/shares", headers=headers,
                              timeout=30)  # fmt: skip
        assert shares.status_code == 200 and [s["name"] for s in shares.json()["items"]] == ["NWT"]
    query = requests.post(f"{cluster['url']}/delta-sharing/shares/NWT/schemas/quality/tables/"
                          "batch/query", headers=headers, json={}, timeout=30)  # fmt: skip
    (url,) = [json.loads(x)["file"]["url"] for x in query.text.splitlines() if '"file"' in x]
    assert url.startswith(cluster["url"])  # links name nginx, not a replica
    assert requests.get(url, timeout=30).content[:4] == b"PAR1"


def test_a_new_run_reaches_every_replica(cluster):
    """The nightly job publishes again: each sharing replica, asked directly, names the new
    version within the pointer interval (5 s); the portal replicas read it the same way."""
    folder = cluster["folder"]
    identities = json.loads((folder / "s3" / "identities.json").read_text())["identities"]
    (writer,) = [i["credentials"][0] for i in identities if i["name"] == "writer"]
    env = cluster["env"] | {
        "PORTAL_DATA_DIR": str(folder / "data"), "AWS_ACCESS_KEY_ID": writer["accessKey"],
        "AWS_SECRET_ACCESS_KEY": writer["secretKey"], "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{cluster['ports']['s3'][0]}",
    }  # fmt: skip
    profile = json.loads((folder / "nwt.share").read_text())
    headers = {"Authorization": f"Bearer {profile['bearerToken']}"}

    def versions() -> set[str]:
        answers = [
            requests.get(f"http://127.0.0.1:{port}/delta-sharing/shares/NWT/schemas/quality/"
                         "tables/batch/version", headers=headers, timeout=30)
            for port in cluster["ports"]["share"]
        ]  # fmt: skip
        return {a.headers["delta-table-version"] for a in answers}

    (before,) = versions()
    plant = folder / "data" / "demo" / "source" / "plant.sqlite"
    published = subprocess.run(
        ["python", "-m", "etl", "run", "--source", str(plant), "--warehouse",
         "s3://portal/sponsor-portal", "--full"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert published.returncode == 0, published.stderr[-2000:]
    deadline = time.monotonic() + 30
    while (now := versions()) == {before}:
        assert time.monotonic() < deadline, "a replica kept the old run"
        time.sleep(0.5)
    deadline = time.monotonic() + 10
    while len(now) > 1 and time.monotonic() < deadline:
        time.sleep(0.5)
        now = versions()
    assert len(now) == 1 and now != {before}


def test_a_killed_replica_hands_its_user_to_the_other_signed_in_on_the_same_page(cluster, browser):
    context, page = _signed_in(browser, cluster["url"], "priya")
    open_from_sidebar(page, "CAPA aging")
    on_page = page.url
    answer = context.request.get(on_page)
    serving = answer.headers["x-portal-replica"].rsplit(":", 1)[1]
    number = cluster["ports"]["portal"].index(int(serving)) + 1
    before = _page_views(cluster, "priya")
    assert before and before[0][2] == "SIGN_IN"

    os.killpg(cluster["pids"][f"portal-{number}"], signal.SIGKILL)
    # No reload: the browser's websocket reconnects through nginx to the other replica, which
    # signs the user in by the cookie and runs the page the browser shows, CAPA aging, again.
    deadline = time.monotonic() + 60
    while not [r for r in _page_views(cluster, "priya")[len(before) :] if r[3] == "capa-aging"]:
        assert time.monotonic() < deadline, "the page did not run again on the other replica"
        time.sleep(0.5)
    assert page.url == on_page and "Password" not in seen_text(page)
    open_from_sidebar(page, "Deviations & OOS")  # the next click works there
    assert "Password" not in seen_text(page)
    still = context.request.get(page.url)
    assert still.headers["x-portal-replica"].rsplit(":", 1)[1] != serving

    after = _page_views(cluster, "priya")
    assert after[: len(before)] == before  # nothing lost
    new = [(event, shown) for _, _, event, shown in after[len(before) :]]
    assert new == [("SIGN_IN", None), ("PAGE_VIEW", "capa-aging"), ("PAGE_VIEW", "deviations-oos")]
    context.close()


def test_down_stops_every_process(cluster):
    stopped = subprocess.run(["bash", str(SCRIPT), "down"], env=cluster["env"],
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert stopped.returncode == 0, stopped.stderr
    for name, pid in cluster["pids"].items():
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid), name
    with pytest.raises(requests.ConnectionError):
        requests.get(cluster["url"], timeout=5)


def _zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
