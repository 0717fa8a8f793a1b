"""A real portal server and a real Chromium for the browser tests, and what they read.

The server is `streamlit run portal_app.py` on a fresh data root, exactly as the README runs
it; the browser is Debian's Chromium driven by Playwright (no browser download is possible).
What a sponsor must never see is read straight from the published Parquet partitions with
pyarrow, never through the portal's own code.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pyarrow.parquet as pq
import pytest

from portal.session import COOKIE_NAME
from tests.ownership import ownership

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
VIEWPORT = {"width": 1400, "height": 1000}  # the browser tests' window
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Generous: other engineers run tests on the same 2 cores, and the first visit bootstraps.
START_TIMEOUT_S = 120.0
BOOTSTRAP_TIMEOUT_MS = 240_000
RENDER_TIMEOUT_MS = 90_000
SPONSORS = ("NWT", "CTB", "FBK", "TSP", "WGT")
SIGN_IN_HEADING = "Sponsor Portal"

# The frontend marks the app's run state on this element (checked in Streamlit 1.67's DOM).
APP = '[data-testid="stApp"]'
SETTLED_JS = """([heading, text]) => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
    if (app.getAttribute('data-test-connection-state') !== 'CONNECTED') return false;
    if (document.querySelector('[data-stale="true"], [data-testid="stSkeleton"]')) return false;
    if (heading !== null && !Array.from(document.querySelectorAll('h1'))
            .some(h => h.innerText.trim() === heading)) return false;
    return text === null || document.body.innerText.includes(text);
}"""


def require_chromium() -> None:
    """Skip without Debian's Chromium locally; under CI=true its absence is a failure."""
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return
    message = f"{CHROMIUM} is missing: apt-get install chromium (tests/run.sh does)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Portal:
    """One running `streamlit run portal_app.py` and where it keeps its data."""

    process: subprocess.Popen
    url: str
    data_root: Path
    log: Path

    def page_url(self, path: str) -> str:
        return f"{self.url}/{path.lstrip('/')}"

    @property
    def warehouse(self) -> Path:
        """The demo warehouse the first visit published (layout: <root>/demo/warehouse)."""
        return self.data_root / "demo" / "warehouse"

    @property
    def source(self) -> Path:
        """The demo plant's system of record the first visit generated."""
        return self.data_root / "demo" / "source" / "plant.sqlite"

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def start_portal(data_root: Path, log: Path) -> Portal:
    """Start the portal as the README does, on `data_root`, and wait until it is healthy."""
    port = free_port()
    env = {**os.environ, "PORTAL_DATA_DIR": str(data_root), "PORTAL_MODE": "demo"}
    # An operator's settings must not change what the tests see.
    for name in ("PORTAL_BOOTSTRAP", "PORTAL_COOKIE_KEY", "PORTAL_IDLE_MINUTES"):
        env.pop(name, None)
    command = [
        sys.executable, "-m", "streamlit", "run", "portal_app.py",
        "--server.port", str(port), "--server.address", "127.0.0.1",
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        # Watching the work tree for edits is useless here and chokes on the other tests'
        # warehouses being written under it: thousands of new folders a second.
        "--server.fileWatcherType", "none",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )  # fmt: skip
    portal = Portal(process, f"http://127.0.0.1:{port}", data_root, log)
    try:
        _wait_healthy(portal)
    except BaseException:
        stop_portal(portal)
        raise
    return portal


def _wait_healthy(portal: Portal) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if portal.process.poll() is not None:
            raise RuntimeError(f"the portal exited early:\n{portal.log_tail()}")
        try:
            with urllib.request.urlopen(portal.page_url("_stcore/health"), timeout=5) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"no healthy portal after {START_TIMEOUT_S:.0f} s:\n{portal.log_tail()}")


def stop_portal(portal: Portal) -> None:
    """Terminate the server (and kill it if it does not go)."""
    if portal.process.poll() is None:
        portal.process.terminate()
        try:
            portal.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            portal.process.kill()
            portal.process.wait(timeout=20)


