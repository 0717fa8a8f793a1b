"""Batch record page: the review-by-exception sentences, ground-truth anomalies shown in the
right batch, and a batch id of another sponsor (session state or URL) ignored."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest

from tests.page_checks import foreign_identifiers, partition, run_with_query
from tests.page_harness import principal, run_page, shown_text
from warehouse import catalogue
from warehouse.queries.batch_record import (
    BatchRecord,
    duration_text,
    review_by_exception,
    step_exceptions,
)

SPONSOR, OTHER = "NWT", "CTB"
# A finding's kind as the panel words it.
KIND = catalogue.dataset("batch_record_exceptions").column("kind")
RECORD_KEY = "batch_record:batch_id"
# Ground-truth kinds a batch record must surface, and the table whose key they name.
EVENT_KINDS = ("LATE_ENTRY", "MISSING_VERIFIER", "SELF_VERIFICATION", "OUT_OF_ORDER",
               "TRAINING_GAP", "OUT_OF_SEQUENCE", "OUTSIDE_BATCH_WINDOW")  # fmt: skip
RECORD_KINDS = (*EVENT_KINDS, "DISPOSITION_WITH_OPEN_DEVIATION", "CALIBRATION_OVERDUE_IN_USE",
                "CALIBRATION_FAILED_IN_USE", "SUPPLIER_CONDITIONAL", "SUPPLIER_DISQUALIFIED",
                "OOS_INVALIDATED", "OOS_CONFIRMED")  # fmt: skip

STEP = {
    "event_id": "EV-7", "seq": 7, "step_name": "pH check", "event_type": "IPC",
    "performed_by": "OP-12", "performer": "Ada Lovelace", "verified_by": "OP-13",
    "performed_at": datetime(2026, 11, 20, 9, 0), "verified_at": datetime(2026, 11, 20, 9, 30),
    "minutes_late": 220.0, "late_entry_reason": None, "late_entry": False,
    "sign_off_gap": False, "self_verification": False, "out_of_order": False,
    "training_gap": False, "out_of_sequence": False, "outside_batch_window": False,
}  # fmt: skip


@pytest.mark.parametrize(
    ("minutes", "text"),
    [(220, "3 h 40 min"), (45, "45 min"), (120, "2 h"), (1500, "1 d 1 h"), (2880, "2 d")],
)
def test_duration_text_reads_like_a_reviewer(minutes: float, text: str) -> None:
    assert duration_text(minutes) == text


@pytest.mark.parametrize(
    ("flags", "kind", "sentence"),
    [
        ({"late_entry": True, "late_entry_reason": "system outage"}, "LATE_ENTRY",
         "Step 7 'pH check' was recorded 3 h 40 min after it was performed "
         "(reason given: system outage)."),
        ({"late_entry": True}, "LATE_ENTRY",
         "Step 7 'pH check' was recorded 3 h 40 min after it was performed (no reason given)."),
        ({"sign_off_gap": True, "verified_by": None}, "MISSING_VERIFIER",
         "Step 7 'pH check' (IPC) has no second-person verification."),
        ({"self_verification": True, "verified_by": "OP-12"}, "SELF_VERIFICATION",
         "Step 7 'pH check' was verified by the person who performed it (Ada Lovelace (OP-12))."),
        ({"out_of_order": True, "verified_at": datetime(2026, 11, 20, 8, 15)}, "OUT_OF_ORDER",
         "Step 7 'pH check' was verified at 2026-11-20 08:15, before it was performed at "
         "2026-11-20 09:00."),
        ({"training_gap": True}, "TRAINING_GAP",
         "Step 7 'pH check' was performed by Ada Lovelace (OP-12), whose training on this "
         "product's SOPs was not current on 2026-11-20."),
        ({"out_of_sequence": True}, "OUT_OF_SEQUENCE",
         "Step 7 'pH check' was performed at 2026-11-20 09:00, before a step that comes "
         "earlier in the sequence was performed."),
        ({"outside_batch_window": True}, "OUTSIDE_BATCH_WINDOW",
         "Step 7 'pH check' was performed at 2026-11-20 09:00, before the batch started or "
         "after its disposition."),
    ],
)  # fmt: skip
def test_each_step_flag_becomes_one_sentence(flags: dict, kind: str, sentence: str) -> None:
    [found] = step_exceptions({**STEP, **flags})
    assert (found.kind, found.ref, found.sentence) == (kind, "EV-7", sentence)


@pytest.mark.parametrize(
    ("batch", "when"),
    [({"mfg_start": datetime(2026, 11, 20, 9, 30), "cmo_decided_at": None},
      "before the batch started at 2026-11-20 09:30"),
     ({"mfg_start": datetime(2026, 11, 1), "cmo_decided_at": datetime(2026, 11, 20, 8, 0)},
      "after the batch was dispositioned at 2026-11-20 08:00")],
)  # fmt: skip
def test_an_entry_outside_the_batch_says_which_side(batch: dict, when: str) -> None:
    [found] = step_exceptions({**STEP, "outside_batch_window": True}, batch)
    assert found.sentence == f"Step 7 'pH check' was performed at 2026-11-20 09:00, {when}."


def _use(**latest) -> dict:
    return {"usage_id": "U-1", "equipment_id": "EQ-4", "equipment": "Tank 4",
            "started_at": datetime(2026, 11, 2, 6, 0), "calibration_valid_at_use": False,
            "qualification_valid_at_use": True, "latest_qualification_at": None,
            "latest_qualification_result": "PASS", "latest_qualification_due": None,
            **{f"latest_calibration_{k}": v for k, v in latest.items()}}  # fmt: skip


@pytest.mark.parametrize(
    ("latest", "kind", "why"),
    [({"at": datetime(2026, 5, 1, 8), "result": "PASS", "due": date(2026, 10, 30)},
      "CALIBRATION_OVERDUE_IN_USE", "calibration overdue since 2026-10-30"),
     ({"at": datetime(2026, 11, 1, 22), "result": "FAIL", "due": None},
      "CALIBRATION_FAILED_IN_USE", "latest calibration on 2026-11-01 failed"),
     ({"at": None, "result": None, "due": None},
      "CALIBRATION_OVERDUE_IN_USE", "no calibration before the use")],
)  # fmt: skip
def test_equipment_not_fit_for_use_says_why(latest: dict, kind: str, why: str) -> None:
    empty = pl.DataFrame()
    record = BatchRecord(pl.DataFrame([{"batch_id": "B-1", "cmo_decided_at": None}]), empty,
                         empty, empty, empty, empty, pl.DataFrame([_use(**latest)]))  # fmt: skip
    [found] = review_by_exception(record)
    assert (found.kind, found.ref) == (kind, "U-1")
    assert found.sentence == (
        f"Tank 4 (EQ-4) was used from 2026-11-02 06:00 while its calibration was not valid ({why})."
    )


def test_a_clean_step_has_no_exception() -> None:
    assert step_exceptions(STEP) == []


def test_batch_level_exceptions_in_lifecycle_order() -> None:
    decided = datetime(2026, 11, 10, 12, 0)
    record = BatchRecord(
        header=pl.DataFrame([{"batch_id": "B-1", "cmo_decided_at": decided,
                              "qa_review_missing": True}]),
        materials=pl.DataFrame([{"material_name": "Lactose", "lot_id": "L-9",
                                 "supplier": "Acme Excipients", "supplier_status": "CONDITIONAL"}]),
        steps=pl.DataFrame([{**STEP, "late_entry": True}]),
        tests=pl.DataFrame([{"test_id": "T-1", "test_type": "RELEASE", "test_name": "Assay",
                             "result_value": 91.5, "spec_low": 95.0, "spec_high": 105.0,
                             "unit": "%", "is_oos": True, "oos_id": "OOS-1", "phase": "I",
                             "outcome": "INVALIDATED_LAB_ERROR", "summary": "Pipette error.",
                             "opened_at": datetime(2026, 11, 1),
                             "closed_at": datetime(2026, 11, 5)}]),
        deviations=pl.DataFrame([{"deviation_id": "D-1", "deviation_number": "DEV-0042",
                                  "status": "CLOSED", "awareness_at": datetime(2026, 11, 8),
                                  "closed_at": datetime(2026, 11, 12)}]),
        capas=pl.DataFrame(),
        equipment=pl.DataFrame([{"usage_id": "U-1", "equipment_id": "EQ-4", "equipment": "Tank 4",
                                 "started_at": datetime(2026, 11, 2, 6, 0),
                                 "calibration_valid_at_use": False,
                                 "qualification_valid_at_use": True}]),
    )  # fmt: skip
    found = review_by_exception(record)
    assert [f.kind for f in found] == [
        "SUPPLIER_CONDITIONAL", "CALIBRATION_OVERDUE_IN_USE", "LATE_ENTRY", "OOS_INVALIDATED",
        "DISPOSITION_WITH_OPEN_DEVIATION", "QA_REVIEW_MISSING",
    ]  # fmt: skip
    sentences = [f.sentence for f in found]
    assert sentences[0] == ("Material 'Lactose' lot L-9 came from supplier Acme Excipients, "
                            "whose qualification status is conditional.")  # fmt: skip
    assert (
        sentences[1]
        == "Tank 4 (EQ-4) was used from 2026-11-02 06:00 while its calibration was not valid."
    )
    assert sentences[3] == (
        "RELEASE test 'Assay' was out of specification (91.5 %; spec 95–105 %); investigation "
        "OOS-1 (phase I): invalidated for a laboratory error. Summary: Pipette error."
    )
    assert sentences[4] == ("Batch was dispositioned on 2026-11-10 while deviation DEV-0042 was "
                            "still open.")  # fmt: skip


def test_an_empty_record_has_no_exception() -> None:
    empty = pl.DataFrame()
    assert review_by_exception(BatchRecord(empty, empty, empty, empty, empty, empty, empty)) == []


# --- the page, on the demo warehouse -------------------------------------------------------


@pytest.fixture(scope="module")
def truth(demo_plant) -> list[dict]:
    _, ground_truth = demo_plant
    return ground_truth["anomalies"]


def _batch_of(anomaly: dict, warehouse) -> str | None:
    """The batch whose record must show this anomaly (looked up in the partition if needed)."""
    if anomaly.get("batch_id"):
        return anomaly["batch_id"]
    sponsor = anomaly["sponsor_id"]
    if anomaly["kind"].startswith("SUPPLIER_"):
        lots = partition(warehouse, "material_lot", sponsor).filter(
            pl.col("supplier_id") == anomaly["key"]
        )
        used = partition(warehouse, "material_consumption", sponsor).join(
            lots.select("lot_id"), on="lot_id"
        )
        return used["batch_id"].sort()[0] if used.height else None
    if anomaly["kind"].startswith("OOS_"):
        oos = partition(warehouse, "oos_investigation", sponsor)
        return oos.filter(pl.col("oos_id") == anomaly["key"])["batch_id"][0]
    return None


def _batch_picker(app):
    return next(box for box in app.selectbox if box.label == "Batch")


def _sample(truth: list[dict], sponsor: str) -> list[dict]:
    """One anomaly per batch-record kind for this sponsor (keeps the file fast)."""
    picked: dict[str, dict] = {}
    for anomaly in truth:
        if anomaly["sponsor_id"] == sponsor and anomaly["kind"] in RECORD_KINDS:
            picked.setdefault(anomaly["kind"], anomaly)
    return list(picked.values())


def test_ground_truth_anomalies_appear_in_their_batch_record(
    truth, demo_warehouse, monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    sample = _sample(truth, SPONSOR)
    assert {a["kind"] for a in sample} >= set(EVENT_KINDS)
    for anomaly in sample:
        batch_id = _batch_of(anomaly, demo_warehouse)
        assert batch_id, anomaly
        app = run_page("batch_record.py", principal("sponsor_qa", SPONSOR), demo_warehouse,
                       state={RECORD_KEY: batch_id})  # fmt: skip
        assert not app.exception, anomaly
        assert _batch_picker(app).value == batch_id, anomaly
        panel = next(f.value for f in app.dataframe if "kind" in f.value.columns)
        assert KIND.word(anomaly["kind"]) in set(panel["kind"]), anomaly
        if anomaly["kind"] in EVENT_KINDS or anomaly["kind"].startswith(("OOS_", "CALIBRATION")):
            assert anomaly["key"] in set(panel["record"]), anomaly


def test_the_journey_late_ph_entry_reads_as_a_sentence(
    truth, demo_warehouse, monkeypatch, tmp_path
):
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    late = [a for a in truth if a["kind"] == "LATE_ENTRY" and a["sponsor_id"] == SPONSOR]
    events = partition(demo_warehouse, "batch_event", SPONSOR).filter(
        pl.col("event_id").is_in([a["key"] for a in late])
    )
    event = events.sort("event_id").row(0, named=True)
    app = run_page("batch_record.py", principal("sponsor_qa", SPONSOR), demo_warehouse,
                   state={RECORD_KEY: event["batch_id"]})  # fmt: skip
    expected = f"Step {event['seq']} '{event['step_name']}' was recorded "
    assert any(w.value.startswith(expected) for w in app.warning)


@pytest.mark.parametrize("how", ["session_state", "query_params"])
def test_another_sponsors_batch_id_is_ignored(how, demo_warehouse, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    foreign = partition(demo_warehouse, "batch", SPONSOR)["batch_id"].sort()[0]
    who = principal("sponsor_qa", OTHER)
    if how == "session_state":
        app = run_page("batch_record.py", who, demo_warehouse, state={RECORD_KEY: foreign})
    else:
        app = run_with_query("batch_record.py", who, demo_warehouse, state={},
                             query={"batch": foreign})  # fmt: skip
    assert not app.exception
    own = set(partition(demo_warehouse, "batch", OTHER)["batch_id"])
    chosen = _batch_picker(app)
    assert chosen.value in own
    # The hint is ignored: the page's own default, the newest batch whose manufacture began.
    assert chosen.index == next(
        i for i, label in enumerate(chosen.options) if not label.endswith("(Planned)")
    )
    text = shown_text(app)
    assert foreign not in text
    leaked = [name for name in foreign_identifiers(demo_warehouse, OTHER, SPONSOR) if name in text]
    assert leaked == []
