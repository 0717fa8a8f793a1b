"""Each KPI of DOMAIN.md against a value computed by hand on a small frame made for it.

The arithmetic is written beside each assertion; a test fails when its formula changes.
"""

from __future__ import annotations

from datetime import date, datetime

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
