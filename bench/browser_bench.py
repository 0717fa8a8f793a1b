"""Browser figure: submit the sign-in form, wait until the overview has fully rendered.

A real `streamlit run portal_app.py` on a loopback port, in demo mode over a data root whose
demo warehouse is the measured one; headless Chromium through Playwright. The baseline is the
same gesture on a one-file Streamlit app with no portal around it (bench/pages/floor_app.py).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.plants import WORK

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
USER, PASSWORD = "priya", "priya-demo-2026"  # README demo sign-in, sponsor NWT
IDLE = '[data-test-script-state="notRunning"]'


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _data_root(name: str, plant: Path, warehouse: Path) -> Path:
    """A data root whose demo plant and demo warehouse are the measured ones (symlinks)."""
    root = WORK / "browser" / name
    demo = root / "demo"
    (demo / "source").mkdir(parents=True, exist_ok=True)
    links = ((demo / "source" / "plant.sqlite", plant), (demo / "warehouse", warehouse))
    for link, target in links:
        if link.is_symlink():
            link.unlink()
        link.symlink_to(target.resolve())
    return root


def _wait_up(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("streamlit did not start")


@contextmanager
def _served(script: str, env: dict[str, str]) -> Iterator[str]:
    """`streamlit run script` on a free loopback port; yields its URL."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", script, "--server.headless=true",
         f"--server.port={port}", "--server.address=127.0.0.1",
         "--browser.gatherUsageStats=false"],
        cwd=ROOT, env=dict(os.environ, **env), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_up(url)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@dataclass(frozen=True)
class SignIns:
    """Seconds from clicking "Sign in" to the page rendered and idle; and to its first chart."""

    idle: list[float]
    chart: list[float]


def _time_sign_ins(url: str, runs: int) -> SignIns:
    from playwright.sync_api import sync_playwright

    idle, chart = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        for attempt in range(runs + 1):  # the first sign-in warms the server's caches
            context = browser.new_context()  # a new visitor: no cookie, no cached assets
            page = context.new_page()
            page.set_default_timeout(120_000)
            page.goto(url)
            # By widget key: Streamlit renders a second, hidden input per text label.
            page.locator(".st-key-sign_in_username input").fill(USER)
            page.locator(".st-key-sign_in_password input").fill(PASSWORD)
            page.locator(IDLE).wait_for(state="attached")
            started = time.perf_counter()
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("heading", name="Overview", exact=True).first.wait_for()
            page.locator(IDLE).wait_for(state="attached")
            rendered = time.perf_counter() - started
            page.locator(".js-plotly-plot").first.wait_for()
            drawn = time.perf_counter() - started
            if attempt:
                idle.append(rendered)
                chart.append(drawn)
            context.close()
        browser.close()
    return SignIns(idle, chart)


def sign_in_to_overview(name: str, plant: Path, warehouse: Path, runs: int) -> SignIns:
    """The portal: priya signs in (bcrypt check, access log) and lands on her overview."""
    env = {"PORTAL_DATA_DIR": str(_data_root(name, plant, warehouse)), "PORTAL_MODE": "demo"}
    # The demo users exist before the server starts: a first visit would otherwise bootstrap.
    subprocess.run([sys.executable, "-m", "portal", "demo-users"], cwd=ROOT,
                   env=dict(os.environ, **env), check=True, capture_output=True)  # fmt: skip
    with _served("portal_app.py", env) as url:
        return _time_sign_ins(url, runs)


def floor_sign_in(warehouse: Path, sponsor: str, runs: int) -> SignIns:
    """Baseline: the same gesture on bench/pages/floor_app.py (Streamlit alone)."""
    env = {"BENCH_WAREHOUSE": str(warehouse), "BENCH_SPONSOR": sponsor}
    with _served("bench/pages/floor_app.py", env) as url:
        return _time_sign_ins(url, runs)
