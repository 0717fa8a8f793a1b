"""Sign-in, lockout, expiry, idle time-out, sign-out and page registration, through AppTest."""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from portal import users
from portal.navigation import PAGES
from portal.store import connect, to_text, utc_now
from warehouse import layout

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def portal(store_engine, tmp_path, monkeypatch, demo_users_store) -> Path:
    """A fresh data root and store with the demo users (on either engine); the demo plant is
    not built (no data yet)."""
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PORTAL_BOOTSTRAP", "off")
    for name in ("PORTAL_MODE", "PORTAL_COOKIE_KEY", "PORTAL_IDLE_MINUTES"):
        monkeypatch.delenv(name, raising=False)
    if store_engine == "sqlite":  # a PostgreSQL test's database is a copy with them already
        shutil.copy(demo_users_store, layout.portal_db())
    return tmp_path


def app() -> AppTest:
    return AppTest.from_file(str(ROOT / "portal_app.py"), default_timeout=30).run()


def sign_in(at: AppTest, username: str, password: str | None = None) -> AppTest:
    at.text_input(key="sign_in_username").input(username)
    at.text_input(key="sign_in_password").input(password or users.demo_password(username))
    return at.button[0].click().run()


def signed_in_as(at: AppTest) -> str | None:
    principal = at.session_state.get("_principal")
    return principal.username if principal else None


def events(username: str) -> list[str]:
    with connect() as conn:
        rows = conn.execute(
            "SELECT event FROM access_log WHERE username = ? ORDER BY id", (username,)
        ).fetchall()
    return [event for (event,) in rows]


def errors(at: AppTest) -> str:
    return " ".join(str(e.value) for e in at.error)


def test_signed_out_browser_sees_only_the_sign_in_form(portal):
    at = app()
    assert not at.exception
    assert [w.label for w in at.text_input] == ["Username", "Password"]
    assert signed_in_as(at) is None


def test_sign_in_succeeds_and_sets_the_principal_and_warehouse(portal):
    at = sign_in(app(), "priya")
    assert not at.exception
    assert signed_in_as(at) == "priya"
    assert at.session_state["_principal"].sponsor_id == "NWT"
    assert at.session_state["_warehouse_root"] == str(layout.demo_warehouse())
    assert "Sponsor: NWT" in [c.value for c in at.sidebar.caption]
    assert events("priya")[:2] == ["SIGN_IN", "PAGE_VIEW"]


def test_wrong_password_is_refused_and_logged(portal):
    at = sign_in(app(), "priya", "not-her-password")
    assert signed_in_as(at) is None
    assert "Sign-in refused" in errors(at)
    assert events("priya") == ["SIGN_IN_FAILED"]


def test_lockout_refuses_the_right_password_until_the_lock_passes(portal, monkeypatch):
    monkeypatch.setenv("PORTAL_LOCKOUT_FAILURES", "3")
    monkeypatch.setenv("PORTAL_LOCKOUT_MINUTES", "15")
    at = AppTest.from_file(str(ROOT / "portal_app.py"), default_timeout=90)
    at.context = {"timezone": "America/New_York"}  # the browser's zone
    at = at.run()
    for _ in range(3):
        at = sign_in(at, "bruno", "wrong-password")
    assert "locked" in errors(at)
    # The lock's end in the viewer's zone, with UTC beside it.
    assert re.search(r"Try again after \d\d:\d\d:\d\d America/New_York \(\d\d:\d\d:\d\d UTC\)",
                     errors(at)), errors(at)  # fmt: skip
    at = sign_in(at, "bruno")
    assert signed_in_as(at) is None and "locked" in errors(at)
    # The lock's end is moved into the past rather than slept past: no race under load.
    with connect() as store:
        store.execute(
            "UPDATE signin_failure SET locked_until = ? WHERE username = 'bruno'",
            (to_text(utc_now() - timedelta(seconds=1)),),
        )
    at = sign_in(at, "bruno")
    assert signed_in_as(at) == "bruno"
    assert events("bruno")[-5:] == ["SIGN_IN_FAILED", "LOCKED", "LOCKED", "SIGN_IN", "PAGE_VIEW"]


def test_an_auditor_outside_the_window_is_refused(portal):
    now = utc_now()
    users.add_user(
        "old-auditor", "Old Auditor", "auditor", "auditor-password-1", sponsor_id="NWT",
        valid_from=now - timedelta(days=10), valid_until=now - timedelta(days=5),
    )  # fmt: skip
    at = sign_in(app(), "old-auditor", "auditor-password-1")
    assert signed_in_as(at) is None
    assert events("old-auditor") == ["EXPIRED"]


