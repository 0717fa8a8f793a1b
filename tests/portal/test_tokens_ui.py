"""Data-share tokens in the portal: CMO staff create and revoke them on the Users page (the
secret leaves once, in a profile download); a sponsor's QA sees its own on the Access log."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from portal import access_log, tokens
from portal.store import utc_now
from tests.download_capture import downloads, recording_media
from tests.page_harness import principal, run_page, shown_text
from warehouse.scope import sponsor_ids

CARLA = principal("cmo_quality", username="carla")
PRIYA = principal("sponsor_qa", "NWT", username="priya")


@pytest.fixture(autouse=True)
def data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    return tmp_path


def today() -> date:
    return utc_now().date()  # tokens expire by the wall clock (UTC), as sign-ins do


def issue(sponsor_id: str, label: str) -> tuple[tokens.Token, str]:
    return tokens.create(sponsor_id, label, today() + timedelta(days=30), "carla")


def token_table(app: AppTest) -> str:
    """The tokens table as shown, as CSV."""
    (frame,) = [f.value for f in app.dataframe if "token_id" in f.value.columns]
    return frame.to_csv(index=False)


def widget(widgets, label: str):
    (found,) = [w for w in widgets if w.label == label]
    return found


def submit_new_token(app: AppTest, sponsor_id: str, label: str, expires: date | None = None):
    widget(app.selectbox, "Sponsor").set_value(sponsor_id)
    widget(app.text_input, "Label").input(label)
    if expires is not None:
        widget(app.date_input, "Expires (end of the day, UTC)").set_value(expires)
    return widget(app.button, "Create token").click().run()


def test_cmo_staff_create_a_token_whose_profile_is_downloadable_once(demo_warehouse: Path):
    with recording_media() as made:
        app = run_page("users_admin.py", CARLA, demo_warehouse)
        assert "No token has been created yet." in shown_text(app)
        app = submit_new_token(app, "NWT", "NWT data team")
        assert not app.exception and not app.error

        (token,) = tokens.list_tokens()
        assert (token.sponsor_id, token.label) == ("NWT", "NWT data team")
        assert token.created_by == "carla"
        assert token.expires_at.date() == tokens.years_later(today(), 1)
        (download,) = downloads(app, made, "users")
        fetched = download.fetch()
    assert fetched.filename == "nwt-nwt-data-team.share"
    profile = json.loads(fetched.content)
    assert profile["endpoint"] == tokens.DEFAULT_ENDPOINT
    secret = profile["bearerToken"]
    assert tokens.authenticate(secret).token_id == token.token_id
    assert "will not be shown again" in " ".join(w.value for w in app.warning)
    assert token.token_id in shown_text(app) and secret not in shown_text(app)

    app.run()  # any next rerun: the download is gone, the table still lists the token
    assert not app.get("download_button")
    assert token.token_id in token_table(app) and secret not in shown_text(app)
    (logged,) = [e for e in access_log.entries_all(*_around_now()) if e["event"] != "PAGE_VIEW"]
    assert (logged["event"], logged["role"], logged["sponsor_id"]) == (
        "TOKEN_CREATED", "cmo_quality", "NWT",
    )  # fmt: skip


def _around_now() -> tuple[datetime, datetime]:
    now = utc_now()
    return now - timedelta(minutes=5), now + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("expires_in_years", "earlier_tokens", "problem"),
    [
        (3, 0, "more than 2 years ahead"),
        (1, 2, "already has 2 live tokens labelled 'NWT data team'"),
    ],
    ids=["expiry-3-years-ahead", "third-live-token-for-a-label"],
)
def test_a_refusal_is_shown_and_creates_nothing(
    demo_warehouse: Path, expires_in_years: int, earlier_tokens: int, problem: str
):
    for _ in range(earlier_tokens):
        issue("NWT", "NWT data team")
    app = run_page("users_admin.py", CARLA, demo_warehouse)
    expires = tokens.years_later(today(), expires_in_years)
    app = submit_new_token(app, "NWT", "NWT data team", expires)
    assert not app.exception
    (error,) = app.error
    assert error.value.startswith("No token was created") and problem in error.value
    assert "python -m" not in error.value
    assert len(tokens.list_tokens()) == earlier_tokens
    assert not app.get("download_button")


def test_revoking_needs_the_confirm_box(demo_warehouse: Path):
    token, secret = issue("CTB", "Contoso BI")
    app = run_page("users_admin.py", CARLA, demo_warehouse)
    assert widget(app.selectbox, "Token").options == [f"{token.token_id} · CTB · Contoso BI"]

    app = widget(app.button, "Revoke token").click().run()
    assert "Tick the box" in app.warning[0].value
    assert tokens.get(token.token_id).revoked_at is None

    widget(app.checkbox, "Its clients lose access at once; this cannot be undone.").check()
    app = widget(app.button, "Revoke token").click().run()
    assert not app.exception and not app.error
    assert tokens.get(token.token_id).revoked_by == "carla"
    assert tokens.authenticate(secret) is None
    assert "Revoked" in token_table(app)
    app.run()
    assert "No token is live." in shown_text(app)


def test_the_administrator_picks_from_the_snapshots_sponsors(demo_warehouse: Path):
    admin = principal("admin", username="sam")
    app = run_page("users_admin.py", admin, demo_warehouse)
    assert not app.exception and not app.error
    assert widget(app.selectbox, "Sponsor").options == sponsor_ids(demo_warehouse)
    app = submit_new_token(app, "CTB", "Contoso BI")
    assert [t.created_by for t in tokens.list_tokens("CTB")] == ["sam"]


def test_a_sponsors_qa_sees_its_own_tokens_only(demo_warehouse: Path):
    own, own_secret = issue("NWT", "Northwind analytics")
    other, _ = issue("CTB", "Contoso BI")
    app = run_page("access_log.py", PRIYA, demo_warehouse)
    assert not app.exception and not app.error
    shown = shown_text(app)
    assert "Your data-share tokens" in shown and "ask CMO quality" in shown
    assert own.token_id in shown and "Northwind analytics" in shown and "Live" in shown
    assert other.token_id not in shown and "Contoso BI" not in shown
    assert own_secret not in shown


@pytest.mark.parametrize(
    ("page", "role", "sponsor_id"),
    [
        ("access_log.py", "auditor", "NWT"),
        ("access_log.py", "bd_demo", None),
        ("access_log.py", "cmo_quality", None),  # CMO staff manage tokens on the Users page
        ("users_admin.py", "auditor", "NWT"),
        ("users_admin.py", "bd_demo", None),
        ("users_admin.py", "sponsor_qa", "NWT"),
    ],
)
def test_no_token_section_for_other_roles(demo_warehouse: Path, page, role, sponsor_id):
    token, _ = issue("NWT", "Northwind analytics")
    app = run_page(page, principal(role, sponsor_id), demo_warehouse)
    assert not app.exception
    assert not [f for f in app.dataframe if "token_id" in f.value.columns]
    assert not [h for h in app.subheader if "data-share tokens" in h.value.lower()]
    if role != "cmo_quality":  # CMO staff read every access-log entry, token events included
        shown = shown_text(app)
        assert token.token_id not in shown and "Northwind analytics" not in shown


def test_a_tokens_row_is_in_its_state_at_the_moment_with_times_in_utc():
    created = datetime(2026, 1, 5, 10, tzinfo=UTC)
    rows = [
        tokens.Token(f"tok_{n}", "NWT", "team", created, "carla",
                     datetime.combine(expiry, time.max, UTC), None, revoked, revoked and "sam")
        for n, expiry, revoked in ((1, date(2026, 11, 2), None), (2, date(2026, 11, 1), None),
                                   (3, date(2027, 1, 5), datetime(2026, 3, 1, tzinfo=UTC)))
    ]  # fmt: skip
    frame = tokens.tokens_frame(rows, datetime(2026, 11, 2, 23, 59, tzinfo=UTC))
    assert frame["state"].to_list() == ["LIVE", "EXPIRED", "REVOKED"]
    assert frame["expires_on"].to_list() == [date(2026, 11, 2), date(2026, 11, 1), date(2027, 1, 5)]
    assert frame["created_at"].to_list() == [datetime(2026, 1, 5, 10)] * 3
