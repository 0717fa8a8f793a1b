"""Concurrency on a real server: N people at once over Streamlit's own websocket protocol.

`streamlit run portal_app.py` on a free loopback port, in demo mode, over a data root whose
demo plant and warehouse are the measured preset's (symlinks). Each user is one
tests/streamlit_client.py `Tab`, the browser's websocket session without the browser (the
protobuf messages the frontend sends, and every message the server sends back, read whole):
it opens the sign-in form, signs in as one of the demo sponsors' QA users (users spread over
the five sponsors), then clicks the sidebar links of the sponsor pages in its own seeded
order, pausing 0.5-2 s before each click as a reader does. A page view is timed from sending
the rerun request to the message that the script run finished successfully: what the person
waits for.

One server serves every load level, each with fresh sessions: first one signed-in pass over
every page per sponsor (their scopes and memos warm, as on a server that has been up a
while), then each level's users arrive within ARRIVAL_SECONDS and sign in (timed apart:
bcrypt is no page view), and once all are in they click together. The clients run in one
asyncio loop of the bench process, on the same 2 cores as the server; the CPU both used is
recorded beside the times.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.page_bench import p95
from bench.plants import WORK
from portal.navigation import pages_for
from portal.users import demo_password
from tests.browser_support import Portal, start_portal, stop_portal
from tests.streamlit_client import Tab, button, clicked, text_input, typed

ROOT = Path(__file__).resolve().parents[1]
# The demo sponsors' QA users: user n signs in as USERS[n % 5].
USERS = ("priya", "bruno", "fatima", "takeshi", "wendy")  # NWT, CTB, FBK, TSP, WGT
ROLE = "sponsor_qa"
THINK_SECONDS = (0.5, 2.0)  # a reader's pause before each click
ARRIVAL_SECONDS = 2.0  # a level's users open the portal within this long, not at one instant
SEED = 20261203
# A level stops clicking this long after its users signed in: a saturated server must not
# hold the bench (its figure then says so).
LEVEL_TIMEOUT_S = 240.0
SIGN_IN_TIMEOUT_S = 300.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class View:
    """One page view: the page's title, seconds waited, and what went wrong, if anything."""

    page: str
    seconds: float
    problem: str = ""


@dataclass
class Load:
    """One load level: `users` signed-in sessions clicking at once."""

    users: int
    views: list[View] = field(default_factory=list)
    sign_ins: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # sessions that broke off, and why
    seconds: float = 0.0  # wall time of the clicking phase
    server_cpu: float = 0.0  # CPU seconds the server used meanwhile (all its threads)
    client_cpu: float = 0.0  # and the bench's clients
    timed_out: bool = False

    @property
    def times(self) -> list[float]:
        return [v.seconds for v in self.views]

    @property
    def p50(self) -> float:
        return statistics.median(self.times)

    @property
    def p95(self) -> float:
        return p95(self.times)

    @property
    def problems(self) -> list[str]:
        return [f"{v.page}: {v.problem}" for v in self.views if v.problem] + self.failures

    @property
    def cpu_per_view(self) -> float:
        """Server CPU seconds per page view while clicking."""
        return self.server_cpu / len(self.views) if self.views else 0.0

    def slowest(self, count: int = 3) -> str:
        """The pages with the highest p95 at this level, e.g. "Batches 0.412 s"."""
        pages: dict[str, list[float]] = {}
        for view in self.views:
            pages.setdefault(view.page, []).append(view.seconds)
        ranked = sorted(((p95(s), page) for page, s in pages.items()), reverse=True)[:count]
        return ", ".join(f"{page} {seconds:.3f} s" for seconds, page in ranked)


def data_root(preset: str, plant: Path, warehouse: Path) -> Path:
    """A fresh data root (no access log of an earlier run) whose demo plant and demo
    warehouse are the measured ones (symlinks), with the demo users already registered."""
    root = WORK / "server" / preset / "data"
    shutil.rmtree(root, ignore_errors=True)
    demo = root / "demo"
    (demo / "source").mkdir(parents=True)
    (demo / "source" / "plant.sqlite").symlink_to(plant.resolve())
    (demo / "warehouse").symlink_to(warehouse.resolve())
    # A first visit would otherwise bootstrap them.
    subprocess.run([sys.executable, "-m", "portal", "demo-users"], cwd=ROOT, check=True,
                   env=dict(os.environ, PORTAL_DATA_DIR=str(root), PORTAL_MODE="demo"),
                   capture_output=True)  # fmt: skip
    return root


@contextmanager
def running_portal(preset: str, plant: Path, warehouse: Path) -> Iterator[Portal]:
    """`streamlit run portal_app.py` on 127.0.0.1 (tests/browser_support.py start_portal,
    as the concurrency test starts it), always stopped; its output goes to
    bench/work/server/<preset>/streamlit.log."""
    root = data_root(preset, plant, warehouse)
    portal = start_portal(root, root.parent / "streamlit.log")
    try:
        yield portal
    finally:
        stop_portal(portal)


