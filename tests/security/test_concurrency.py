"""Many browser tabs at once, signed in as different sponsors, share one server and its caches.

SESSIONS tabs of one real `streamlit run portal_app.py` (tests/streamlit_client.py speaks the
browser's websocket) open together, wait at a barrier and sign in through the router at the
same moment: the five demo sponsors' QA users and the NWT auditor, in turn. Each then opens
every page its role may open (README's matrix), in its own seeded shuffled order, half by URL
path and half by the sidebar's link, reads every table to its last row, downloads every
export file the pages offer (the server runs the button's deferred function, and the access
log records the export) and clicks one export button. Afterwards:

- no page text and no export file holds another sponsor's identifier, by the source's
  ownership (tests/ownership.py), as a whole word; every one holds some of its own, and each
  session's pages and files together name its own records of several kinds;
- every run of a session shows its own user and sponsor in the header, and every export is
  stamped with them;
- every access-log entry written meanwhile carries its user's own sponsor and role, and
  records the pages each user opened and the exports they fetched.

Why a real server, not AppTest in threads: AppTest installs its mock Runtime in a process
global (`Runtime._instance`) at the start of every run and clears it at the end, so runs of
portal_app.py side by side take each other's runtime away. A run that lost it renders export
buttons with no file behind them (seen here: ten concurrent sessions, most Deviations & OOS
buttons without a deferred file) or fails with "Runtime hasn't been created", and AppTest
never hands out a download's file at all. A real server has one runtime and runs each
session's script in its own thread against the process-wide caches, as in production.
"""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import sqlite3
import threading
import time
import traceback
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from portal import users
from tests import role_matrix
from tests.browser_support import Portal, leaks, start_portal, stop_portal
from tests.conftest import DemoPlant
from tests.ownership import Ownership, ownership
from tests.streamlit_client import Run, Tab, button, clicked, file_text, text_input, typed
from warehouse import layout

# (username, role, sponsor) in session order: neighbours never share a sponsor.
USERS = (
    ("priya", "sponsor_qa", "NWT"),
    ("bruno", "sponsor_qa", "CTB"),
    ("tom", "auditor", "NWT"),
    ("fatima", "sponsor_qa", "FBK"),
    ("takeshi", "sponsor_qa", "TSP"),
    ("wendy", "sponsor_qa", "WGT"),
)
SESSIONS = 12  # two tabs per user; the machine has 2 cores
SEED = 20261126  # page orders are shuffled per session, reproducibly
SESSION_TIMEOUT_S = 300.0
# Kinds of record identifier every session must meet among its own (the positive control).
RECORD_KINDS = ("product name", "batch number", "deviation number", "CAPA number",
                "change number")  # fmt: skip
EXPORT_KINDS = ("product name", "batch number", "deviation number")
TITLES = {page["url"]: title for title, page in role_matrix.MATRIX.items()}
HEADER = re.compile(r"^\*\*(?P<name>.+)\*\* · `(?P<user>[^`]+)`$")
SPONSOR_CAPTION = re.compile(r"^Sponsor: (?P<sponsor>\S+)$")


@pytest.fixture(scope="module")
def portal(tmp_path_factory, demo_plant: DemoPlant, demo_warehouse: Path):
    """`streamlit run portal_app.py` on a data root holding the demo users, the demo plant's
    source and a copy of its published warehouse (nothing left to bootstrap)."""
    base = tmp_path_factory.mktemp("concurrency")
    root = base / "data"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTAL_DATA_DIR", str(root))
        users.ensure_demo_users()
        shutil.copytree(demo_warehouse, layout.demo_warehouse(), symlinks=True)
        layout.demo_source().parent.mkdir(parents=True)
        shutil.copy(demo_plant.path, layout.demo_source())
    server = start_portal(root, base / "streamlit.log")
    try:
        yield server
    finally:
        stop_portal(server)


@dataclass
class Seen:
    """One request of a session: what it asked for and everything the server sent."""

    step: str
    expect: str  # the page title this request must end on
    text: str
    headings: list[str]
    header_users: set[str]
    header_sponsors: set[str]
    exceptions: list[str]


@dataclass
class Report:
    number: int
    username: str
    role: str
    sponsor: str
    order: list[str]
    seen: list[Seen] = field(default_factory=list)
    files: list[tuple[str, str]] = field(default_factory=list)  # (page, file as text)
    clicked: list[str] = field(default_factory=list)  # pages whose export was clicked


