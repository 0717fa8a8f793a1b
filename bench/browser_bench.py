"""Browser figures: submit the sign-in form, wait until the overview has fully rendered; and
the whole cold sign-in in a fresh profile, from navigation start, with its requests and runs.

A real `streamlit run portal_app.py` on a loopback port, in demo mode over a data root whose
demo warehouse is the measured one; headless Chromium through Playwright. The baseline is the
same gesture on a one-file Streamlit app with no portal around it (bench/pages/floor_app.py).
"""

from __future__ import annotations

import gzip
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlparse

from bench.plants import WORK

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
USER, PASSWORD = "priya", "priya-demo-2026"  # README demo sign-in, sponsor NWT
TIMEOUT_MS = 120_000  # a loaded 2-core CI machine; a settled page takes seconds
QUIET_MS = 1_000  # how long a settled page must stay unchanged before the bench believes it

# When is a Streamlit page settled? Not when its run ends (data-test-script-state flips to
# notRunning): every custom component reports a value once it has loaded in its iframe (and
# again whenever its value changes), and each report reruns the script. The portal's pages
# carry the authenticator's cookie manager, which reports on mount, the sign-in form too:
# the form is idle for a moment, then reruns, and a "Sign in" clicked in that moment is lost
# to the component's rerun (no password check, no error, the form just stays: the bench used
# to wait 120 s for "Overview" there). After signing in, the cookie it sets and the cookies it
# then reads rerun the overview twice more. So, watched in the page from before its first
# script runs (a timer samples it every 25 ms):
#   ready   = the app is connected and not running, nothing on screen is stale or still a
#             skeleton, every component on the page has reported at least once (the
#             documented postMessage "streamlit:setComponentValue") and the server has
#             answered every message the page sent it (a report is sent as a rerun request);
#   settled = ready, with no websocket traffic and no component report for QUIET_MS.
# It is settled *since* the moment it last became ready: that is the time the bench takes,
# so the quiet period costs wall time, not figure. performance.now() counts from the start of
# the navigation, so the moment the sign-in form settles is its cold load. Where that time
# goes is recorded beside it: when the websocket opened, each script run (start, end), each
# component report.
WATCH_JS = """(() => {
    if (window.top !== window) return;  // component iframes: nothing to watch in there
    const QUIET_MS = {QUIET_MS};
    const reported = new WeakSet();
    let lastSend = 0, lastReceive = 0, lastActivity = 0, since = null;
    window.__bench = {clickedAt: null, chartAt: null, connectedAt: null, runs: [], reports: []};
    const Native = window.WebSocket;
    window.WebSocket = class extends Native {
        constructor(...args) {
            super(...args);
            this.addEventListener('open', () => {
                window.__bench.connectedAt ??= performance.now();
            });
            this.addEventListener('message', () => {
                lastReceive = lastActivity = performance.now();
            });
        }
        send(data) {
            lastSend = lastActivity = performance.now();
            return super.send(data);
        }
    };
    window.addEventListener('message', (event) => {
        const data = event.data;
        if (data && data.isStreamlitMessage && data.type === 'streamlit:setComponentValue') {
            reported.add(event.source);
            lastActivity = performance.now();
            window.__bench.reports.push(lastActivity);
        }
    });
    let app = null, state = null;
    new MutationObserver(() => {
        app ??= document.querySelector('[data-testid="stApp"]');
        const now = app && app.getAttribute('data-test-script-state');
        if (now === state) return;
        const runs = window.__bench.runs;
        if (now === 'running') runs.push([performance.now(), null]);
        else if (state === 'running') runs[runs.length - 1][1] = performance.now();
        state = now;
    }).observe(document, {subtree: true, childList: true, attributes: true,
                          attributeFilter: ['data-test-script-state']});
    document.addEventListener('click', () => {
        window.__bench.clickedAt = performance.now();
    }, true);
    const ready = () => {
        const app = document.querySelector('[data-testid="stApp"]');
        if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
        if (app.getAttribute('data-test-connection-state') !== 'CONNECTED') return false;
        if (document.querySelector('[data-stale="true"], [data-testid="stSkeleton"]')) {
            return false;
        }
        const frames = document.querySelectorAll(
            'iframe[data-testid="stCustomComponentV1"], [data-testid="stCustomComponentV1"] iframe'
        );
        if (Array.from(frames).some((frame) => !reported.has(frame.contentWindow))) {
            return false;
        }
        return lastReceive >= lastSend;
    };
    setInterval(() => {
        const now = performance.now();
        if (!ready()) since = null;
        else if (since === null || lastActivity > since) since = now;
        if (window.__bench.clickedAt !== null && window.__bench.chartAt === null
                && document.querySelector('.js-plotly-plot')) {
            window.__bench.chartAt = now;
        }
    }, 25);
    // The moment the page settled (showing an h1 `heading`), or null while it is not.
    window.__benchSettled = (heading) => {
        if (since === null || performance.now() - since < QUIET_MS) return null;
        if (heading !== null && !Array.from(document.querySelectorAll('h1'))
                .some((h) => h.innerText.trim() === heading)) return null;
        return since;
    };
})()""".replace("{QUIET_MS}", str(QUIET_MS))


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
    """`streamlit run script` on a free loopback port; yields its URL.

    The server's output goes to bench/work/browser/<script>.log, read it when a run fails.
    """
    port = _free_port()
    log = WORK / "browser" / f"{Path(script).stem}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", script, "--server.headless=true",
             f"--server.port={port}", "--server.address=127.0.0.1",
             "--browser.gatherUsageStats=false",
             # As in tests/browser_support.py: watching the work tree for edits is no part
             # of serving a page, and bench/work/ under it is written while we measure.
             "--server.fileWatcherType=none"],
            cwd=ROOT, env=dict(os.environ, **env), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_up(url)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@dataclass(frozen=True)