def cpu_seconds(pid: int) -> float:
    """User and system CPU a process has used so far, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def page_titles() -> list[str]:
    """The sidebar titles of every page a sponsor's QA may open (the app's own registry)."""
    return [spec.title for spec in pages_for(ROLE)]


async def _sign_in(tab: Tab, username: str) -> tuple[float, dict[str, str]]:
    """Open the sign-in form and submit it: seconds from the submit to the first page shown,
    and the sidebar menu it carries (title -> page script hash)."""
    form = await tab.run()
    if form.headings() != ["Sponsor Portal"]:
        raise RuntimeError(f"no sign-in form: {form.headings()} {form.exceptions()}")
    started = time.perf_counter()
    run = await tab.run(widgets=[
        typed(text_input(form, "Username"), username),
        typed(text_input(form, "Password"), demo_password(username)),
        clicked(button(form, "Sign in").button.id),
    ])  # fmt: skip
    seconds = time.perf_counter() - started
    menu = run.menu()
    if missing := set(page_titles()) - set(menu):
        raise RuntimeError(f"{username} signed in without {sorted(missing)} in the menu: "
                           f"{run.headings()} {run.exceptions()}")  # fmt: skip
    return seconds, menu


async def _view(tab: Tab, menu: dict[str, str], title: str) -> View:
    """Click the sidebar link titled `title`; time until its script run finished."""
    started = time.perf_counter()
    run = await tab.run(page_script_hash=menu[title])
    seconds = time.perf_counter() - started
    problem = "; ".join(run.exceptions())[:200]
    if not problem and title not in run.headings():
        problem = f"ended on {run.headings()}"
    return View(title, seconds, problem)


class _Gate:
    """Opens when every user of a level has signed in (or failed to); then the clock runs."""

    def __init__(self, users: int) -> None:
        self.waiting = users
        self.open = asyncio.Event()
        self.deadline = float("inf")

    def arrived(self) -> None:
        self.waiting -= 1
        if self.waiting == 0:
            self.deadline = time.monotonic() + LEVEL_TIMEOUT_S
            self.open.set()


async def _user(number: int, base: str, views: int, load: Load, gate: _Gate) -> None:
    """One person: arrive, sign in, wait for everyone, then click `views` pages."""
    username = USERS[number % len(USERS)]
    pace = random.Random(SEED + number)  # the same arrival, order and pauses every run
    order = page_titles()
    pace.shuffle(order)
    arrived = False
    try:
        async with Tab(base) as tab:
            try:
                await asyncio.sleep(pace.uniform(0, ARRIVAL_SECONDS))
                seconds, menu = await _sign_in(tab, username)
                load.sign_ins.append(seconds)
            finally:
                arrived = True
                gate.arrived()
            await gate.open.wait()
            for step in range(views):
                await asyncio.sleep(pace.uniform(*THINK_SECONDS))
                if time.monotonic() > gate.deadline:
                    load.timed_out = True
                    return
                load.views.append(await _view(tab, menu, order[step % len(order)]))
    except Exception as broke:  # noqa: BLE001 - counted in the figure's note, not fatal
        load.failures.append(f"user {number} ({username}): {type(broke).__name__}: {broke}")
        if not arrived:  # the websocket never opened
            gate.arrived()


async def _level(portal: Portal, users: int, views: int) -> Load:
    load, gate = Load(users), _Gate(users)
    pid = portal.process.pid
    marks: dict[str, float] = {}

    async def clock() -> None:
        await gate.open.wait()
        marks.update(wall=time.perf_counter(), server=cpu_seconds(pid), client=time.process_time())

    sessions = [_user(n, portal.url, views, load, gate) for n in range(users)]
    await asyncio.wait_for(asyncio.gather(clock(), *sessions),
                           SIGN_IN_TIMEOUT_S + LEVEL_TIMEOUT_S + 60)  # fmt: skip
    if marks:
        load.seconds = time.perf_counter() - marks["wall"]
        load.server_cpu = cpu_seconds(pid) - marks["server"]
        load.client_cpu = time.process_time() - marks["client"]
    return load


def run_level(portal: Portal, users: int, views: int) -> Load:
    """`users` people at once against `portal`, each clicking `views` pages."""
    return asyncio.run(_level(portal, users, views))


def warm_up(portal: Portal) -> Load:
    """One pass over every page per sponsor, no pause: fills each sponsor's scope and memo
    (the first visits' times are the returned load's)."""

    async def one(username: str, load: Load) -> None:
        async with Tab(portal.url) as tab:
            seconds, menu = await _sign_in(tab, username)
            load.sign_ins.append(seconds)
            for title in page_titles():
                load.views.append(await _view(tab, menu, title))

    async def every() -> Load:
        load = Load(len(USERS))
        await asyncio.wait_for(asyncio.gather(*(one(u, load) for u in USERS)), SIGN_IN_TIMEOUT_S)
        return load

    return asyncio.run(every())


def wait_idle(portal: Portal, quiet_share: float = 0.05, limit: float = 120.0) -> float:
    """Wait until the server uses less than `quiet_share` of a core for a second (its
    warming of the all-sponsor pages after the first sign-in, portal/warm.py, is done: on a
    real server that happens once after the nightly run, not while people click); the
    seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        before = cpu_seconds(portal.process.pid)
        time.sleep(1.0)
        if cpu_seconds(portal.process.pid) - before < quiet_share:
            break
    return time.monotonic() - started


def sweep(
    portal: Portal, levels: tuple[int, ...], views: int, more: tuple[int, ...], limit: float
) -> dict[int, Load]:
    """Each level in turn (one user clicks 3x `views` pages: its p95 needs the samples);
    then the levels of `more` while the last one's p95 stayed within `limit` seconds."""
    loads = {}
    for users in levels:
        loads[users] = run_level(portal, users, views * 3 if users == 1 else views)
    for users in more:
        last = loads[max(loads)]
        if not last.views or last.p95 > limit or last.problems:
            break
        loads[users] = run_level(portal, users, views)
    return loads
