"""The portal's one "today": every age, due state and default period compares with it.

It is the wall clock's date unless PORTAL_TODAY (YYYY-MM-DD) sets it, so that a test, a
demo on a fixed plant or a re-run of yesterday's review can be pinned to a day. Security
clocks (sign-in lockout, idle time-out, an auditor's validity) stay on the wall clock.
"""

from __future__ import annotations

import os
from datetime import date, datetime, time

TODAY_ENV = "PORTAL_TODAY"


def today() -> date:
    """PORTAL_TODAY when set, else the wall clock's date."""
    pinned = os.environ.get(TODAY_ENV, "").strip()
    if not pinned:
        return date.today()
    try:
        return date.fromisoformat(pinned)
    except ValueError as exc:
        raise ValueError(f"{TODAY_ENV} must be a date YYYY-MM-DD, not {pinned!r}") from exc


def now() -> datetime:
    """The portal's "now" (naive, the plant's local time, as the snapshot's times are): the
    wall clock, or the end of the pinned day when PORTAL_TODAY is set."""
    if os.environ.get(TODAY_ENV, "").strip():
        return datetime.combine(today(), time(23, 59, 59))
    return datetime.now().replace(microsecond=0)
