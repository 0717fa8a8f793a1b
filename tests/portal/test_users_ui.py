"""The Users page manages accounts: an auditor for a sponsor chosen from the published
snapshot, refusals in words, disable / enable / reset password / end an auditor's access now,
each confirmed and logged with the account's sponsor. CMO staff manage auditors only."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import bcrypt
import pytest
from streamlit.testing.v1 import AppTest

from portal import access_log, users
from portal.store import utc_now
from tests.page_harness import principal, run_page
from warehouse import layout
from warehouse.scope import sponsor_ids

PAGE = "users_admin.py"
CARLA = principal("cmo_quality", username="carla")
SAM = principal("admin", username="sam")
PASSWORD = "a-long-password-2026"


@pytest.fixture(autouse=True)
def data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    for username, name, role, sponsor in (
        ("carla", "Carla Jensen", "cmo_quality", None),
        ("sam", "Sam Okafor", "admin", None),
        ("priya", "Priya Raman", "sponsor_qa", "NWT"),
    ):
        users.add_user(username, name, role, PASSWORD, sponsor_id=sponsor)
    now = utc_now()
    window = {"valid_from": now - timedelta(days=1), "valid_until": now + timedelta(days=4)}
    users.add_user("tom", "Tom Fischer", "auditor", PASSWORD, sponsor_id="NWT", **window)
    return tmp_path


def widget(widgets, label: str):
    (found,) = [w for w in widgets if w.label == label]
    return found


def logged(event: str) -> list[tuple[str, str, str | None]]:
    now = utc_now()
    entries = access_log.entries_all(now - timedelta(minutes=5), now + timedelta(minutes=5))
    return [(e["username"], e["detail"], e["sponsor_id"]) for e in entries if e["event"] == event]


def apply(app: AppTest, account: str, action: str, *, confirm: bool = True) -> AppTest:
    widget(app.selectbox, "Account").set_value(account)
    app = app.run()
    widget(app.radio, "Action").set_value(action)
    if confirm:
        widget(app.checkbox, f"I mean to do this to {account}.").check()
    return widget(app.button, "Apply").click().run()


def test_an_auditor_is_made_for_a_sponsor_of_the_snapshot(demo_warehouse: Path) -> None:
    app = run_page(PAGE, CARLA, demo_warehouse)
    assert not app.exception
    sponsor = widget(app.selectbox, "Sponsor audited")
    assert sponsor.options == sponsor_ids(demo_warehouse)
    assert not [w for w in app.text_input if "sponsor" in w.label.lower()]  # no free text
    widget(app.text_input, "Username").input("Anna Berg!")
    widget(app.text_input, "Name").input("Anna Berg")
    app = widget(app.button, "Create auditor").click().run()
    (error,) = app.error
    assert error.value.startswith("No account was created: the username 'Anna Berg!'")
    assert "lower-case letters" in error.value and "^[" not in error.value
    assert users.get_user("anna berg!") is None

    widget(app.text_input, "Username").input("anna.berg")
    widget(app.text_input, "Name").input("Anna Berg")
    widget(app.selectbox, "Sponsor audited").set_value("CTB")
    app = widget(app.button, "Create auditor").click().run()
    assert not app.exception and not app.error
    made = users.get_user("anna.berg")
    assert (made.role, made.sponsor_id, made.created_by) == ("auditor", "CTB", "carla")
    assert users.principal_for("anna.berg", utc_now()).sponsor_id == "CTB"
    assert logged("USER_CREATED") == [("carla", "anna.berg", "CTB")]
    assert "anna.berg" in app.dataframe[0].value.to_csv(index=False)  # the registry, refreshed


def test_cmo_staff_manage_auditors_only_and_the_administrator_everyone_else(
    demo_warehouse: Path,
) -> None:
    app = run_page(PAGE, CARLA, demo_warehouse)
    assert [o.split(" · ")[0] for o in widget(app.selectbox, "Account").options] == ["tom"]
    app = run_page(PAGE, SAM, demo_warehouse)
    assert [o.split(" · ")[0] for o in widget(app.selectbox, "Account").options] == [
        "carla", "priya", "tom",
    ]  # fmt: skip
    assert widget(app.selectbox, "Account").options[1] == "priya · Priya Raman · Sponsor QA · NWT"


def test_disable_and_enable_are_confirmed_and_logged(demo_warehouse: Path) -> None:
    app = run_page(PAGE, SAM, demo_warehouse)
    app = apply(app, "priya", "Disable", confirm=False)
    assert "Tick the box" in app.warning[0].value
    assert users.principal_for("priya", utc_now()) is not None

    app = apply(app, "priya", "Disable")
    assert not app.exception and not app.error
    assert users.principal_for("priya", utc_now()) is None
    assert widget(app.run().radio, "Action").options[0] == "Enable"  # the undo, offered next
    app = apply(app, "priya", "Enable")
    assert users.principal_for("priya", utc_now()) is not None
    assert logged("USER_DISABLED") == [("sam", "priya", "NWT")]
    assert logged("USER_ENABLED") == [("sam", "priya", "NWT")]


def test_a_reset_password_is_shown_once_and_works(demo_warehouse: Path) -> None:
    app = apply(run_page(PAGE, CARLA, demo_warehouse), "tom", "Reset password")
    assert not app.exception and not app.error
    (shown,) = [c.value for c in app.code]
    with sqlite3.connect(layout.portal_db()) as conn:
        (stored,) = conn.execute(
            "SELECT password_hash FROM portal_user WHERE username = 'tom'"
        ).fetchone()
    assert bcrypt.checkpw(shown.encode(), stored.encode())
    assert not bcrypt.checkpw(PASSWORD.encode(), stored.encode())
    assert logged("PASSWORD_RESET") == [("carla", "tom", "NWT")]
    app.run()
    assert not app.code  # not shown again


def test_ending_an_auditors_access_now(demo_warehouse: Path) -> None:
    app = run_page(PAGE, SAM, demo_warehouse)
    widget(app.selectbox, "Account").set_value("priya")
    assert "End access now" not in widget(app.run().radio, "Action").options  # not an auditor
    app = apply(app, "tom", "End access now")
    assert not app.exception and not app.error
    assert users.principal_for("tom", utc_now()) is None
    assert users.get_user("tom").valid_until <= utc_now()
    assert logged("ACCESS_ENDED") == [("sam", "tom", "NWT")]
    assert "End access now" not in widget(app.run().radio, "Action").options  # already ended
    with pytest.raises(users.UserError, match="already ended"):
        users.end_access("tom", utc_now())