def seen(step: str, url: str, run: Run, extra: str = "") -> Seen:
    users_shown, sponsors_shown = set(), set()
    for message in run.messages:
        if message.WhichOneof("type") != "delta" or not message.delta.HasField("new_element"):
            continue
        element = message.delta.new_element
        if element.WhichOneof("type") != "markdown":
            continue
        if header := HEADER.match(element.markdown.body):
            users_shown.add(header["user"])
        if caption := SPONSOR_CAPTION.match(element.markdown.body):
            sponsors_shown.add(caption["sponsor"])
    return Seen(step, TITLES[url], run.text() + "\n" + extra, run.headings(), users_shown,
                sponsors_shown, run.exceptions())  # fmt: skip


async def session(number: int, base: str, barrier: threading.Barrier) -> Report:
    """One tab: sign in with everyone else, open every page of the role, export."""
    username, role, sponsor = USERS[number % len(USERS)]
    order = sorted(role_matrix.allowed(role))
    random.Random(SEED + number).shuffle(order)
    report = Report(number, username, role, sponsor, order)
    async with Tab(base) as tab:
        form = await tab.run()
        assert form.headings() == ["Sponsor Portal"], form.headings()
        await asyncio.to_thread(barrier.wait, 120)
        run = await tab.run(widgets=[
            typed(text_input(form, "Username"), username),
            typed(text_input(form, "Password"), users.demo_password(username)),
            clicked(button(form, "Sign in").button.id),
        ])  # fmt: skip
        report.seen.append(seen("sign-in", "home", run))  # the roles' landing page
        clicks = 0
        for step, url in enumerate(order):
            if step % 2:  # the sidebar's link with the page's title, as a person clicks it
                menu = run.menu()
                assert TITLES[url] in menu, f"{url} missing from the sidebar: {sorted(menu)}"
                run = await tab.run(page_script_hash=menu[TITLES[url]])
            else:  # the URL path, as a browser's address bar or history names it
                run = await tab.run(page_name=url)
            rest = [await tab.table_rest(e) for e in run.elements("dataframe")]
            report.seen.append(seen(url, url, run, "\n".join(rest)))
            downloads = run.elements("download_button")
            for element in downloads:
                report.files.append((url, file_text(await tab.download(element))))
            if downloads and clicks < 1:
                after = await tab.run(widgets=[clicked(downloads[0].download_button.id)])
                report.seen.append(seen(f"{url} export click", url, after))
                report.clicked.append(url)
                clicks += 1
    return report


