"""Every export path re-checks the user registry when the file is fetched, not when drawn.

Streamlit runs a download button's file function when the browser fetches the file, before
any rerun (see tests/download_capture.py), so a button left on an auditor's screen past the
end of the engagement must still deliver nothing: every export must be built through
portal.widgets.deliver(). The first tests take every download button of every page an auditor
may open in the real app (AppTest on portal_app.py) -- dashboards' CSV/XLSX and the audit
pack -- and fetch their files through Streamlit's own media manager while the auditor is valid,
after the window ended, after it is restored, and after the account is disabled. The last test
does the same against a real `streamlit run portal_app.py` in headless Chromium.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

from portal import users
from portal.navigation import pages_for
from portal.store import to_text, utc_now
from portal.widgets import REFUSED_EXPORT
from tests import role_matrix
from tests.browser_support import (
    BOOTSTRAP_TIMEOUT_MS,
    CHROMIUM,
    LAUNCH_ARGS,
    leaks,
    open_from_sidebar,
    open_signed_out,
    require_chromium,
    settle,
    sign_in,
    start_portal,
    stop_portal,
    submit,
    wait_for_session_cookie,
)
from tests.download_capture import (
    RECORD_KEY,
    Download,
    Fetched,
    as_text,
    batch_with_exceptions,
    data_rows,
    downloads,
    recording_media,
)
from tests.ownership import ownership
from tests.page_harness import ROOT
from warehouse import layout

SPONSOR = "NWT"
PASSWORD = "auditor-password-1"
EXPORT_EVENTS = ("EXPORT", "DOWNLOAD")
PACK_PAGE = "audit-pack"


# --- a data root with the demo warehouse, and a time-limited auditor ------------------------


@pytest.fixture(scope="module")
def data_root(tmp_path_factory, demo_warehouse: Path) -> Iterator[Path]:
    """A data root holding a copy of the published demo warehouse; the app reads it in
    this process (AppTest), so the environment points there for the whole module."""
    root = tmp_path_factory.mktemp("export-fetch-data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTAL_DATA_DIR", str(root))
        patch.setenv("PORTAL_BOOTSTRAP", "off")
        for name in ("PORTAL_MODE", "PORTAL_COOKIE_KEY", "PORTAL_IDLE_MINUTES"):
            patch.delenv(name, raising=False)
        shutil.copytree(demo_warehouse, layout.demo_warehouse(), symlinks=True)
        yield root


def add_auditor(username: str) -> None:
    """An auditor of SPONSOR whose window runs from a day ago to a day ahead (wall clock)."""
    now = utc_now()
    users.add_user(
        username, "Fetch Auditor", "auditor", PASSWORD, sponsor_id=SPONSOR,
        valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=1),
    )  # fmt: skip


def set_window_end(username: str, moment) -> None:
    with sqlite3.connect(layout.portal_db()) as conn:
        conn.execute("UPDATE portal_user SET valid_until = ? WHERE username = ?",
                     (to_text(moment), username))  # fmt: skip


def set_disabled(username: str, disabled: bool) -> None:
    if disabled:
        users.disable_user(username)
        return
    with sqlite3.connect(layout.portal_db()) as conn:
        conn.execute("UPDATE portal_user SET disabled = 0 WHERE username = ?", (username,))


def logged_exports(username: str) -> int:
    with sqlite3.connect(layout.portal_db()) as conn:
        (count,) = conn.execute(
            f"SELECT COUNT(*) FROM access_log WHERE username = ? AND event IN "
            f"({', '.join('?' * len(EXPORT_EVENTS))})",
            (username, *EXPORT_EVENTS),
        ).fetchone()
    return count


# --- driving the real app under AppTest -----------------------------------------------------


def open_url(at: AppTest, url_path: str) -> AppTest:
    """What typing https://portal/<url_path> does (as test_segregation_app opens pages)."""
    at.context = {"url": f"http://localhost:8501/{url_path}"}
    at._page_hash = calc_hash(url_path)  # st.Page hashes its url_path
    return at.run()


def signed_in(username: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "portal_app.py"), default_timeout=300).run()
    at.text_input(key="sign_in_username").input(username)
    at.text_input(key="sign_in_password").input(PASSWORD)
    at = at.button[0].click().run()
    assert at.session_state.get("_principal") is not None, "the auditor could not sign in"
    return at


def exporting_pages() -> set[str]:
    """URL paths of the auditor's pages whose script draws an export or download button."""
    found = set()
    for spec in pages_for("auditor"):
        source = (ROOT / spec.script).read_text()
        if "export_buttons(" in source or "download_button(" in source:
            found.add(spec.url_path)
    return found


