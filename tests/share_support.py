"""The sharing server as tests meet it: started as README says (`python -m warehouse share`)
on a free loopback port over a warehouse, tokens issued through portal.tokens, and the
official `delta-sharing` client in a virtual environment of its own (it pins pyarrow <= 23
and pandas < 3, which our own environment does not)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import venv
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from portal import tokens
from tests.browser_support import free_port
from tests.page_harness import ROOT

DELTA_SHARING_CLIENT = "delta-sharing==1.4.2"
CLIENT_VENV = Path(os.environ.get("PORTAL_TEST_SHARING_VENV", Path.home() / ".cache" /
                                  "sponsor-portal" / "delta-sharing-1.4.2"))  # fmt: skip


@dataclass
class ShareServer:
    process: subprocess.Popen
    url: str  # http://127.0.0.1:PORT
    log: Path

    @property
    def endpoint(self) -> str:
        return f"{self.url}/delta-sharing"

    def get(self, path: str, secret: str | None, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return requests.get(self.endpoint + path, headers=headers, timeout=30, **kwargs)

    def post(self, path: str, secret: str | None, body: object = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return requests.post(self.endpoint + path, headers=headers, json=body or {}, timeout=30)


def start_share_server(warehouse: Path, data_root: Path, log: Path) -> ShareServer:
    port = free_port()
    env = {**os.environ, "PORTAL_DATA_DIR": str(data_root)}
    command = [sys.executable, "-m", "warehouse", "share", "--host", "127.0.0.1",
               "--port", str(port), "--warehouse", str(warehouse)]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT)  # fmt: skip
    server = ShareServer(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the sharing server stopped: {log.read_text()[-2000:]}")
        try:
            requests.get(server.endpoint + "/shares", timeout=2)
            return server
        except requests.ConnectionError:
            time.sleep(0.2)
    stop_share_server(server)
    raise TimeoutError("the sharing server did not answer within 60 s")


def stop_share_server(server: ShareServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


def client_python() -> Path:
    """The official client's interpreter, its virtual environment made once per machine."""
    python = CLIENT_VENV / "bin" / "python"
    ready = CLIENT_VENV / ".installed"
    if not ready.exists():
        venv.create(CLIENT_VENV, with_pip=True, clear=True)
        subprocess.run([python, "-m", "pip", "install", "-q", DELTA_SHARING_CLIENT],
                       check=True, timeout=900)  # fmt: skip
        ready.write_text(DELTA_SHARING_CLIENT)
    return python


def run_client(script: str, *args: str) -> subprocess.CompletedProcess:
    """Run `script` (Python source) with the official client's interpreter."""
    return subprocess.run([client_python(), "-c", script, *args], capture_output=True,
                          text=True, timeout=600)  # fmt: skip


def issue_tokens(data_root: Path, own: str, other: str) -> dict[str, str]:
    """Secrets of tokens in `data_root`'s store: live ones for `own` and `other`, a revoked and
    an expired one for `own` (issued 40 days ago for 30)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTAL_DATA_DIR", str(data_root))
        now = datetime.now(UTC)
        expires = (now + timedelta(days=30)).date()
        secrets = {}
        for name, sponsor in (("own", own), ("other", other), ("revoked", own)):
            _, secrets[name] = tokens.create(sponsor, f"{name} team", expires, "carla")
        revoked = next(t for t in tokens.list_tokens(own) if t.label == "revoked team")
        tokens.revoke(revoked.token_id, "carla")
        _, secrets["expired"] = tokens.create(
            own, "old team", (now - timedelta(days=10)).date(), "carla",
            now=now - timedelta(days=40),
        )  # fmt: skip
    return secrets
