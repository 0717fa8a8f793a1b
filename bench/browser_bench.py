"""Browser figure: submit the sign-in form, wait until the overview has fully rendered.

A real `streamlit run portal_app.py` on a loopback port, in demo mode over a data root whose
demo warehouse is the measured one; headless Chromium through Playwright.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
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


def sign_in_to_overview(name: str, plant: Path, warehouse: Path, runs: int) -> list[float]:
    """Seconds from clicking "Sign in" to the overview rendered and idle, `runs` times."""
    from playwright.sync_api import sync_playwright

    port = _free_port()
    env = dict(os.environ, PORTAL_DATA_DIR=str(_data_root(name, plant, warehouse)),
               PORTAL_MODE="demo")  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "portal_app.py", "--server.headless=true",
         f"--server.port={port}", "--server.address=127.0.0.1",
         "--browser.gatherUsageStats=false"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    samples: list[float] = []
    try:
        _wait_up(url)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
            for attempt in range(runs + 1):  # the first sign-in warms the server's caches
                context = browser.new_context()
                page = context.new_page()
                page.set_default_timeout(120_000)
                page.goto(url)
                # By widget key: Streamlit renders a second, hidden input per text label.
                page.locator(".st-key-sign_in_username input").fill(USER)
                page.locator(".st-key-sign_in_password input").fill(PASSWORD)
                started = time.perf_counter()
                page.get_by_role("button", name="Sign in").click()
                page.get_by_role("heading", name="Overview").wait_for()
                page.locator(IDLE).wait_for(state="attached")
                if attempt:
                    samples.append(time.perf_counter() - started)
                context.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return samples


def median(samples: list[float]) -> float:
    return statistics.median(samples)