def visit_every_page(at: AppTest, made) -> list[Download]:
    """Open each page the auditor may open (generating a pack on the audit-pack page) and
    collect every download button drawn."""
    found: list[Download] = []
    for spec in pages_for("auditor"):
        if spec.url_path == "batch-record":  # as the batch list's row link does
            at.session_state[RECORD_KEY] = batch_with_exceptions(layout.demo_warehouse(), SPONSOR)
        at = open_url(at, spec.url_path)
        assert not at.exception, (spec.url_path, [e.value for e in at.exception])
        if spec.url_path == PACK_PAGE:
            at = at.button(key="pack:generate").click().run()
            assert not at.exception, [e.value for e in at.exception]
        found += downloads(at, made, spec.url_path)
    return found


@pytest.fixture(scope="module")
def stale(data_root: Path) -> Iterator[tuple[str, list[Download]]]:
    """Every download button the auditor was shown, page by page, never clicked."""
    username = "fetch-auditor"
    add_auditor(username)
    with recording_media() as made:
        at = signed_in(username)
        yield username, visit_every_page(at, made)


def fetch_all(found: list[Download]) -> dict[str, Fetched]:
    return {f"{d.page}/{d.key}": d.fetch() for d in found}


# --- the tests: AppTest ---------------------------------------------------------------------


def test_every_page_with_an_export_was_visited_and_drew_its_buttons(stale) -> None:
    _, found = stale
    assert role_matrix.allowed("auditor") <= {s.url_path for s in pages_for("auditor")}
    expected = exporting_pages()
    assert PACK_PAGE in expected and len(expected) >= 5, expected
    assert expected <= {d.page for d in found}, expected - {d.page for d in found}
    # None carries a file built in advance (bytes as `data`): each is built when fetched.
    ready = [f"{d.page}/{d.key}" for d in found if d.deferred_file_id is None or d.url]
    assert not ready, ready


def test_while_valid_every_captured_file_holds_rows(stale) -> None:
    """Positive control: the captured functions do deliver data while access lasts."""
    username, found = stale
    files = fetch_all(found)
    empty = [name for name, f in files.items() if f.content == REFUSED_EXPORT or not data_rows(f)]
    assert not empty, empty
    assert any(f.filename and f.filename.endswith(".zip") for f in files.values())


def test_after_the_window_ends_every_captured_file_is_refused(stale) -> None:
    username, found = stale
    before = logged_exports(username)
    set_window_end(username, utc_now() - timedelta(seconds=1))
    try:
        files = fetch_all(found)
        delivered = [name for name, f in files.items() if f.content != REFUSED_EXPORT]
        assert not delivered, delivered
        assert logged_exports(username) == before
    finally:
        set_window_end(username, utc_now() + timedelta(days=1))
    # The same functions deliver again once the window is open: the check is at fetch time.
    assert all(data_rows(f) for f in fetch_all(found).values())


def test_for_a_disabled_account_every_captured_file_is_refused(stale) -> None:
    username, found = stale
    before = logged_exports(username)
    set_disabled(username, True)
    try:
        files = fetch_all(found)
        delivered = [name for name, f in files.items() if f.content != REFUSED_EXPORT]
        assert not delivered, delivered
        assert logged_exports(username) == before
    finally:
        set_disabled(username, False)


# --- the same through a real server and a real browser --------------------------------------

VIEWPORT = {"width": 1400, "height": 1000}
DOWNLOAD_TIMEOUT_MS = 90_000


def _cookie_header(context) -> str:
    return "; ".join(f"{c['name']}={c['value']}" for c in context.cookies())


def _get(url: str, cookie: str) -> bytes:
    request = urllib.request.Request(url, headers={"Cookie": cookie})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return reply.read()


def _click_download(page, name: str, wire: Wire) -> tuple[bytes, str]:
    """Click the download button `name`; the file the browser receives and its URL."""
    seen = len(wire.traffic)
    try:
        with page.expect_download(timeout=DOWNLOAD_TIMEOUT_MS) as started:
            page.get_by_role("button", name=name).first.click()
        download = started.value
    except Exception as failed:  # what the click did on the wire, to tell why nothing came
        raise AssertionError(f"{name}: no download; wire: {wire.traffic[seen:]}") from failed
    return Path(download.path()).read_bytes(), download.url


def _fetched(content: bytes, url: str) -> Fetched:
    return Fetched(content, "", url.rsplit("/", 1)[-1])


