"""The signing form through the whole app (portal_app.py under AppTest): a session that timed
out, or whose account ended, while the form was filled in signs nothing; a locked account is
signed out with the reason."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from portal import decisions, users
from portal.store import utc_now
from warehouse import layout
from warehouse.queries.decisions import subjects
from warehouse.scope import open_sponsor_scope

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def portal(fresh_store, monkeypatch, demo_warehouse) -> Path:
    """A data root of its own: the demo users, priya granted, a copy of the demo warehouse."""
    monkeypatch.setenv("PORTAL_BOOTSTRAP", "off")
    monkeypatch.setenv("PORTAL_IDLE_MINUTES", "15")
    for name in ("PORTAL_MODE", "PORTAL_COOKIE_KEY"):
        monkeypatch.delenv(name, raising=False)
    decisions.grant("priya", "carla")
    shutil.copytree(demo_warehouse, layout.demo_warehouse(), symlinks=True)
    return fresh_store


@pytest.fixture(scope="module")
def approval(demo_warehouse):
    scope = open_sponsor_scope(demo_warehouse, "NWT")
    found = next(s for s in subjects(scope) if s.record_type == "change_approval")
    scope.close()
    return found


def _filled_form(approval, password: str = "priya-demo-2026") -> AppTest:
    """priya signed in, on Change control, the approval form filled in but not yet sent."""
    at = AppTest.from_file(str(ROOT / "portal_app.py"), default_timeout=90).run()
    at.text_input(key="sign_in_username").input("priya")
    at.text_input(key="sign_in_password").input("priya-demo-2026")
    at = at.button[0].click().run()
    at.switch_page("pages/sponsor/change_control.py").run()
    assert not at.exception
    key = f"sign:{approval.record_id}:first"
    at.radio(key=f"{key}:meaning").set_value("APPROVED")
    at.text_input(key=f"{key}:username").input("priya")
    at.text_input(key=f"{key}:password").input(password)
    return at


def _send(at: AppTest, approval) -> AppTest:
    key = f"sign:{approval.record_id}:first"
    return next(b for b in at.button if b.key == f"FormSubmitter:{key}-Sign").click().run()


def test_the_filled_form_signs_when_the_session_is_live(portal, approval):
    at = _send(_filled_form(approval), approval)
    assert [d.signer for d in decisions.for_sponsor("NWT")] == ["priya"]
    assert any("Signed and recorded" in str(s.value) for s in at.success)


def test_a_session_that_timed_out_while_filling_in_signs_nothing(portal, approval):
    at = _filled_form(approval)
    at.session_state["_last_activity"] = utc_now() - timedelta(minutes=15, seconds=1)
    at = _send(at, approval)
    assert at.session_state.get("_principal") is None  # signed out, at the sign-in form
    assert decisions.for_sponsor("NWT") == []


def test_an_account_ended_while_filling_in_signs_nothing(portal, approval):
    at = _filled_form(approval)
    users.disable_user("priya")
    at = _send(at, approval)
    assert at.session_state.get("_principal") is None
    assert decisions.for_sponsor("NWT") == []


def test_the_signature_that_locks_the_account_signs_the_session_out(portal, approval, monkeypatch):
    monkeypatch.setenv("PORTAL_LOCKOUT_FAILURES", "1")
    # The refusal asks for a sign-out and reruns: the same click lands on the sign-in form.
    at = _send(_filled_form(approval, password="not-her-password"), approval)
    assert at.session_state.get("_principal") is None
    assert any("account is now locked" in str(i.value) for i in at.info), at.info
    assert decisions.for_sponsor("NWT") == []


def test_reruns_after_a_signature_replay_nothing(portal, approval):
    """CSRF-style reruns: the browser (or anyone on its connection) asks for more runs with the
    same widget state; a form's submit counts once, and its password field was cleared."""
    at = _send(_filled_form(approval), approval)
    for _ in range(3):
        at.run()
    assert len(decisions.for_sponsor("NWT")) == 1
    leftover = [t for t in at.text_input if (t.key or "").endswith(":password")]
    assert all(not t.value for t in leftover)  # nothing typed survives to be replayed
