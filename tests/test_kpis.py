"""Each KPI of DOMAIN.md against a value computed by hand on a small frame made for it.

The arithmetic is written beside each assertion; a test fails when its formula changes.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import polars as pl
import pytest

from warehouse import kpis

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
    # Started in March: L1 approved, L2 approved, L3 CMO-rejected, L4 ON_HOLD, L5 awaiting the
    # sponsor (CMO released), L6 sponsor-rejected. L7 started in February (approved).
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
            "sponsor_decision": ["APPROVED", "APPROVED", None, None, None, "REJECTED",
                                 "APPROVED"],
            "sponsor_decided_at": [datetime(2026, 3, 10), datetime(2026, 3, 20), None, None,
                                   None, datetime(2026, 3, 30), datetime(2026, 3, 4)],
            "cycle_time_days": [7.0, 13.0, None, None, None, 7.0, 4.0],
            "reworked": [False, True, False, False, False, False, False],
            "units_distributed": [100_000, 150_000, None, None, None, None, 50_000],
        }
    )  # fmt: skip


def test_lot_acceptance_rate_is_accepted_over_finally_dispositioned_lots_started() -> None:
    # Started in March: L1-L6 (6). Finally dispositioned: L1, L2 (approved), L3 (CMO rejected),
    # L6 (sponsor rejected) = 4; ON_HOLD L4 and awaiting L5 are left out.
    # LAR = 2 / 4 = 0.5 (counting the lot on hold would give 2 / 5); completeness 4 / 6.
    result = kpis.lot_acceptance_rate(_lots(), START, END)
    assert (result.numerator, result.denominator) == (2, 4)
    assert result.value == 0.5
    assert result.completeness == pytest.approx(4 / 6)
    assert result.extra["lots_started"] == 6
    assert not result.reliable  # 67 % < 80 %
    assert result.display() == "not reliable: 33 % of lots lack a final disposition"


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


def test_confirmed_oos_rate_is_confirmed_oos_over_batches_with_a_release_test() -> None:
    # Confirmed release/stability OOS in March: 2. Batches with a RELEASE test in March: B1, B2,
    # B3, B4 (B1 tested twice; B5 only IPC; B6 tested in April) = 4 -> 2 / 4 = 0.5.
    # Dividing by tests (6 rows in March) would give 2 / 6.
    tests = pl.DataFrame(
        {
            "batch_id": ["B1", "B1", "B2", "B3", "B4", "B5", "B6"],
            "test_type": ["RELEASE"] * 5 + ["IPC", "RELEASE"],
            "tested_at": [datetime(2026, 3, d) for d in (1, 2, 3, 4, 5, 6)]
                         + [datetime(2026, 4, 1)],
        }
    )  # fmt: skip
    result = kpis.confirmed_oos_rate(_oos(), tests, START, END)
    assert (result.numerator, result.denominator) == (2, 4)
    assert result.value == 0.5


def test_right_first_time_is_lots_without_a_non_conformance_over_lots_produced() -> None:
    # Produced in March (mfg_end): L1-L6. Non-conforming: L2 reworked, L3 linked deviation,
    # L4 confirmed OOS; L5's only deviation was cancelled and L6's OOS was invalidated.
    # Clean: L1, L5, L6 -> 3 / 6 = 0.5.
    links = pl.DataFrame(
        {"batch_id": ["L3", "L5"], "deviation_id": ["D1", "D2"], "status": ["OPEN", "CANCELLED"]}
    )
    oos = pl.DataFrame(
        {"batch_id": ["L4", "L6"], "outcome": ["CONFIRMED", "INVALIDATED_LAB_ERROR"]}
    )
    result = kpis.right_first_time(_lots(), links, oos, START, END)
    assert (result.numerator, result.denominator) == (3, 6)


def _deviations() -> pl.DataFrame:
    # D1 aware 2025-06-01 (closed long ago); D2 aware 2026-03-02, closed 2026-03-20, recurs D1
    # (274 days earlier), due 2026-04-01 -> on time. D3 aware 2024-01-01; D4 aware 2026-03-05,
    # closed 2026-03-25 after due 2026-03-20, recurs D3 (> 12 months) -> late, not a recurrence.
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
    assert kpis.recurrence_count(_deviations()) == 2


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


def test_disposition_cycle_time_is_the_median_and_p90_of_sponsor_decision_minus_mfg_end() -> None:
    # Decided by the sponsor in March: L1 7 d, L2 13 d, L6 7 d, L7 4 d -> sorted 4, 7, 7, 13.
    # Median = (7 + 7) / 2 = 7; p90 (linear) = 7 + 0.7 * (13 - 7) = 11.2.
    result = kpis.disposition_cycle_time(_lots(), START, END)
    assert result.value == 7.0
    assert result.extra["p90"] == pytest.approx(11.2)
    assert (result.numerator, result.denominator) == (4, 4)


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