class Fetch:
    """One finished request of a sign-in: what it fetched, its bytes on the wire, when."""

    kind: str  # see _kind
    url: str
    bytes: int  # response headers and body as transferred (compressed, if it was)
    start: float  # ms since the page's navigation start
    end: float


@dataclass(frozen=True)
class SignIn:
    """One sign-in, times in ms on the page's own clock (since its navigation start)."""

    form: float  # the sign-in form settled: its load, cold or warm
    clicked: float  # "Sign in" clicked
    overview: float  # the overview settled
    chart: float  # its first chart drawn
    connected: float  # the websocket opened
    runs: list[tuple[float, float | None]]  # script runs (start, end) in the page
    reports: list[float]  # component reports (each one asks for a rerun)
    fetches: list[Fetch]

    @property
    def idle(self) -> float:
        """Seconds from the click to the settled overview."""
        return (self.overview - self.clicked) / 1000

    @property
    def cold(self) -> float:
        """Seconds from navigation start to the settled overview, less the bench's own wait
        between the settled form and its click (a person's typing)."""
        return (self.form + self.overview - self.clicked) / 1000

    def fetched(self, until: float, since: float = 0.0) -> list[Fetch]:
        return [f for f in self.fetches if since <= f.start < until]


@dataclass(frozen=True)
class SignIns:
    """Sign-ins each in a new browser context (cold: no cache, no cookie); and each followed
    by one in the same context with its cookies cleared (warm: the browser cache kept)."""

    cold: list[SignIn]
    warm: list[SignIn]

    @property
    def idle(self) -> list[float]:
        return [s.idle for s in self.cold]

    @property
    def warm_idle(self) -> list[float]:
        return [s.idle for s in self.warm]

    @property
    def chart(self) -> list[float]:
        return [(s.chart - s.clicked) / 1000 for s in self.cold]

    @property
    def warm_chart(self) -> list[float]:
        return [(s.chart - s.clicked) / 1000 for s in self.warm]


@dataclass(frozen=True)
class Phase:
    """What one phase of a sign-in cost the browser: medians over the sign-ins."""

    seconds: float
    requests: int
    megabytes: float  # on the wire
    static_megabytes: float  # Streamlit's /static/ JS and CSS, which it serves uncompressed
    gzip_megabytes: float  # the same files gzipped (level 6): what a compressing proxy sends
    font_megabytes: float
    component_requests: int  # the custom components' iframes and their files
    runs: int  # script runs seen in the page
    reports: int  # component reports (each asks for a rerun)


def phases(sign_ins: list[SignIn]) -> dict[str, Phase]:
    """The cold load of the sign-in form ("form") and click to settled overview ("overview")."""

    def phase(sign_in: SignIn, since: float, until: float) -> Phase:
        fetched = sign_in.fetched(until, since)
        static = [f for f in fetched if urlparse(f.url).path.startswith("/static/")
                  and f.kind in ("js", "css")]  # fmt: skip
        return Phase(
            (until - since) / 1000, len(fetched), sum(f.bytes for f in fetched) / 1e6,
            sum(f.bytes for f in static) / 1e6,
            sum(_gzipped(urlparse(f.url).path) for f in static) / 1e6,
            sum(f.bytes for f in fetched if f.kind == "font") / 1e6,
            sum(f.kind == "component" for f in fetched),
            sum(since <= start < until for start, _ in sign_in.runs),
            sum(since <= at < until for at in sign_in.reports),
        )  # fmt: skip

    spans = {"form": lambda s: (0.0, s.form), "overview": lambda s: (s.clicked, s.overview)}
    medians = {}
    for name, span in spans.items():
        rows = [phase(s, *span(s)) for s in sign_ins]
        middle = {field: statistics.median(getattr(r, field) for r in rows)
                  for field in Phase.__dataclass_fields__}  # fmt: skip
        medians[name] = Phase(**{field: value if isinstance(getattr(rows[0], field), float)
                                 else round(value) for field, value in middle.items()})  # fmt: skip
    return medians


