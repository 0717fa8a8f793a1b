"""Streamlit's side doors on a running `streamlit run portal_app.py` server.

The shipped config keeps the agent API off, trusts no user headers and hides error details;
the server's own endpoints serve nothing of a sponsor to a signed-out client; a sign-in
cookie is honoured only when the portal's key signed it for a user who may sign in now.
The browser's websocket is spoken directly (`websockets`, a Streamlit dependency, and
Streamlit's own protobuf messages).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path

import jwt
import pytest
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.asyncio.client import connect

from portal import users
from portal.session import COOKIE_NAME
from tests.page_checks import identifiers
from warehouse import layout
from warehouse.scope import sponsor_ids

ROOT = Path(__file__).resolve().parents[2]
KEY = "side-door-test-key-" + "k" * 40


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


OPTIONS = ("server.enableAgentApi", "server.trustedUserHeaders", "client.showErrorDetails",
           "server.enableXsrfProtection")  # fmt: skip


def effective_config() -> dict[str, object]:
    """The options a server started in this folder runs with (.streamlit/config.toml read)."""
    script = (
        "import json; from streamlit import config; "
        f"print(json.dumps({{k: config.get_option(k) for k in {OPTIONS!r}}}, default=str))"
    )
    shown = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                           text=True, timeout=120, check=True)  # fmt: skip
    return json.loads(shown.stdout.strip().splitlines()[-1])


def test_shipped_config_keeps_the_side_doors_shut() -> None:
    config = effective_config()
    assert config["server.enableAgentApi"] is False
    assert not config["server.trustedUserHeaders"]
    assert config["client.showErrorDetails"] == "none"
    assert config["server.enableXsrfProtection"] is True


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo_warehouse: Path):
    """`streamlit run portal_app.py` on a free port over a copy of the demo warehouse."""
    data = tmp_path_factory.mktemp("side-doors")
    env = {**os.environ, "PORTAL_DATA_DIR": str(data), "PORTAL_BOOTSTRAP": "off",
           "PORTAL_COOKIE_KEY": KEY, "PORTAL_MODE": "demo"}  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTAL_DATA_DIR", str(data))
        users.ensure_demo_users()
        shutil.copytree(demo_warehouse, layout.demo_warehouse(), symlinks=True)
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "portal_app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=5):
                break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("the portal server did not start")
    yield base, data
    process.terminate()
    process.wait(timeout=30)


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode(errors="replace")


@pytest.fixture(scope="module")
def everyone(server) -> set[str]:
    """Every sponsor's identifiers: none may reach a signed-out client."""
    warehouse = server[1] / "demo" / "warehouse"
    return set().union(*(identifiers(warehouse, s) for s in sponsor_ids(warehouse)))


ENDPOINTS = [
    "/_stcore/health",
    "/_stcore/host-config",
    "/_stcore/allowed-message-origins",
    "/_stcore/script-health-check",
    "/_stcore/metrics",
    "/_stcore/agent/sessions",
    "/_stcore/agent/run",
    "/_stcore/agent",
    "/app/static/manifest.json",
    "/app/static/../../portal.sqlite",
    "/media/0123456789abcdef.csv",
    "/component/x/../../portal.sqlite",
    "/home",
    "/batch-list?sponsor=NWT",
]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_endpoints_serve_no_sponsor_data_signed_out(server, everyone, path: str) -> None:
    base = server[0]
    status, body = fetch(base + path)
    assert not [name for name in everyone if name in body], path
    assert "sqlite" not in body.lower() or status >= 400
    if "/agent" in path:
        assert status in (404, 405, 403), f"agent API answered {status}"


# --- the websocket a browser speaks -----------------------------------------------------------


async def _session(base: str, page: str, cookie: str | None) -> str:
    """One browser session: open `page` with an optional sign-in cookie; all it was sent."""
    headers = {"Cookie": f"{COOKIE_NAME}={cookie}"} if cookie else {}
    url = base.replace("http", "ws") + "/_stcore/stream"
    async with connect(url, additional_headers=headers, subprotocols=["streamlit"], proxy=None,
                       max_size=None) as connection:  # fmt: skip
        message = BackMsg()
        message.rerun_script.page_name = page
        message.rerun_script.query_string = ""
        await connection.send(message.SerializeToString())
        seen: list[str] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            raw = await asyncio.wait_for(connection.recv(), timeout=90)
            forward = ForwardMsg()
            forward.ParseFromString(raw)
            seen.append(str(forward))
            if forward.WhichOneof("type") == "script_finished":
                break
    return "\n".join(seen)


def open_page(base: str, page: str, cookie: str | None = None) -> str:
    return asyncio.run(_session(base, page, cookie))


def token(username: str, *, key: str = KEY, days: float = 1.0, algorithm: str = "HS256") -> str:
    payload = {
        "username": username,
        "exp_date": (datetime.now() + timedelta(days=days)).timestamp(),
    }
    return jwt.encode(payload, key, algorithm=algorithm)


def _tampered_username() -> str:
    header, payload, signature = token("priya").split(".")
    forged = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(payload).replace(b'"priya"', b'"bruno"')
    ).decode()
    return f"{header}.{forged}.{signature}"


def _unsigned() -> str:
    return jwt.encode({"username": "bruno", "exp_date": time.time() + 3600}, None, algorithm="none")


def signed_in(sent: str) -> bool:
    return "Sign out" in sent or "Sponsor: " in sent


def test_a_valid_cookie_signs_in(server) -> None:
    """The positive control: without it the refusals below would prove nothing."""
    base, _ = server
    sent = open_page(base, "home", token("priya"))
    assert signed_in(sent) and "Sponsor: NWT" in sent


COOKIES = [
    ("wrong key", lambda: token("bruno", key="not-the-portal-key-" + "x" * 40)),
    ("expired exp_date", lambda: token("bruno", days=-1)),
    ("username changed after signing", _tampered_username),
    ("alg none", _unsigned),
    ("unknown user, right key", lambda: token("mallory")),
    ("garbage", lambda: "not.a.jwt"),
]


@pytest.mark.parametrize("make", [c[1] for c in COOKIES], ids=[c[0] for c in COOKIES])
def test_a_forged_cookie_is_refused(server, everyone, make) -> None:
    base = server[0]
    sent = open_page(base, "batch-list", make())
    assert not signed_in(sent)
    assert "Username" in sent  # the sign-in form, nothing else
    assert not [name for name in everyone if name in sent]


@pytest.mark.parametrize(
    "page", ["overview", "batches", "users_admin", "demo_tour", "home", "users", "guided-tour"]
)
def test_a_signed_out_session_cannot_open_a_page_by_name(server, everyone, page: str) -> None:
    """Neither a url_path nor a script stem (pages/ auto-discovery) runs a page signed out."""
    base = server[0]
    sent = open_page(base, page)
    assert "Username" in sent and not signed_in(sent)
    assert not [name for name in everyone if name in sent]
