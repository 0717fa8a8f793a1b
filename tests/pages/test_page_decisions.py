"""Signing a decision on the change control page (real page under AppTest, real scope, real
portal store): who sees the form, what a signature records, and every refusal recording nothing.
"""

from __future__ import annotations

import io
import zipfile
from datetime import date

import pytest

from portal import decisions, users
from tests.page_harness import principal, run_page, shown_text
from warehouse.auditpack import PackRequest, generate_pack
from warehouse.queries.decisions import subjects
from warehouse.scope import open_sponsor_scope

PAGE = "change_control.py"


@pytest.fixture
def store(fresh_store):
    """A fresh portal store with the demo users; priya (NWT) may sign."""
    decisions.grant("priya", "carla")
    return fresh_store


@pytest.fixture(scope="module")
def approval(demo_warehouse):
    """NWT's change awaiting its prior approval, as the page will show it."""
    scope = open_sponsor_scope(demo_warehouse, "NWT")
    found = [s for s in subjects(scope) if s.record_type == "change_approval"]
    scope.close()
    assert found, "the demo plant has a change awaiting NWT's prior approval"
    return found[0]


def _priya():
    return principal("sponsor_qa", "NWT", username="priya")


def _sign(app, subject, meaning: str, password: str, *, reason: str = "", username="priya"):
    key = f"sign:{subject.record_id}:first"
    app.radio(key=f"{key}:meaning").set_value(meaning)
    app.text_area(key=f"{key}:reason").input(reason)
    app.text_input(key=f"{key}:username").input(username)
    app.text_input(key=f"{key}:password").input(password)
    # The form's own submit button: Streamlit keys it "FormSubmitter:<form>-<label>".
    form_button = next(b for b in app.button if b.key == f"FormSubmitter:{key}-Sign")
    return form_button.click().run()


def test_a_granted_sponsor_qa_approves_and_sees_the_signature(store, demo_warehouse, approval):
    app = run_page(PAGE, _priya(), demo_warehouse)
    text = shown_text(app)
    assert "Your decisions" in text
    assert approval.label in text
    for what, details in approval.shown:  # the record, its obligation and clause, as signed
        assert what in text and details in text
    app = _sign(app, approval, "APPROVED", "priya-demo-2026")
    assert not app.exception
    (decision,) = decisions.for_sponsor("NWT")
    assert (decision.meaning, decision.signer, decision.signer_name) == (
        "APPROVED", "priya", "Priya Raman")  # fmt: skip
    assert decision.record_hash == approval.content_hash
    assert decision.record_id == approval.record_id
    text = shown_text(app)
    assert "Signed and recorded" in text
    assert "Approved by Priya Raman (priya)" in text
    assert "Not yet recorded in the CMO's QMS" in text
    assert decisions.verify().intact


def test_a_wrong_password_records_nothing_and_says_so(store, demo_warehouse, approval):
    app = _sign(run_page(PAGE, _priya(), demo_warehouse), approval, "APPROVED", "not-her-pass")
    assert "Wrong username or password" in shown_text(app)
    assert decisions.for_sponsor("NWT") == []


def test_a_rejection_needs_a_reason(store, demo_warehouse, approval):
    app = _sign(run_page(PAGE, _priya(), demo_warehouse), approval, "REJECTED", "priya-demo-2026")
    assert "A rejection needs a reason" in shown_text(app)
    assert decisions.for_sponsor("NWT") == []
    app = _sign(app, approval, "REJECTED", "priya-demo-2026", reason="No comparability data")
    (decision,) = decisions.for_sponsor("NWT")
    assert (decision.meaning, decision.reason) == ("REJECTED", "No comparability data")
    assert "reason: No comparability data" in shown_text(app)


def test_a_second_click_signs_nothing_more(store, demo_warehouse, approval):
    app = _sign(run_page(PAGE, _priya(), demo_warehouse), approval, "APPROVED", "priya-demo-2026")
    # The first form is gone once signed: what remains replaces the decision, with the other
    # meaning only, and needs the password again.
    assert not [b for b in app.text_input if b.key == f"sign:{approval.record_id}:first:password"]
    app.run()
    assert len(decisions.for_sponsor("NWT")) == 1


def test_a_forged_submit_without_the_shown_record_signs_nothing(store, demo_warehouse, approval):
    app = run_page(PAGE, _priya(), demo_warehouse)
    app.session_state["_decision_shown"] = {}  # as if the form had never been shown
    app = _sign(app, approval, "APPROVED", "priya-demo-2026")
    assert "changed since it was shown" in shown_text(app)
    assert decisions.for_sponsor("NWT") == []