@cache
def _gzipped(path: str) -> int:
    """Bytes of a Streamlit static file once gzipped; 0 when it is not one of Streamlit's."""
    import streamlit

    static = Path(streamlit.__file__).parent / "static"
    file = (static / path.lstrip("/")).resolve()
    if not file.is_relative_to(static) or not file.is_file():
        return 0
    return len(gzip.compress(file.read_bytes(), compresslevel=6))


def _kind(url: str, resource_type: str) -> str:
    """What a request fetched: component (a custom component's iframe and its files), js,
    css, font, document, websocket, other (Streamlit's own endpoints, images)."""
    path = urlparse(url).path
    if "/component/" in path:
        return "component"
    kinds = {"script": "js", "stylesheet": "css", "font": "font", "document": "document",
             "websocket": "websocket"}  # fmt: skip
    return kinds.get(resource_type, "other")


def _settle(page, heading: str | None, where: str) -> float:
    """Wait until the page is settled (see WATCH_JS); the page's clock at that moment, in ms.

    On time-out, a screenshot of the page and what it shows.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        settled = page.wait_for_function(
            "(heading) => window.__benchSettled(heading)", arg=heading, polling=50,
            timeout=TIMEOUT_MS,
        )  # fmt: skip
    except PlaywrightTimeout:
        shot = WORK / "browser" / "timeout.png"
        page.screenshot(path=str(shot), full_page=True)
        shown = " ".join(page.inner_text("body").split())[:80]
        raise TimeoutError(
            f"no settled page {where} after {TIMEOUT_MS // 1000} s; it shows {shown!r} ({shot})"
        ) from None
    return settled.json_value()


def _sign_in(context, url: str) -> SignIn:
    """Open `url` in a new page of `context`, wait for the settled form, sign in, wait for
    the settled overview and its first chart."""
    page = context.new_page()
    finished = []  # the page's requests, its component iframes' included
    page.on("requestfinished", lambda request: finished.append(request))
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    # By widget key: Streamlit renders a second, hidden input per text label.
    username = page.locator(".st-key-sign_in_username input")
    username.wait_for()
    # A person types into a form that has finished loading, cookie manager included.
    form = _settle(page, None, "with the sign-in form")
    username.fill(USER)
    page.locator(".st-key-sign_in_password input").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Overview", exact=True).first.wait_for()
    overview = _settle(page, "Overview", "'Overview' after signing in")
    page.locator(".js-plotly-plot").first.wait_for()
    page.wait_for_function("() => window.__bench.chartAt !== null", polling=50)
    seen = page.evaluate("({origin: performance.timeOrigin, ...window.__bench})")
    fetches = []
    for request in finished:
        timing, sizes = request.timing, request.sizes()
        start = timing["startTime"] - seen["origin"]
        fetches.append(Fetch(
            _kind(request.url, request.resource_type), request.url,
            sizes["responseHeadersSize"] + sizes["responseBodySize"], start,
            start + max(timing["responseEnd"], 0),
        ))  # fmt: skip
    page.close()
    return SignIn(form, seen["clickedAt"], overview, seen["chartAt"], seen["connectedAt"],
                  [tuple(run) for run in seen["runs"]], seen["reports"], fetches)  # fmt: skip


def _time_sign_ins(url: str, runs: int) -> SignIns:
    from playwright.sync_api import sync_playwright

    cold, warm = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        for attempt in range(runs + 1):  # the first sign-in warms the server's caches
            context = browser.new_context()  # a new visitor: no cookie, no cached assets
            context.add_init_script(WATCH_JS)
            first = _sign_in(context, url)
            # The same visitor signed out, back later: its browser cache kept, no cookie.
            context.clear_cookies()
            again = _sign_in(context, url)
            if attempt:
                cold.append(first)
                warm.append(again)
            context.close()
        browser.close()
    return SignIns(cold, warm)


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