def test_a_running_auditor_session_ends_at_the_next_rerun_after_expiry(portal):
    at = sign_in(app(), "tom")
    assert signed_in_as(at) == "tom"
    assert any("valid until" in w.value for w in at.sidebar.warning)  # the watermark
    with connect() as conn:
        conn.execute(
            "UPDATE portal_user SET valid_until = ? WHERE username = 'tom'",
            (to_text(utc_now() - timedelta(seconds=1)),),
        )
    at.run()
    assert signed_in_as(at) is None
    assert "access period has ended" in " ".join(i.value for i in at.info)
    assert events("tom")[-1] == "EXPIRED"


def test_a_disabled_user_is_signed_out_at_the_next_rerun(portal):
    at = sign_in(app(), "bruno")
    users.disable_user("bruno")
    at.run()
    assert signed_in_as(at) is None


def test_idle_time_out_signs_out(portal, monkeypatch):
    monkeypatch.setenv("PORTAL_IDLE_MINUTES", "15")
    at = sign_in(app(), "carla")
    assert signed_in_as(at) == "carla"
    # The last activity is moved back rather than slept past: no wall-clock race under load.
    at.session_state["_last_activity"] = utc_now() - timedelta(minutes=15, seconds=1)
    at.run()
    assert signed_in_as(at) is None
    assert events("carla")[-1] == "TIMEOUT"


def test_sign_out_clears_all_session_state(portal):
    at = sign_in(app(), "elena")
    assert signed_in_as(at) == "elena"
    at.sidebar.button(key="sign_out").click().run()
    for key in ("_principal", "_warehouse_root", "username", "_last_activity"):
        assert key not in at.session_state
    assert at.session_state["logout"] is True  # the old cookie cannot sign back in
    assert events("elena")[-1] == "SIGN_OUT"
    at.run()
    assert signed_in_as(at) is None


@pytest.mark.parametrize(
    ("username", "bookmark", "title"),
    [
        ("carla", "access-log", "Access log"),  # a bookmarked page opens after sign-in
        ("priya", "users", "Overview"),  # not her role's page: the default page opens
        ("priya", "no-such-page", "Overview"),
    ],
)
def test_a_bookmarked_path_opens_only_if_the_role_has_it(portal, username, bookmark, title):
    at = app()
    at.session_state["_requested_path"] = bookmark
    at = sign_in(at, username)
    assert at.title[0].value == title


def test_a_page_outside_the_role_is_not_registered(portal):
    at = sign_in(app(), "priya")
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/admin/users_admin.py")


def test_no_page_script_sits_where_streamlit_auto_registers_pages():
    """A top-level pages/*.py would be reachable by its stem on a fresh server, unsigned."""
    assert list((ROOT / "pages").glob("*.py")) == []
    assert all(Path(spec.script).parent.parent.name == "pages" for spec in PAGES)


def test_no_url_path_equals_a_page_scripts_file_stem():
    """Streamlit's pages/ auto-discovery would run such a script without portal_app.py."""
    for spec in PAGES:
        assert spec.url_path != Path(spec.script).stem, spec


@pytest.mark.parametrize(("key", "reason"), [(None, "missing"), ("change-me", "placeholder")])
def test_production_mode_refuses_a_missing_or_placeholder_key(portal, monkeypatch, key, reason):
    monkeypatch.setenv("PORTAL_MODE", "production")
    if key:
        monkeypatch.setenv("PORTAL_COOKIE_KEY", key)
    at = app()
    assert reason in errors(at)
    assert not at.text_input


def test_production_mode_starts_with_a_real_key(portal, monkeypatch):
    monkeypatch.setenv("PORTAL_MODE", "production")
    monkeypatch.setenv("PORTAL_COOKIE_KEY", "k" * 48)
    at = sign_in(app(), "priya")
    assert at.session_state["_warehouse_root"] == str(layout.real_warehouse())


def test_bd_demo_reads_the_demo_plant_even_in_production(portal, monkeypatch):
    monkeypatch.setenv("PORTAL_MODE", "production")
    monkeypatch.setenv("PORTAL_COOKIE_KEY", "k" * 48)
    at = sign_in(app(), "marco")
    assert at.session_state["_warehouse_root"] == str(layout.demo_warehouse())


def test_a_user_chooses_the_page_that_opens_after_sign_in(portal):
    at = sign_in(app(), "priya")
    assert at.title[0].value == "Overview"
    assert not [b for b in at.sidebar.button if b.key == "landing_page"]  # already the landing
    at.switch_page("pages/sponsor/capa.py").run()
    at.sidebar.button(key="landing_page").click().run()
    at.sidebar.button(key="sign_out").click().run()
    at = sign_in(at, "priya")
    assert at.title[0].value == "CAPA aging"
    assert users.get_user("bruno").landing_page is None  # the choice is priya's alone
