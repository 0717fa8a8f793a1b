"""Each KPI of DOMAIN.md against a value computed by hand on a small frame made for it.

The arithmetic is written beside each assertion; a test fails when its formula changes.
Recurrence across sponsors goes through a real ETL run of a small plant, and KPIs 1, 4, 5
and 7 are recomputed from the demo plant's source database with plain SQL.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from etl.run import run_etl
from tests.conftest import DemoPlant
from tests.source_fixtures import Plant, U, base_plant, write_sqlite
from warehouse import kpis
from warehouse.filters import Filters
from warehouse.queries import cockpit, deviations
from warehouse.scope import open_cmo_scope, open_sponsor_scope, sponsor_ids

START, END, TODAY = date(2026, 3, 1), date(2026, 3, 31), date(2026, 6, 1)


def test_prior_approval_compliance_counts_changes_approved_before_going_effective() -> None:
    # C1: approved 3 Mar, effective 5 Mar -> complies. C2: approved 9 Mar, effective 8 Mar ->
    # violation. C3: two PA impacts, one pending at go-live -> violation. C4: NOTIFY only ->
    # not a prior-approval change. C5: effective in April -> outside the period. C6: approved
    # without a decision date -> cannot be judged (incomplete). C7: approved on the effective
    # day -> complies. Judged: C1, C2, C3, C7 -> 2 / 4 = 0.5; completeness 4 / 5 = 0.8.
    impacts = pl.DataFrame(
        {
            "change_id": ["C1", "C2", "C3", "C3", "C4", "C5", "C6", "C7"],
            "obligation": ["PRIOR_APPROVAL"] * 4 + ["NOTIFY"] + ["PRIOR_APPROVAL"] * 3,
            "decision": ["APPROVED", "APPROVED", "APPROVED", None, None, "APPROVED",
                         "APPROVED", "APPROVED"],
            "decided_at": [datetime(2026, 3, 3), datetime(2026, 3, 9), datetime(2026, 3, 1),
                           None, None, datetime(2026, 4, 1), None, datetime(2026, 3, 20, 17)],
            "actual_effective": [date(2026, 3, 5), date(2026, 3, 8), date(2026, 3, 10),
                                 date(2026, 3, 10), date(2026, 3, 12), date(2026, 4, 2),
                                 date(2026, 3, 15), date(2026, 3, 20)],
        }
    )  # fmt: skip
    result = kpis.prior_approval_compliance(impacts, START, END)
    assert (result.numerator, result.denominator) == (2, 4)
    assert result.value == 0.5
    assert result.completeness == pytest.approx(0.8)
    assert result.reliable
    outcomes = kpis.prior_approval_outcomes(impacts, START, END)
    assert outcomes.filter(~pl.col("approved_before_effective"))["change_id"].to_list() == [
        "C2", "C3", "C6"
    ]  # fmt: skip


def test_prior_approval_compliance_is_not_reliable_under_the_threshold() -> None:
    # One change of two lacks its decision date: completeness 1 / 2 = 50 % < 80 %.
    impacts = pl.DataFrame(
        {
            "change_id": ["C1", "C2"],
            "obligation": ["PRIOR_APPROVAL", "PRIOR_APPROVAL"],
            "decision": ["APPROVED", "APPROVED"],
            "decided_at": [datetime(2026, 3, 1), None],
            "actual_effective": [date(2026, 3, 5), date(2026, 3, 5)],
        }
    )
    result = kpis.prior_approval_compliance(impacts, START, END)
    assert not result.reliable
    assert result.display() == (
        "not reliable: 50 % of prior-approval changes lack the sponsor's decision date"
    )
    assert kpis.prior_approval_compliance(impacts, START, END, min_completeness=0.5).reliable


def _notifications() -> pl.DataFrame:
    # E1 critical deviation, 24 h: notified after 20 h -> on time.
    # E2 major deviation, 72 h: notified after 73 h -> late.
    # E3 confirmed OOS, 48 h from 1 Mar 09:00: never notified, deadline passed -> not notified.
    # E4 critical complaint, 24 h on 31 Mar 12:00, today 1 Apr: deadline running -> not counted.
    # E5 minor deviation, no deadline in the agreement -> not notifiable.
    # E6 in February -> outside the period. E7 no clock start -> incomplete.
    return pl.DataFrame(
        {
            "record_id": ["E1", "E2", "E3", "E4", "E5", "E6", "E7"],
            "sponsor_id": ["S1", "S1", "S2", "S2", "S1", "S1", "S2"],
            "subject": ["DEVIATION_CRITICAL", "DEVIATION_MAJOR", "OOS_CONFIRMED",
                        "COMPLAINT_CRITICAL", "DEVIATION_MINOR", "DEVIATION_MAJOR",
                        "DEVIATION_MAJOR"],
            "occurred_at": [datetime(2026, 3, 2, 8), datetime(2026, 3, 3, 8),
                            datetime(2026, 3, 1, 9),
                            datetime(2026, 3, 31, 12), datetime(2026, 3, 4), datetime(2026, 2, 10),
                            None],
            "notified_at": [datetime(2026, 3, 3, 4), datetime(2026, 3, 6, 9), None, None,
                            None, datetime(2026, 2, 11), None],
            "deadline_hours": [24, 72, 48, 24, None, 72, 72],
        }
    )  # fmt: skip


def test_notification_timeliness_counts_on_time_over_notifiable_events_past_deadline() -> None:
    # Notifiable in the period: E1, E2, E3, E4 and E7 (no clock start) = 5 events.
    # Counted (deadline passed or notified): E1 on time, E2 late, E3 not notified -> 1 / 3.
    # Completeness: 4 with a clock start / 5 = 0.8.
    result = kpis.notification_timeliness(_notifications(), START, END, date(2026, 4, 1))
    assert (result.numerator, result.denominator) == (1, 3)
    assert result.value == pytest.approx(1 / 3)
    assert result.completeness == pytest.approx(0.8)
    outcomes = kpis.notification_outcomes(_notifications(), START, END, date(2026, 4, 1))
    assert dict(zip(outcomes["record_id"], outcomes["outcome"], strict=True)) == {
        "E1": "on time", "E2": "late", "E3": "not notified", "E4": "not yet due", "E7": None,
    }  # fmt: skip


def test_notification_timeliness_counts_an_unnotified_event_once_its_deadline_passes() -> None:
    # Today 3 Apr: E4's deadline (1 Apr 12:00) has passed -> not notified; now 1 / 4.
    result = kpis.notification_timeliness(_notifications(), START, END, date(2026, 4, 3))
    assert (result.numerator, result.denominator) == (1, 4)


def test_notification_timeliness_per_sponsor_uses_the_same_function() -> None:
    # S1 alone: E1 on time, E2 late -> 1 / 2.
    s1 = _notifications().filter(pl.col("sponsor_id") == "S1")
    result = kpis.notification_timeliness(s1, START, END, date(2026, 4, 1))
    assert (result.numerator, result.denominator) == (1, 2)
    assert result.completeness == 1.0


def _lots() -> pl.DataFrame:
    # Started in March: L1 approved 10 Mar, L2 approved 20 Mar, L3 CMO-rejected 12 Mar, L4
    # ON_HOLD, L5 awaiting the sponsor (CMO released), L6 sponsor-rejected 30 Mar. L7 started
    # in February, approved 4 Mar.
    return pl.DataFrame(
        {
            "batch_id": ["L1", "L2", "L3", "L4", "L5", "L6", "L7"],
            "status": ["SPONSOR_RELEASED", "SPONSOR_RELEASED", "REJECTED", "ON_HOLD",
                       "CMO_DISPOSITIONED", "REJECTED", "SPONSOR_RELEASED"],
            "mfg_start": [datetime(2026, 3, d) for d in (1, 5, 9, 13, 17, 21)]
                         + [datetime(2026, 2, 20)],
            "mfg_end": [datetime(2026, 3, d) for d in (3, 7, 11, 15, 19, 23)]
                       + [datetime(2026, 2, 28)],
            "cmo_decision": ["RELEASED", "RELEASED", "REJECTED", "ON_HOLD", "RELEASED",
                             "RELEASED", "RELEASED"],
            "cmo_decided_at": [datetime(2026, 3, d) for d in (8, 12, 12, 16, 20, 25)]
                              + [datetime(2026, 3, 2)],
            "sponsor_decision": ["APPROVED", "APPROVED", None, None, None, "REJECTED",
                                 "APPROVED"],
            "sponsor_decided_at": [datetime(2026, 3, 10), datetime(2026, 3, 20), None, None,
                                   None, datetime(2026, 3, 30), datetime(2026, 3, 4)],
            "cycle_time_days": [7.0, 13.0, None, None, None, 7.0, 4.0],
            "reworked": [False, True, False, False, False, False, False],
            "units_distributed": [100_000, 150_000, None, None, None, None, 50_000],
        }
    )  # fmt: skip


def test_lot_acceptance_rate_fda_is_lots_released_over_lots_started() -> None:
    # Released (sponsor APPROVED) in March: L1, L2 and L7 (started in February) = 3.
    # Started in March: L1-L6 = 6 -> 3 / 6 = 0.5. Completeness: started lots with a final
    # disposition: L1, L2 (approved), L3 (CMO rejected), L6 (sponsor rejected) = 4 / 6.
    result = kpis.lot_acceptance_rate_fda(_lots(), START, END)
    assert (result.numerator, result.denominator) == (3, 6)
    assert result.value == 0.5
    assert result.completeness == pytest.approx(4 / 6)
    assert result.extra["lots_started"] == 6
    assert not result.reliable  # 67 % < 80 %
    assert result.display() == "not reliable: 33 % of lots started lack a final disposition"
    assert "FDA 2016" in result.source


def test_lot_acceptance_rate_ispe_is_lots_released_over_lots_finally_dispositioned() -> None:
    # Released in March: L1, L2, L7 = 3. Finally dispositioned in March: those 3, L3 (CMO
    # rejected 12 Mar) and L6 (sponsor rejected 30 Mar) = 5; L4 on hold and L5 awaiting the
    # sponsor decide nothing -> 3 / 5 = 0.6. Completeness as for FDA: 4 / 6.
    result = kpis.lot_acceptance_rate_ispe(_lots(), START, END)
    assert (result.numerator, result.denominator) == (3, 5)
    assert result.value == pytest.approx(0.6)
    assert result.completeness == pytest.approx(4 / 6)
    assert "ISPE" in result.source


def test_lot_acceptance_rate_fda_exceeds_100_percent_when_starts_fall() -> None:
    # A month after a busy one: A, B, C started in February and were released in March; only
    # D started in March (released 25 Mar). FDA: 4 released / 1 started = 400 %. ISPE: 4
    # released / 4 dispositioned = 100 %. Completeness: D has a final disposition -> 1 / 1.
    lots = pl.DataFrame(
        {
            "batch_id": ["A", "B", "C", "D"],
            "mfg_start": [datetime(2026, 2, d) for d in (2, 9, 16)] + [datetime(2026, 3, 2)],
            "cmo_decision": ["RELEASED"] * 4,
            "cmo_decided_at": [datetime(2026, 3, d) for d in (1, 3, 5, 20)],
            "sponsor_decision": ["APPROVED"] * 4,
            "sponsor_decided_at": [datetime(2026, 3, d) for d in (2, 6, 9, 25)],
        }
    )  # fmt: skip
    fda = kpis.lot_acceptance_rate_fda(lots, START, END)
    assert (fda.numerator, fda.denominator, fda.value) == (4, 1, 4.0)
    assert fda.display() == "400.0 %"
    assert "exceed 100 %" in fda.formula
    ispe = kpis.lot_acceptance_rate_ispe(lots, START, END)
    assert (ispe.numerator, ispe.denominator, ispe.value) == (4, 4, 1.0)
    assert fda.completeness == ispe.completeness == 1.0


def test_complaint_rate_is_complaints_per_million_units_distributed() -> None:
    # Released by the sponsor in March: L1 (100 000 units), L2 (150 000), L7 (50 000; decided
    # 4 Mar) = 300 000 units. Complaints received in March: 3 (the April one is out).
    # 3 / 300 000 * 1e6 = 10 per million; completeness 3 / 3 released lots with units.
    complaints = pl.DataFrame(
        {"received_at": [datetime(2026, 3, 2), datetime(2026, 3, 15), datetime(2026, 3, 31, 23),
                         datetime(2026, 4, 1)]}
    )  # fmt: skip
    result = kpis.complaint_rate(complaints, _lots(), START, END)
    assert (result.numerator, result.denominator) == (3, 300_000)
    assert result.value == pytest.approx(10.0)
    assert result.completeness == 1.0


def _oos() -> pl.DataFrame:
    # Opened in March: release invalidated, release confirmed, stability confirmed, release
    # inconclusive, release open (no outcome), IPC invalidated. One release OOS in February.
    return pl.DataFrame(
        {
            "batch_id": ["L1", "L2", "L3", "L4", "L5", "L6", "L7"],
            "test_type": ["RELEASE", "RELEASE", "LT_STABILITY", "RELEASE", "RELEASE", "IPC",
                          "RELEASE"],
            "outcome": ["INVALIDATED_LAB_ERROR", "CONFIRMED", "CONFIRMED", "INCONCLUSIVE", None,
                        "INVALIDATED_LAB_ERROR", "INVALIDATED_LAB_ERROR"],
            "opened_at": [datetime(2026, 3, d) for d in (2, 4, 6, 8, 10, 12)]
                         + [datetime(2026, 2, 2)],
        }
    )  # fmt: skip


def test_invalidated_oos_rate_is_invalidated_over_concluded_release_and_stability_oos() -> None:
    # Release/stability OOS in March: 5; concluded: 4 (invalidated, 2 confirmed, inconclusive).
    # 1 / 4 = 0.25 (IPC and February left out); completeness 4 / 5 = 0.8.
    result = kpis.invalidated_oos_rate(_oos(), START, END)
    assert (result.numerator, result.denominator) == (1, 4)
    assert result.value == 0.25
    assert result.completeness == pytest.approx(0.8)


def test_confirmed_oos_rate_is_confirmed_oos_over_batches_with_a_release_or_stability_test():
    # Confirmed release/stability OOS in March: 2 (one of them LT_STABILITY). Batches with a
    # RELEASE or LT_STABILITY test in March: B1, B2, B3, B4 and B7 (stability only; B1 tested
    # twice; B5 only IPC; B6 tested in April) = 5 -> 2 / 5 = 0.4. Counting release-tested
    # batches only would give 2 / 4; dividing by tests (7 rows in March) 2 / 7.
    tests = pl.DataFrame(
        {
            "batch_id": ["B1", "B1", "B2", "B3", "B4", "B5", "B6", "B7"],
            "test_type": ["RELEASE"] * 5 + ["IPC", "RELEASE", "LT_STABILITY"],
            "tested_at": [datetime(2026, 3, d) for d in (1, 2, 3, 4, 5, 6)]
                         + [datetime(2026, 4, 1), datetime(2026, 3, 7)],
        }
    )  # fmt: skip
    result = kpis.confirmed_oos_rate(_oos(), tests, START, END)
    assert (result.numerator, result.denominator) == (2, 5)
    assert result.value == pytest.approx(0.4)


def test_right_first_time_is_lots_without_a_non_conformance_over_lots_produced() -> None:
    # Produced in March (mfg_end): L1-L6. Non-conforming: L1 confirmed OOS, L2 reworked, L3
    # rejected by the CMO (nothing else), L4 linked open deviation, L6 rejected by the sponsor
    # (its only OOS was invalidated). L5's only deviation was cancelled: clean.
    # Clean: L5 -> 1 / 6. Counting the two rejection-only lots as right first time: 3 / 6.
    links = pl.DataFrame(
        {"batch_id": ["L4", "L5"], "deviation_id": ["D1", "D2"], "status": ["OPEN", "CANCELLED"]}
    )
    oos = pl.DataFrame(
        {"batch_id": ["L1", "L6"], "outcome": ["CONFIRMED", "INVALIDATED_LAB_ERROR"]}
    )
    result = kpis.right_first_time(_lots(), links, oos, START, END)
    assert (result.numerator, result.denominator) == (1, 6)
    assert "rejection" in result.formula


def _deviations() -> pl.DataFrame:
    # D1 aware 2025-06-01 (closed long ago); D2 aware 2026-03-02, closed 2026-03-20, recurs D1
    # (274 days earlier: is_recurrence as the ETL publishes it), due 2026-04-01 -> on time. D3
    # aware 2024-01-01; D4 aware 2026-03-05, closed 2026-03-25 after due 2026-03-20, recurs D3
    # (> 12 months: not a recurrence) -> late.
    # D5 aware 2026-03-10, closed 2026-03-30, no root cause -> cannot be judged for recurrence.
    # D6 aware 2026-03-12, cancelled. D7 aware 2026-03-15, open (MAJOR). D8 open CRITICAL.
    return pl.DataFrame(
        {
            "deviation_id": ["D1", "D2", "D3", "D4", "D5", "D6", "D7", "D8"],
            "classification": ["MINOR", "MINOR", "MAJOR", "MAJOR", "MINOR", "MINOR", "MAJOR",
                               "CRITICAL"],
            "status": ["CLOSED", "CLOSED", "CLOSED", "CLOSED", "CLOSED", "CANCELLED", "OPEN",
                       "INVESTIGATION"],
            "awareness_at": [datetime(2025, 6, 1), datetime(2026, 3, 2), datetime(2024, 1, 1),
                             datetime(2026, 3, 5), datetime(2026, 3, 10), datetime(2026, 3, 12),
                             datetime(2026, 3, 15), datetime(2026, 2, 1)],
            "original_due": [date(2025, 7, 1), date(2026, 4, 1), date(2024, 2, 1),
                             date(2026, 3, 20), date(2026, 4, 9), date(2026, 4, 11),
                             date(2026, 4, 14), date(2026, 3, 3)],
            "closed_at": [datetime(2025, 6, 20), datetime(2026, 3, 20), datetime(2024, 1, 20),
                          datetime(2026, 3, 25), datetime(2026, 3, 30), None, None, None],
            "root_cause_category": ["HUMAN_ERROR", "HUMAN_ERROR", "EQUIPMENT", "EQUIPMENT", None,
                                    None, None, None],
            "recurrence_of": [None, "D1", None, "D3", None, None, None, None],
            "is_recurrence": [False, True, False, False, False, False, False, False],
        }
    )  # fmt: skip


def test_deviation_rate_is_deviations_raised_over_lots_produced() -> None:
    # Raised in March, not cancelled: D2, D4, D5, D7 = 4; lots produced in March: 6 -> 4 / 6.
    result = kpis.deviation_rate(_deviations(), _lots(), START, END)
    assert (result.numerator, result.denominator) == (4, 6)
    assert result.display() == "0.67 per lot"


def test_recurring_deviation_rate_counts_recurrences_of_the_prior_twelve_months() -> None:
    # Closed in March: D2, D4, D5 (3); judged (root cause known): D2, D4. D2 recurs D1 within
    # 12 months; D4 recurs D3 after 26 months -> 1 / 2 = 0.5; completeness 2 / 3.
    result = kpis.recurring_deviation_rate(_deviations(), START, END)
    assert (result.numerator, result.denominator) == (1, 2)
    assert result.completeness == pytest.approx(2 / 3)
    assert kpis.recurrence_count(_deviations()) == 1


def test_a_recurrence_counts_though_its_copy_cannot_name_the_earlier_deviation() -> None:
    # D2's copy in this sponsor's partition has recurrence_of blanked (D1 is another client's),
    # but the ETL's is_recurrence still says it recurs: 1 / 2 as above, not 0 / 2.
    copy = _deviations().with_columns(recurrence_of=pl.lit(None, pl.String))
    result = kpis.recurring_deviation_rate(copy, START, END)
    assert (result.numerator, result.denominator) == (1, 2)


def test_deviation_on_time_closure_is_closed_by_original_due_over_closed() -> None:
    # Closed in March: D2 (20 Mar <= 1 Apr, on time), D4 (25 Mar > 20 Mar, late), D5 (30 Mar
    # <= 9 Apr, on time) -> 2 / 3.
    result = kpis.deviation_on_time_closure(_deviations(), START, END)
    assert (result.numerator, result.denominator) == (2, 3)


def test_open_deviations_counts_by_class_and_ignores_closed_and_cancelled() -> None:
    # Open: D7 (MAJOR, OPEN), D8 (CRITICAL, INVESTIGATION) -> 2.
    result = kpis.open_deviations(_deviations())
    assert result.value == 2
    assert result.extra == {"CRITICAL": 1, "MAJOR": 1, "MINOR": 0}


def test_overdue_capas_are_open_and_past_their_current_due() -> None:
    # Today 1 Jun: K1 open, current due 31 May -> overdue; K2 open, due today -> not overdue;
    # K3 closed late -> not open; K4 open, original due passed but extended to July -> not.
    capas = pl.DataFrame(
        {
            "status": ["PLAN", "IMPLEMENTING", "CLOSED", "PENDING_EFFECTIVENESS"],
            "opened_at": [datetime(2026, 1, 1)] * 4,
            "original_due": [date(2026, 5, 31), date(2026, 6, 1), date(2026, 2, 1),
                             date(2026, 3, 1)],
            "current_due": [date(2026, 5, 31), date(2026, 6, 1), date(2026, 2, 1),
                            date(2026, 7, 1)],
        }
    )  # fmt: skip
    result = kpis.overdue_capas(capas, TODAY)
    assert (result.value, result.denominator) == (1, 3)


def test_apr_on_time_is_reviews_completed_by_original_due_over_reviews_due() -> None:
    # Due in March: R1 completed on the due day (on time), R2 completed late, R3 never
    # completed (late). R4 due in April -> out. 1 / 3.
    reviews = pl.DataFrame(
        {
            "original_due": [date(2026, 3, 10), date(2026, 3, 20), date(2026, 3, 30),
                             date(2026, 4, 5)],
            "completed_at": [date(2026, 3, 10), date(2026, 4, 2), None, date(2026, 4, 1)],
        }
    )  # fmt: skip
    result = kpis.apr_on_time(reviews, START, END, TODAY)
    assert (result.numerator, result.denominator) == (1, 3)


def test_disposition_cycle_time_is_the_median_and_p90_of_sponsor_release_minus_mfg_end() -> None:
    # Released by the sponsor in March: L1 7 d, L2 13 d, L7 4 d -> sorted 4, 7, 13; L6, which
    # the sponsor rejected, is not a release (DOMAIN.md KPI 13: sponsor release - mfg end).
    # Median = 7; p90 (linear) = 7 + 0.8 * (13 - 7) = 11.8.
    result = kpis.disposition_cycle_time(_lots(), START, END)
    assert result.value == 7.0
    assert result.extra["p90"] == pytest.approx(11.8)
    assert (result.numerator, result.denominator) == (3, 3)


def test_late_entry_rate_is_events_recorded_after_the_threshold_over_events() -> None:
    # Performed in March: recorded after 10 min, 61 min (late), 60 min (not late: "over"),
    # 3 h (late). One event in April. 2 / 4 = 0.5.
    performed = [datetime(2026, 3, 2, 8)] * 4 + [datetime(2026, 4, 2, 8)]
    delays = [timedelta(minutes=m) for m in (10, 61, 60, 180, 500)]
    events = pl.DataFrame(
        {
            "performed_at": performed,
            "recorded_at": [p + d for p, d in zip(performed, delays, strict=True)],
        }
    )
    result = kpis.late_entry_rate(events, START, END)
    assert (result.numerator, result.denominator) == (2, 4)


def test_pending_change_approvals_counts_prior_approval_impacts_awaiting_a_decision() -> None:
    # I1 PA pending on a live change -> counts; I2 PA with no decision yet -> counts; I3 PA
    # approved; I4 NOTIFY; I5 PA pending on a rejected change. 2.
    impacts = pl.DataFrame(
        {
            "obligation": ["PRIOR_APPROVAL", "PRIOR_APPROVAL", "PRIOR_APPROVAL", "NOTIFY",
                           "PRIOR_APPROVAL"],
            "decision": ["PENDING", None, "APPROVED", None, "PENDING"],
            "change_status": ["SPONSOR_REVIEW", "ASSESSMENT", "APPROVED", "SPONSOR_REVIEW",
                              "REJECTED"],
        }
    )  # fmt: skip
    assert kpis.pending_change_approvals(impacts).value == 2


def test_every_result_names_its_definition() -> None:
    numbers = {d.number for d in kpis.KPI_DEFINITIONS.values()} - {None}
    assert numbers == set(range(1, 17))
    result = kpis.apr_on_time(pl.DataFrame({"original_due": [], "completed_at": []},
                                           schema={"original_due": pl.Date,
                                                   "completed_at": pl.Date}),
                              START, END, TODAY)  # fmt: skip
    assert result.value is None and result.display() == "—"
    assert "ISPE" in result.source and "÷" in result.formula


# --- Recurrence across sponsors, through a real ETL run --------------------------------------

EARLIER_NUMBER, EARLIER_TITLE = "DEV-2025-0101", "Granulator torque alarm"


def _deviation_row(key: str, number: str, title: str, aware: str, closed: str, cause: str,
                   recurs: str | None = None) -> dict[str, object]:  # fmt: skip
    day = date.fromisoformat(aware)
    due = (day + timedelta(days=30)).isoformat()
    return {
        "deviation_id": key, "deviation_number": number, "site_id": "S1", "title": title,
        "classification": "MINOR", "status": "CLOSED", "awareness_at": f"{aware}T08:00:00",
        "original_due": due, "current_due": due, "extension_count": 0,
        "root_cause_category": cause, "recurrence_of": recurs,
        "closed_at": f"{closed}T08:00:00", "updated_at": U,
    }  # fmt: skip


def _recurrence_plant() -> Plant:
    """The base plant plus: DEV-A (ACME's, March 2025) and DEV-OLD (BETA's, June 2024), and
    three deviations closed in January 2026: DEV-B (BETA's) recurs DEV-A, 315 days later;
    DEV-C (ACME's) recurs DEV-OLD, 19 months later; DEV-D (ACME's) recurs DEV-A."""
    plant = base_plant()
    plant["deviation"] += [
        _deviation_row("DEV-A", EARLIER_NUMBER, EARLIER_TITLE, "2025-03-01", "2025-03-10",
                       "EQUIPMENT"),
        _deviation_row("DEV-OLD", "DEV-2024-0077", "Label count mismatch", "2024-06-01",
                       "2024-06-10", "HUMAN_ERROR"),
        _deviation_row("DEV-B", "DEV-2026-0002", "Dryer seal leak", "2026-01-10", "2026-01-16",
                       "EQUIPMENT", "DEV-A"),
        _deviation_row("DEV-C", "DEV-2026-0003", "Line clearance missed", "2026-01-12",
                       "2026-01-18", "HUMAN_ERROR", "DEV-OLD"),
        _deviation_row("DEV-D", "DEV-2026-0004", "Granulator torque alarm again", "2026-01-14",
                       "2026-01-19", "EQUIPMENT", "DEV-A"),
    ]  # fmt: skip
    for key, sponsor in (("DEV-A", "ACME"), ("DEV-OLD", "BETA"), ("DEV-B", "BETA"),
                         ("DEV-C", "ACME"), ("DEV-D", "ACME")):  # fmt: skip
        plant["deviation_link"].append({
            "link_id": f"DL-{key}", "deviation_id": key, "sponsor_id": sponsor,
            "product_id": f"P-{sponsor}", "updated_at": U})  # fmt: skip
    return plant


def test_a_recurrence_across_sponsors_counts_everywhere_and_shows_nothing_of_the_earlier(
    tmp_path: Path,
) -> None:
    warehouse = tmp_path / "warehouse"
    run_etl(write_sqlite(_recurrence_plant(), tmp_path / "plant.sqlite"), warehouse, full=True)
    start, end = date(2026, 1, 1), date(2026, 1, 31)
    # Closed in January: DEV-1 (base plant, no root cause: not judged), DEV-B, DEV-C, DEV-D.
    # Site: judged B, C, D; recurring B (of ACME's DEV-A, 315 days) and D -> 2 / 3; C recurs a
    # deviation 19 months old. ACME: judged C, D; recurring D -> 1 / 2. BETA: judged B,
    # recurring B although its copy cannot name DEV-A -> 1 / 1. Blanking recurrence_of before
    # judging gave site 1 / 3 and BETA 0 / 1.
    expected = {"site": (2, 3), "ACME": (1, 2), "BETA": (1, 1)}
    inputs = cockpit.kpi_inputs(open_cmo_scope(warehouse))
    populations = {"site": inputs.for_site()} | {
        sponsor: inputs.for_sponsor(sponsor) for sponsor in ("ACME", "BETA")
    }
    for name, population in populations.items():
        result = kpis.recurring_deviation_rate(population.deviations, start, end)
        assert (result.numerator, result.denominator) == expected[name], name
    for sponsor in ("ACME", "BETA"):
        own = cockpit.kpi_inputs(open_sponsor_scope(warehouse, sponsor)).deviations
        result = kpis.recurring_deviation_rate(own, start, end)
        assert (result.numerator, result.denominator) == expected[sponsor], sponsor

    period = Filters(start=start, end=end)
    beta = deviations.deviations(open_sponsor_scope(warehouse, "BETA"), period, end)
    recurrence = dict(zip(beta["deviation_number"], beta["recurrence_of"], strict=True))
    assert recurrence["DEV-2026-0002"] == "recurs a deviation of another client"
    assert kpis.recurrence_count(beta) == 1
    shown = beta.write_csv()
    assert EARLIER_NUMBER not in shown and EARLIER_TITLE not in shown
    acme = deviations.deviations(open_sponsor_scope(warehouse, "ACME"), period, end)
    recurrence = dict(zip(acme["deviation_number"], acme["recurrence_of"], strict=True))
    # DEV-D names ACME's own DEV-A; DEV-C's earlier deviation is BETA's and too old to count.
    assert recurrence == {"DEV-2026-0004": EARLIER_NUMBER, "DEV-2026-0003": None,
                          "DEV-2026-001": None}  # fmt: skip
    assert kpis.recurrence_count(acme) == 1


# --- KPIs 1, 4, 5 and 7 recomputed from the demo plant's source ------------------------------

# Plain SQL over the system of record, per DOMAIN.md; :sponsor NULL means the whole site.
# Final disposition: the sponsor's decision, or the CMO's rejection; released = APPROVED.
SOURCE_SQL = {
    "lot_acceptance": """
        WITH lots AS (
            SELECT mfg_start,
                   CASE WHEN sponsor_decision IS NOT NULL THEN sponsor_decision = 'APPROVED'
                        WHEN cmo_decision = 'REJECTED' THEN 0 END AS released,
                   CASE WHEN sponsor_decision IS NOT NULL THEN sponsor_decided_at
                        WHEN cmo_decision = 'REJECTED' THEN cmo_decided_at END AS final_at
            FROM batch WHERE :sponsor IS NULL OR sponsor_id = :sponsor)
        SELECT coalesce(sum(released = 1 AND date(final_at) BETWEEN :start AND :end), 0),
               coalesce(sum(date(mfg_start) BETWEEN :start AND :end), 0),
               coalesce(sum(date(final_at) BETWEEN :start AND :end), 0),
               coalesce(sum(date(mfg_start) BETWEEN :start AND :end
                            AND final_at IS NOT NULL), 0)
        FROM lots""",
    "right_first_time": """
        SELECT coalesce(sum(NOT (b.reworked = 1 OR b.cmo_decision IS 'REJECTED'
                   OR b.sponsor_decision IS 'REJECTED'
                   OR EXISTS (SELECT 1 FROM deviation_link AS l
                              JOIN deviation AS d ON d.deviation_id = l.deviation_id
                              WHERE l.batch_id = b.batch_id AND d.status <> 'CANCELLED')
                   OR EXISTS (SELECT 1 FROM oos_investigation AS o
                              WHERE o.batch_id = b.batch_id AND o.outcome = 'CONFIRMED'))), 0),
               count(*)
        FROM batch AS b
        WHERE date(b.mfg_end) BETWEEN :start AND :end
          AND (:sponsor IS NULL OR b.sponsor_id = :sponsor)""",
    "confirmed_oos_rate": """
        SELECT (SELECT count(*) FROM oos_investigation AS o
                JOIN test_result AS t ON t.test_id = o.test_id
                JOIN batch AS b ON b.batch_id = o.batch_id
                WHERE t.test_type IN ('RELEASE', 'LT_STABILITY') AND o.outcome = 'CONFIRMED'
                  AND date(o.opened_at) BETWEEN :start AND :end
                  AND (:sponsor IS NULL OR b.sponsor_id = :sponsor)),
               (SELECT count(DISTINCT t.batch_id) FROM test_result AS t
                JOIN batch AS b ON b.batch_id = t.batch_id
                WHERE t.test_type IN ('RELEASE', 'LT_STABILITY')
                  AND date(t.tested_at) BETWEEN :start AND :end
                  AND (:sponsor IS NULL OR b.sponsor_id = :sponsor))""",
    "recurring_deviation_rate": """
        SELECT coalesce(sum(e.deviation_id IS NOT NULL
                   AND e.awareness_at <= d.awareness_at
                   AND date(e.awareness_at) >= date(d.awareness_at, '-12 months')), 0),
               count(*)
        FROM deviation AS d
        LEFT JOIN deviation AS e ON e.deviation_id = d.recurrence_of
        WHERE d.status = 'CLOSED' AND date(d.closed_at) BETWEEN :start AND :end
          AND (:sponsor IS NULL OR EXISTS (
                SELECT 1 FROM deviation_link AS l
                WHERE l.deviation_id = d.deviation_id AND l.sponsor_id = :sponsor))""",
    # Recurrences closed in the period whose earlier deviation shares no sponsor with them.
    "recurrences_across_sponsors": """
        SELECT count(*) FROM deviation AS d
        JOIN deviation AS e ON e.deviation_id = d.recurrence_of
        WHERE d.status = 'CLOSED' AND date(d.closed_at) BETWEEN :start AND :end
          AND NOT EXISTS (SELECT 1 FROM deviation_link AS l
                          JOIN deviation_link AS m ON m.sponsor_id = l.sponsor_id
                          WHERE l.deviation_id = d.deviation_id
                            AND m.deviation_id = e.deviation_id)""",
}


def _source_figures(plant: Path, sponsor: str | None, start: date, end: date) -> dict:
    """(numerator, denominator) of each KPI, and LAR's (complete, population), from the source."""
    params = {"sponsor": sponsor, "start": start.isoformat(), "end": end.isoformat()}
    with closing(sqlite3.connect(plant)) as source:
        rows = {name: source.execute(sql, params).fetchone() for name, sql in SOURCE_SQL.items()}
    released, started, dispositioned, started_final = rows.pop("lot_acceptance")
    return rows | {
        "lot_acceptance_rate_fda": (released, started),
        "lot_acceptance_rate_ispe": (released, dispositioned),
        "lot_acceptance_completeness": (started_final, started),
    }


def _warehouse_figures(inputs: cockpit.KpiInputs, start: date, end: date) -> dict:
    results = {
        "lot_acceptance_rate_fda": kpis.lot_acceptance_rate_fda(inputs.batches, start, end),
        "lot_acceptance_rate_ispe": kpis.lot_acceptance_rate_ispe(inputs.batches, start, end),
        "right_first_time": kpis.right_first_time(
            inputs.batches, inputs.deviation_links, inputs.oos, start, end
        ),
        "confirmed_oos_rate": kpis.confirmed_oos_rate(inputs.oos, inputs.tests, start, end),
        "recurring_deviation_rate": kpis.recurring_deviation_rate(inputs.deviations, start, end),
    }
    figures = {key: (int(r.numerator), int(r.denominator)) for key, r in results.items()}
    lar = results["lot_acceptance_rate_fda"]
    complete = round((lar.completeness or 0) * lar.extra["lots_started"])
    return figures | {"lot_acceptance_completeness": (complete, lar.extra["lots_started"])}


def test_kpis_equal_an_independent_recomputation_from_the_source(
    demo_plant: DemoPlant, demo_warehouse: Path
) -> None:
    # The twelve months up to the plant's last recorded day (nothing is recorded on as_of).
    end = date.fromisoformat(demo_plant.ground_truth["as_of"]) - timedelta(days=1)
    start = end - timedelta(days=364)
    site = _source_figures(demo_plant.path, None, start, end)
    # The period holds what the corrections are about: a recurrence across sponsors.
    assert site.pop("recurrences_across_sponsors")[0] > 0
    assert site["recurring_deviation_rate"][0] > 0
    cmo = cockpit.kpi_inputs(open_cmo_scope(demo_warehouse))
    assert _warehouse_figures(cmo.for_site(), start, end) == site
    sponsors = sponsor_ids(demo_warehouse)
    with closing(sqlite3.connect(demo_plant.path)) as source:
        assert sponsors == [
            r[0] for r in source.execute("SELECT sponsor_id FROM sponsor ORDER BY 1")
        ]
    for sponsor in sponsors:
        expected = _source_figures(demo_plant.path, sponsor, start, end)
        expected.pop("recurrences_across_sponsors")
        own = cockpit.kpi_inputs(open_sponsor_scope(demo_warehouse, sponsor))
        assert _warehouse_figures(own, start, end) == expected, sponsor
        assert _warehouse_figures(cmo.for_sponsor(sponsor), start, end) == expected, sponsor