@pytest.mark.parametrize(
    "who",
    [
        principal("sponsor_qa", "NWT", username="nora"),  # NWT QA without the permission
        principal("auditor", "NWT", username="tom"),
        principal("cmo_quality", None, username="carla"),
    ],
    ids=["sponsor-qa-without-permission", "auditor", "cmo-quality"],
)
def test_only_a_granted_sponsor_qa_gets_a_form(who, store, demo_warehouse, approval):
    if who.username == "nora":
        users.add_user("nora", "Nora Lind", "sponsor_qa", "nora-pass-2026", sponsor_id="NWT")
    app = run_page(PAGE, who, demo_warehouse, picked_sponsor="NWT")
    assert not app.exception
    assert not [b for b in app.button if b.label == "Sign"]
    assert approval.label in shown_text(app)
    if who.username == "nora":
        assert "needs the permission to sign" in shown_text(app)


def test_signatures_show_to_the_sponsors_readers_and_no_other_sponsor(
    store, demo_warehouse, approval
):
    _sign(run_page(PAGE, _priya(), demo_warehouse), approval, "APPROVED", "priya-demo-2026")
    (signed,) = decisions.for_sponsor("NWT")
    assert signed.decision_id == "DEC-NWT-0001"  # numbered per sponsor: no count of others
    for who, picked in (
        (principal("auditor", "NWT", username="tom"), None),
        (principal("cmo_quality", None, username="carla"), "NWT"),
    ):
        text = shown_text(run_page(PAGE, who, demo_warehouse, picked_sponsor=picked))
        assert "Approved by Priya Raman (priya)" in text, who.role
    for sponsor, user in (("CTB", "bruno"), ("TSP", "takeshi")):
        text = shown_text(run_page(PAGE, principal("sponsor_qa", sponsor, username=user),
                                   demo_warehouse))  # fmt: skip
        assert "Priya" not in text and signed.decision_id not in text, sponsor


def test_the_cockpit_shows_who_signed_and_flags_what_the_qms_has_not_recorded(
    store, demo_warehouse, approval, monkeypatch
):
    carla = principal("cmo_quality", None, username="carla")
    before = shown_text(run_page("cockpit.py", carla, demo_warehouse))
    assert "Sponsor obligations on changes" in before
    assert "Awaiting the sponsor's decision" in before
    assert approval.label.split(",")[0] in before  # CC-2026-0061 awaits NWT
    _sign(run_page(PAGE, _priya(), demo_warehouse), approval, "APPROVED", "priya-demo-2026")
    after = shown_text(run_page("cockpit.py", carla, demo_warehouse))
    assert "Signed in the portal, not yet in the QMS" in after
    assert "Approved by Priya Raman (priya)" in after
    assert "not recorded in the QMS after" not in after
    monkeypatch.setenv("PORTAL_QMS_RECORD_HOURS", "0")
    late = shown_text(run_page("cockpit.py", carla, demo_warehouse))
    assert "1 decision(s) signed by sponsors in the portal are not recorded in the QMS" in late
    assert "Signed in the portal, not recorded in the QMS in time" in late


def test_the_audit_pack_carries_the_signature_for_its_sponsor_only(store, demo_warehouse, approval):
    _sign(run_page(PAGE, _priya(), demo_warehouse), approval, "APPROVED", "priya-demo-2026")
    request = PackRequest("NWT", date(2025, 12, 1), date(2026, 11, 26), "Tom", "test")
    pack = generate_pack(demo_warehouse, request, signed=decisions.signed_for)
    (section,) = [s for s in pack.manifest["sections"] if s["key"] == "decisions"]
    assert section["rows"] == 1
    with zipfile.ZipFile(io.BytesIO(pack.zip_bytes)) as packed:
        csv = packed.read(next(n for n in packed.namelist() if n.endswith("decisions.csv")))
    assert "Approved by Priya Raman (priya)" in csv.decode()
    other = generate_pack(
        demo_warehouse, PackRequest("CTB", request.start, request.end, "Tom", "test"),
        signed=decisions.signed_for,
    )  # fmt: skip
    assert "decisions" not in {s["key"] for s in other.manifest["sections"]}


def test_an_acknowledgement_stays_given_with_nothing_to_replace_it(store, demo_warehouse):
    scope = open_sponsor_scope(demo_warehouse, "NWT")
    notice = next(s for s in subjects(scope) if s.record_type == "change_notification")
    scope.close()
    app = _sign(run_page(PAGE, _priya(), demo_warehouse), notice, "ACKNOWLEDGED",
                "priya-demo-2026")  # fmt: skip
    assert not app.exception
    assert "Acknowledged by Priya Raman (priya)" in shown_text(app)
    assert not [b for b in app.button if notice.record_id in (b.key or "")]  # no form left
    assert [d.meaning for d in decisions.for_sponsor("NWT")] == ["ACKNOWLEDGED"]