def run_sessions(base: str) -> list[Report | BaseException]:
    """All sessions in their own threads, released together by a barrier."""
    barrier = threading.Barrier(SESSIONS)
    results: list[Report | BaseException | None] = [None] * SESSIONS

    def worker(number: int) -> None:
        try:
            results[number] = asyncio.run(
                asyncio.wait_for(session(number, base, barrier), SESSION_TIMEOUT_S)
            )
        except BaseException as failed:  # noqa: BLE001 - reported by the test, not lost
            results[number] = failed
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(SESSIONS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + SESSION_TIMEOUT_S + 60
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    assert not [t for t in threads if t.is_alive()], "a session never finished"
    return results


def described(failure: BaseException) -> str:
    """An exception with where it was raised (the last frames of its traceback)."""
    return "".join(traceback.format_exception(failure, limit=-3))[-1500:]


def access_log_since(portal: Portal, last_id: int) -> list[sqlite3.Row]:
    with sqlite3.connect(portal.data_root / layout.portal_db().name) as db:
        db.row_factory = sqlite3.Row
        return db.execute(
            "SELECT username, role, sponsor_id, event, page FROM access_log WHERE id > ?",
            (last_id,),
        ).fetchall()


def last_log_id(portal: Portal) -> int:
    with sqlite3.connect(portal.data_root / layout.portal_db().name) as db:
        return db.execute("SELECT coalesce(max(id), 0) FROM access_log").fetchone()[0]


def stamp(text: str) -> dict[str, str]:
    """A CSV export's '# field: value' lines (an XLSX keeps them on its 'about' sheet)."""
    lines = [line[2:] for line in text.splitlines() if line.startswith("# ")]
    return dict(line.split(": ", 1) for line in lines)


def words(text: str, names: set[str]) -> list[str]:
    """leaks(text, names), quicker: only the names that occur at all go into its pattern."""
    return leaks(text, [name for name in names if name in text])


def problems_of(report: Report, oracle: Ownership) -> list[str]:
    """Everything wrong with what one session was shown and sent."""
    who = f"session {report.number} ({report.username}, {report.sponsor})"
    foreign, own = oracle.foreign(report.sponsor), oracle.own(report.sponsor)
    problems, shown, exported = [], set(), set()
    for view in report.seen:
        where = f"{who} {view.step}"
        if found := words(view.text, foreign):
            problems.append(f"{where}: shows another sponsor's {found[:5]}")
        mine = words(view.text, own)
        shown.update(mine)
        if not mine:
            problems.append(f"{where}: shows nothing of its own sponsor")
        if view.exceptions:
            problems.append(f"{where}: {view.exceptions}")
        if view.header_users != {report.username} or view.header_sponsors != {report.sponsor}:
            problems.append(f"{where}: header {view.header_users} {view.header_sponsors}")
        if view.headings != [view.expect]:
            problems.append(f"{where}: ended on {view.headings}, not {view.expect!r}")
    opened = [v.step for v in report.seen if v.step in TITLES]
    if opened != report.order:
        problems.append(f"{who}: opened {opened}, meant {report.order}")
    if not report.files or not report.clicked:
        problems.append(f"{who}: no export was offered")
    for url, text in report.files:
        if found := words(text, foreign):
            problems.append(f"{who} {url} export: holds another sponsor's {found[:5]}")
        mine = words(text, own)
        exported.update(mine)
        if not mine:
            problems.append(f"{who} {url} export: holds nothing of its own sponsor")
        fields = stamp(text)
        if fields and (fields.get("exported_by"), fields.get("sponsor")) != (
            report.username, report.sponsor
        ):  # fmt: skip
            problems.append(f"{who} {url} export: stamped {fields}")
        if not fields and report.username not in text.splitlines():  # an XLSX's 'about'
            problems.append(f"{who} {url} export: not stamped with {report.username}")
    # The sponsor's id in the header or a file's stamp is its own too: beyond that, its own
    # records of every kind must have reached the screen, and several kinds its files.
    for kind in RECORD_KINDS:
        if not shown & oracle.own(report.sponsor, kind):
            problems.append(f"{who}: no page named one of its own {kind}s")
    for kind in EXPORT_KINDS:
        if not exported & oracle.own(report.sponsor, kind):
            problems.append(f"{who}: no export held one of its own {kind}s")
    if not any(stamp(text) for _, text in report.files):
        problems.append(f"{who}: no CSV export carried a stamp")
    return problems


def test_simultaneous_sessions_never_cross_talk(portal: Portal, demo_plant: DemoPlant) -> None:
    oracle = ownership(demo_plant.path)
    assert set(oracle.sponsors()) == {sponsor for _, _, sponsor in USERS}
    before = last_log_id(portal)
    results = run_sessions(portal.url)
    failed = [(n, described(r)) for n, r in enumerate(results) if not isinstance(r, Report)]
    assert not failed, (failed[:3], portal.log_tail(2000))
    reports: list[Report] = results  # type: ignore[assignment]

    problems = [p for report in reports for p in problems_of(report, oracle)]
    assert not problems, (len(problems), problems[:8])

    entries = access_log_since(portal, before)
    expected = {username: (role, sponsor) for username, role, sponsor in USERS}
    by_user: dict[str, list[sqlite3.Row]] = defaultdict(list)
    for entry in entries:
        by_user[entry["username"]].append(entry)
    assert set(by_user) == set(expected), sorted(map(str, by_user))
    for username, (role, sponsor) in expected.items():
        logged = by_user[username]
        assert {(e["role"], e["sponsor_id"]) for e in logged} == {(role, sponsor)}, username
        mine = [r for r in reports if r.username == username]
        views = {e["page"] for e in logged if e["event"] == "PAGE_VIEW"}
        assert views >= {url for r in mine for url in r.order}, (username, sorted(views))
        exports = [e for e in logged if e["event"] == "EXPORT"]
        # Each file fetched is an export, logged as the server builds it (a click only fetches).
        assert len(exports) >= sum(len(r.files) for r in mine), (username, len(exports))
        assert any(e["event"] == "SIGN_IN" for e in logged), username