class Wire:
    """Playwright between one tab and the server's websocket (/_stcore/stream).

    It notes every download button the server sends (its /media/ URL, or the placeholder id
    of a file built on request), the reruns the tab asks for and the file requests and their
    answers. A download button's click must only fetch the file: a click that also reran the
    page would race the fetch (the rerun re-registers the file under a new id), and could let
    a stale-button check pass by the sign-out rerun arriving first.
    """

    def __init__(self) -> None:
        self.reruns = 0
        self.traffic: list[str] = []
        self.buttons: list[tuple[str, str, str]] = []  # (label, url, deferred file id)

    def route(self, ws) -> None:
        server = ws.connect_to_server()

        def from_tab(message: str | bytes) -> None:
            if isinstance(message, bytes):
                kind = BackMsg.FromString(message).WhichOneof("type")
                self.reruns += kind == "rerun_script"
                self.traffic.append(f"tab:{kind}")
            server.send(message)

        def from_server(message: str | bytes) -> None:
            if isinstance(message, bytes):
                self._note(message)
            ws.send(message)

        ws.on_message(from_tab)
        server.on_message(from_server)

    def _note(self, message: bytes) -> None:
        msg = ForwardMsg.FromString(message)
        kind = msg.WhichOneof("type")
        if kind == "backend_operation_response":
            reply = msg.backend_operation_response
            self.traffic.append(f"server:file {reply.error_msg or reply.deferred_file.url}")
        if kind != "delta" or msg.delta.WhichOneof("type") != "new_element":
            return
        element = msg.delta.new_element
        if element.WhichOneof("type") == "download_button":
            button = element.download_button
            self.buttons.append((button.label, button.url, button.deferred_file_id))


def _tab(context, wire: Wire):
    tab = context.new_page()
    tab.route_web_socket("**/_stcore/stream", wire.route)
    return tab


@pytest.mark.browser
def test_a_stale_button_on_a_real_server_delivers_nothing(tmp_path, monkeypatch) -> None:
    """Two tabs of a time-limited auditor: a dashboard export and an audit pack. No button
    the server sends carries a ready file; each delivers rows while the auditor is valid;
    after the registry ends the window, clicking the buttons still on screen -- and fetching
    the /media/ URL that leads to, with the browser's cookies -- returns the refusal, none of
    the sponsor's data, and adds nothing to the access log."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    server = start_portal(tmp_path / "data", tmp_path / "streamlit.log")
    deadline = time.monotonic() + 600  # the whole test, however slow the machine
    try:
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
            try:
                context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
                wires = {"export": Wire(), "pack": Wire()}
                first = _tab(context, wires["export"])
                open_signed_out(first, server.url, BOOTSTRAP_TIMEOUT_MS)  # bootstraps
                monkeypatch.setenv("PORTAL_DATA_DIR", str(server.data_root))
                username = "browser-auditor"
                add_auditor(username)
                own = ownership(server.source).own(SPONSOR, "batch number", "product name")
                assert own

                sign_in(first, username, PASSWORD)
                settle(first)
                wait_for_session_cookie(first)
                open_from_sidebar(first, "Batches")
                second = _tab(context, wires["pack"])  # its own session, the same cookie
                second.goto(server.page_url(PACK_PAGE))
                settle(second, "Audit pack")
                submit(second, lambda: second.get_by_role("button", name="Generate").click(),
                       "Audit pack", "Audit pack ready")  # fmt: skip
                tabs = ((first, "Export CSV", wires["export"]),
                        (second, "Download audit pack", wires["pack"]))  # fmt: skip

                # Positive control: each button delivers rows while the auditor is valid, and
                # its click asks for no rerun.
                for tab, name, wire in tabs:
                    reruns = wire.reruns
                    content, url = _click_download(tab, name, wire)
                    assert "/media/" in url
                    assert data_rows(_fetched(content, url)) > 0, name
                    assert wire.reruns == reruns, f"{name}: the click reran the page"
                assert logged_exports(username) == 2
                # From the network: every button sent names a file still to be built.
                sent = [b for wire in wires.values() for b in wire.buttons]
                assert {"Export CSV", "Download audit pack"} <= {label for label, _, _ in sent}
                ready = [(label, url) for label, url, deferred in sent if url or not deferred]
                assert not ready, ready
                assert time.monotonic() < deadline

                set_window_end(username, utc_now() - timedelta(seconds=1))
                cookie = _cookie_header(context)
                for tab, name, wire in tabs:
                    reruns = wire.reruns
                    content, url = _click_download(tab, name, wire)
                    assert wire.reruns == reruns, "the file request came after a rerun"
                    assert "/media/" in url, url
                    fetched = _get(url, cookie)
                    for body in (content, fetched):
                        assert body == REFUSED_EXPORT, (name, body[:80])
                        assert not leaks(as_text(_fetched(body, url)), own)
                assert logged_exports(username) == 2
                assert time.monotonic() < deadline
            finally:
                browser.close()
    finally:
        stop_portal(server)