# --- driving the browser -------------------------------------------------------------------


def settle(page, heading: str | None = None, text: str | None = None, timeout: float = 0) -> None:
    """Wait until Streamlit finished this run and shows `heading` (an h1) and `text`.

    Finished = the app says notRunning, no element is stale or a skeleton, and the visible
    text no longer changes between two looks (a rerun can follow right after a run).
    """
    limit = timeout or RENDER_TIMEOUT_MS
    page.wait_for_function(SETTLED_JS, arg=[heading, text], timeout=limit, polling=100)
    previous = None
    deadline = time.monotonic() + limit / 1000
    while time.monotonic() < deadline:
        page.wait_for_function(SETTLED_JS, arg=[heading, text], timeout=limit, polling=100)
        current = page.inner_text("body")
        if current == previous:
            return
        previous = current
        page.wait_for_timeout(400)
    raise TimeoutError(f"the page kept changing for {limit / 1000:.0f} s")


RUN_WATCH_JS = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    window.__portalRuns = 0;
    if (window.__portalWatch) window.__portalWatch.disconnect();
    window.__portalWatch = new MutationObserver(() => {
        if (app.getAttribute('data-test-script-state') === 'running') window.__portalRuns += 1;
    });
    window.__portalWatch.observe(app, {attributes: true,
                                       attributeFilter: ['data-test-script-state']});
}"""


def submit(page, action, heading: str | None = None, text: str | None = None) -> None:
    """Do `action` (a click) and wait for the run it starts to finish, not an earlier one."""
    page.evaluate(RUN_WATCH_JS)
    action()
    page.wait_for_function("() => window.__portalRuns > 0", timeout=RENDER_TIMEOUT_MS)
    settle(page, heading, text)


def dismiss_dialogs(page) -> None:
    """Close Streamlit's 'Page not found' modal, which a signed-out bookmark raises."""
    dialog = page.get_by_role("dialog")
    while dialog.count():
        dialog.first.get_by_role("button", name="Close").click()
        dialog.first.wait_for(state="hidden")


def open_signed_out(page, url: str, timeout: float = 0) -> None:
    """Open `url` in a signed-out browser and wait for the sign-in form."""
    page.goto(url)
    settle(page, SIGN_IN_HEADING, "Password", timeout)
    dismiss_dialogs(page)


def sign_in(page, username: str, password: str) -> None:
    """Type the credentials into the sign-in form and submit them."""
    dismiss_dialogs(page)
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def wait_for_session_cookie(page, timeout: float = 0) -> None:
    """Wait until the browser holds the portal's signed session cookie.

    The authenticator's cookie component sets it in the browser after the signed-in run has
    rendered; a URL opened before that starts a new session that has nothing to resume from.
    """
    deadline = time.monotonic() + (timeout or RENDER_TIMEOUT_MS) / 1000
    while time.monotonic() < deadline:
        if any(c["name"] == COOKIE_NAME for c in page.context.cookies()):
            return
        page.wait_for_timeout(100)
    raise TimeoutError(f"no {COOKIE_NAME} cookie after signing in")


def sign_out(page) -> None:
    """Press the sidebar's Sign out button and wait for the sign-in form."""
    page.get_by_role("button", name="Sign out").click()
    settle(page, SIGN_IN_HEADING, "Password")


def open_from_sidebar(page, title: str) -> None:
    """Click a page's link in the sidebar menu and wait for its heading."""
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
    settle(page, title)


def sidebar_links(page) -> dict[str, str]:
    """The sidebar menu: link text (title, without the icon ligature) -> URL path."""
    links = page.locator('[data-testid="stSidebarNav"] a')
    menu = {}
    for index in range(links.count()):
        link = links.nth(index)
        title = link.inner_text().strip().splitlines()[-1].strip()
        menu[title] = urlparse(link.get_attribute("href") or "").path.strip("/")
    return menu


