"""Moments as the viewer reads them: in the browser's time zone, with UTC beside it."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import streamlit as st


def viewer_zone() -> ZoneInfo | None:
    """The browser's time zone, or None when it is unknown, invalid or UTC itself."""
    name = st.context.timezone
    if not name or name in ("UTC", "Etc/UTC"):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def local(moment: datetime, pattern: str = "%Y-%m-%d %H:%M") -> str:
    """`moment` in the viewer's zone and in UTC, e.g. "2026-12-02 17:31 Europe/Berlin
    (16:31 UTC)"; in UTC alone when the zone is unknown or UTC."""
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    utc = moment.astimezone(UTC)
    zone = viewer_zone()
    if zone is None:
        return f"{utc:{pattern}} UTC"
    there = moment.astimezone(zone)
    same_day = there.date() == utc.date()
    utc_part = f"{utc:%H:%M:%S}" if "%S" in pattern else f"{utc:%H:%M}"
    return f"{there:{pattern}} {zone.key} ({utc_part if same_day else f'{utc:{pattern}}'} UTC)"
