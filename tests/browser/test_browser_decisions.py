"""Signing a change decision in a real browser on the real portal (README's run command, demo
mode): the signer types her password again, sees her signature and exports it; without the
permission, as the auditor or as another sponsor there is nothing to sign; CMO staff see the
decision on the cockpit. The tests of this module run in order, on one portal."""

from __future__ import annotations

import csv
import io

import pytest

from portal import decisions
from tests.browser_support import (
    VIEWPORT,
    open_signed_out,
    seen_text,
    settle,
    sign_in,
    submit,
    wait_for_session_cookie,
)

ZONE = "Europe/Berlin"


def _signed_in(browser, portal, user: str, path: str, heading: str):
    context = browser.new_context(viewport=VIEWPORT, timezone_id=ZONE, accept_downloads=True)
    page = context.new_page()
    open_signed_out(page, portal.url)
    sign_in(page, user, f"{user}-demo-2026")
    settle(page)
    wait_for_session_cookie(page)
    page.goto(portal.page_url(path))
    settle(page, heading)
    return context, page


def _approval_form(page):
    """The first signing form: prior approvals come first, their form open."""
    return page.locator('[data-testid="stForm"]').filter(has_text="Your decision").first


@pytest.fixture(scope="module")
def approval_label(portal) -> str:
    from warehouse.queries.decisions import subjects
    from warehouse.scope import open_sponsor_scope

    scope = open_sponsor_scope(portal.warehouse, "NWT")
    label = next(s.label for s in subjects(scope) if s.record_type == "change_approval")
    scope.close()
    return label


def test_priya_approves_with_her_password_sees_and_exports_the_signature(
    browser, portal, approval_label
):
    context, page = _signed_in(browser, portal, "priya", "change-control", "Change control")
    try:
        assert approval_label in seen_text(page)
        form = _approval_form(page)
        form.get_by_text("Approved", exact=True).click()
        form.get_by_role("textbox", name="Username").fill("priya")
        form.get_by_role("textbox", name="Password").fill("not-her-password")
        submit(page, lambda: form.get_by_role("button", name="Sign").click(), "Change control")
        assert "Wrong username or password: no signature was recorded" in seen_text(page)

        form = _approval_form(page)
        form.get_by_text("Approved", exact=True).click()
        form.get_by_role("textbox", name="Username").fill("priya")
        form.get_by_role("textbox", name="Password").fill("priya-demo-2026")
        submit(page, lambda: form.get_by_role("button", name="Sign").click(), "Change control",
               "Signed and recorded")  # fmt: skip
        text = seen_text(page)
        assert "Approved by Priya Raman (priya)" in text
        assert f"({ZONE})" in text and "meaning: Approved" in text
        assert "Not yet recorded in the CMO's QMS" in text

        with page.expect_download() as download:
            page.get_by_role("button", name="Export CSV").first.click()
        body = download.value.path().read_text()
        data = [line for line in body.splitlines() if not line.startswith("#")]
        rows = list(csv.DictReader(io.StringIO("\n".join(data))))
        assert [r["Meaning"] for r in rows] == ["Approved"]
        assert rows[0]["Signature"].startswith("Approved by Priya Raman (priya)")
    finally:
        context.close()


def test_without_the_permission_there_is_nothing_to_sign(browser, portal, monkeypatch):
    monkeypatch.setenv("PORTAL_DATA_DIR", str(portal.data_root))
    decisions.withdraw("priya", "carla")
    context, page = _signed_in(browser, portal, "priya", "change-control", "Change control")
    try:
        text = seen_text(page)
        assert "needs the permission to sign" in text
        assert page.get_by_role("button", name="Sign", exact=True).count() == 0
        assert "Approved by Priya Raman (priya)" in text  # what she signed stays
    finally:
        context.close()


@pytest.mark.parametrize(("user", "sees_it"), [("tom", True), ("bruno", False)])
def test_the_auditor_reads_the_signature_and_another_sponsor_sees_nothing_of_it(
    browser, portal, approval_label, user, sees_it
):
    context, page = _signed_in(browser, portal, user, "change-control", "Change control")
    try:
        text = seen_text(page)
        if user == "tom":  # the auditor never signs
            assert page.get_by_role("button", name="Sign", exact=True).count() == 0
        else:  # CTB's QA signs CTB's own changes only: NWT's is not there to sign
            assert approval_label not in text
        assert ("Approved by Priya Raman (priya)" in text) is sees_it
        assert ("DEC-NWT-0001" in text) is sees_it
    finally:
        context.close()


def test_the_cmo_sees_the_decision_on_the_cockpit(browser, portal, approval_label):
    context, page = _signed_in(browser, portal, "carla", "management-cockpit", "Management cockpit")
    try:
        text = seen_text(page)
        assert "Sponsor obligations on changes" in text
        assert "Signed in the portal, not yet in the QMS" in text
        assert "Priya Raman" in text  # who signed, beside the change
        assert approval_label.split(",")[0] in text
    finally:
        context.close()