def grid_text(page) -> str:
    """The cells a data grid has drawn: its canvas carries them as an accessibility table."""
    # The grid builds that table shortly after drawing; wait until every grid has one.
    page.wait_for_function(
        """() => Array.from(document.querySelectorAll('[data-testid="data-grid-canvas"]'))
            .every(canvas => canvas.textContent.length > 0)""",
        timeout=RENDER_TIMEOUT_MS,
    )
    cells = page.locator('[data-testid="data-grid-canvas"]')
    return "\n".join(cells.nth(i).text_content() or "" for i in range(cells.count()))


def seen_text(page) -> str:
    """What a person sees: the page's visible text plus the drawn cells of its tables."""
    return page.inner_text("body") + "\n" + grid_text(page)


# --- what each sponsor's partitions name ---------------------------------------------------


@dataclass(frozen=True)
class SponsorNames:
    """What identifies one sponsor in the published demo warehouse."""

    sponsor_id: str
    names: frozenset[str]  # the sponsor's id and name
    products: frozenset[str]
    batches: frozenset[str]

    @property
    def all(self) -> frozenset[str]:
        return self.names | self.products | self.batches


def sponsor_names(source: Path, sponsor_id: str) -> SponsorNames:
    """A sponsor's id and name, product names and batch numbers, from the source of record
    (tests/ownership.py), so that nothing the job wrongly published counts as its own."""
    oracle = ownership(source)
    return SponsorNames(
        sponsor_id,
        frozenset(oracle.own(sponsor_id, "sponsor id", "sponsor name")),
        frozenset(oracle.own(sponsor_id, "product name")),
        frozenset(oracle.own(sponsor_id, "batch number")),
    )


def latest_released_batch(warehouse: Path, sponsor_id: str) -> tuple[str, str]:
    """(batch number, product name) of the sponsor's most recently started released batch."""
    snapshot = (warehouse / "current").resolve()
    batches = pq.read_table(
        snapshot / "batch" / f"sponsor_id={sponsor_id}",
        columns=["batch_number", "product_id", "status", "mfg_start"],
    ).to_pylist()
    products = {
        row["product_id"]: row["name"]
        for row in pq.read_table(
            snapshot / "product" / f"sponsor_id={sponsor_id}", columns=["product_id", "name"]
        ).to_pylist()
    }
    released = [b for b in batches if b["status"] == "SPONSOR_RELEASED" and b["mfg_start"]]
    latest = max(released, key=lambda b: str(b["mfg_start"]))
    return latest["batch_number"], products[latest["product_id"]]


def leaks(text: str, forbidden: Iterable[str]) -> list[str]:
    """The forbidden identifiers that occur in `text` as whole words (not inside another)."""
    # Longest first, so a name is not reported by a shorter name it contains.
    names = sorted(set(forbidden), key=len, reverse=True)
    if not names:
        return []
    pattern = re.compile(rf"(?<![\w-])(?:{'|'.join(map(re.escape, names))})(?![\w-])")
    return sorted(set(pattern.findall(text)))


def leaks_by_page(seen: dict[str, str], forbidden: Iterable[str]) -> dict[str, list[str]]:
    """Per page, the forbidden identifiers its text shows; pages that show none are left out."""
    forbidden = set(forbidden)
    return {page: found for page, text in seen.items() if (found := leaks(text, forbidden))}


def signed_out_views(browser, urls: list[str], viewport: dict, tabs: int = 6) -> dict[str, str]:
    """Open each URL in its own fresh, signed-out context, a few tabs at a time; URL -> text.

    The server runs the tabs' sessions side by side, which keeps dozens of visits short.
    """
    seen = {}
    for start in range(0, len(urls), tabs):
        batch = [
            (url, browser.new_context(viewport=viewport)) for url in urls[start : start + tabs]
        ]
        pages = [(url, context.new_page()) for url, context in batch]
        for url, page in pages:
            page.goto(url)
        for url, page in pages:
            settle(page)
            seen[url] = seen_text(page)
        for _, context in batch:
            context.close()
    return seen