def test_a_deviation_notification_is_acknowledged_on_the_deviations_page(store, demo_warehouse):
    scope = open_sponsor_scope(demo_warehouse, "NWT")
    notice = next(s for s in subjects(scope) if s.record_type == "deviation_notification")
    scope.close()
    app = run_page("deviations.py", _priya(), demo_warehouse)
    text = shown_text(app)
    assert "Your acknowledgements" in text and notice.label in text
    assert "Change notification" not in text  # changes are answered on Change control
    app = _sign(app, notice, "ACKNOWLEDGED", "priya-demo-2026")
    assert not app.exception
    (decision,) = decisions.for_sponsor("NWT")
    assert (decision.record_type, decision.record_id) == ("deviation_notification",
                                                          notice.record_id)  # fmt: skip
    assert "Acknowledged by Priya Raman (priya)" in shown_text(app)
    # The change-control page does not list it; another sponsor sharing the deviation (if
    # any) sees neither the acknowledgement nor who gave it.
    assert "Acknowledged by Priya" not in shown_text(run_page(PAGE, _priya(), demo_warehouse))
    for sponsor, user in (("CTB", "bruno"), ("TSP", "takeshi")):
        other = shown_text(
            run_page(
                "deviations.py", principal("sponsor_qa", sponsor, username=user), demo_warehouse
            )
        )
        assert "Priya" not in other and decision.decision_id not in other, sponsor


@pytest.mark.parametrize(
    ("who", "picked"),
    [(principal("cmo_quality", None, username="carla"), None), (None, None)],
    ids=["cmo-site-wide", "sponsor-qa"],
)
def test_compliance_lists_open_obligations_with_who_signed(
    who, picked, store, demo_warehouse, approval
):
    _sign(run_page(PAGE, _priya(), demo_warehouse), approval, "APPROVED", "priya-demo-2026")
    text = shown_text(run_page("compliance.py", who or _priya(), demo_warehouse,
                               picked_sponsor=picked))  # fmt: skip
    assert "Obligations on changes not yet met" in text
    assert "Signed in the portal, not yet in the QMS" in text
    assert "Approved by Priya Raman (priya)" in text
    if who is None:  # the sponsor's own view names no other sponsor's obligation
        ctb = open_sponsor_scope(demo_warehouse, "CTB")
        ctb_changes = {s.label.split(",")[0] for s in subjects(ctb, ("change_approval",))}
        nwt = open_sponsor_scope(demo_warehouse, "NWT")
        shared = set(nwt.frame("t", "SELECT change_number FROM change_control")["change_number"])
        ctb.close(), nwt.close()
        assert ctb_changes - shared, "CTB has a change of its own awaiting its approval"
        assert not [c for c in ctb_changes - shared if c in text]


def test_what_she_answered_no_longer_reads_as_awaiting_her(store, demo_warehouse, approval):
    def awaiting(app, label: str) -> int:
        return int(next(m.value for m in app.metric if m.label.startswith(label)))

    overview = run_page("overview.py", _priya(), demo_warehouse)
    before = awaiting(overview, "Changes awaiting you")
    page = run_page(PAGE, _priya(), demo_warehouse)
    assert awaiting(page, "Awaiting your approval") == 1
    assert any("awaits your prior approval" in str(w.value) for w in page.warning)
    page = _sign(page, approval, "APPROVED", "priya-demo-2026")
    assert awaiting(page, "Awaiting your approval") == 0
    assert not any("awaits your prior approval" in str(w.value) for w in page.warning)
    overview = run_page("overview.py", _priya(), demo_warehouse)
    assert awaiting(overview, "Changes awaiting you") == before - 1


def test_the_next_morning_the_page_says_when_the_qms_recorded_it(store, demo_plant, tmp_path):
    """Signed in the portal, exported to the outbox, imported by the (demo) QMS, read back by
    the nightly job: the signature table then carries the QMS's time beside the signing."""
    import shutil

    from etl.demo_source.qms_import import record_decisions
    from etl.run import run_etl

    plant, warehouse = tmp_path / "plant.sqlite", tmp_path / "warehouse"
    shutil.copyfile(demo_plant.path, plant)
    run_etl(plant, warehouse, full=True)
    scope = open_sponsor_scope(warehouse, "NWT")
    subject = next(s for s in subjects(scope) if s.record_type == "change_approval")
    scope.close()
    _sign(run_page(PAGE, _priya(), warehouse), subject, "APPROVED", "priya-demo-2026")
    decisions.export_outbox(None, tmp_path / "outbox")
    assert record_decisions(plant, tmp_path / "outbox").recorded == ["DEC-NWT-0001"]
    run_etl(plant, warehouse)  # the nightly run (incremental)
    app = run_page(PAGE, _priya(), warehouse)
    (signed,) = [f.value for f in app.dataframe if "Recorded in the QMS" in f.value.columns
                 or "qms_recorded_at" in f.value.columns]  # fmt: skip
    recorded = signed.iloc[0].get("Recorded in the QMS", signed.iloc[0].get("qms_recorded_at"))
    assert recorded is not None and str(recorded) not in ("", "NaT", "None")
    assert not any("awaits your prior approval" in str(w.value) for w in app.warning)
