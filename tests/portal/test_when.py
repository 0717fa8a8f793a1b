"""Moments in the viewer's time zone, with UTC beside them (portal.when), as a page shows
them: the zone comes from the browser (st.context.timezone)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest


def _shown(timezone: str | None) -> str:
    def script() -> None:
        from datetime import UTC, datetime

        import streamlit as st

        from portal import when

        st.text(when.local(datetime(2026, 12, 2, 16, 31, 5, tzinfo=UTC)))
        st.text(when.local(datetime(2026, 12, 2, 16, 31, 5, tzinfo=UTC), "%H:%M:%S"))

    at = AppTest.from_function(script)
    if timezone is not None:
        at.context = {"timezone": timezone}
    at.run()
    assert not at.exception
    return " | ".join(t.value for t in at.text)


@pytest.mark.parametrize(
    ("timezone", "expected"),
    [
        ("Europe/Berlin", "2026-12-02 17:31 Europe/Berlin (16:31 UTC) | "
                          "17:31:05 Europe/Berlin (16:31:05 UTC)"),
        ("Asia/Tokyo", "2026-12-03 01:31 Asia/Tokyo (2026-12-02 16:31 UTC) | "
                       "01:31:05 Asia/Tokyo (16:31:05 UTC)"),
        ("UTC", "2026-12-02 16:31 UTC | 16:31:05 UTC"),
        (None, "2026-12-02 16:31 UTC | 16:31:05 UTC"),
        ("Mars/Olympus_Mons", "2026-12-02 16:31 UTC | 16:31:05 UTC"),
    ],
)  # fmt: skip
def test_a_moment_reads_in_the_viewers_zone_and_in_utc(timezone, expected) -> None:
    assert _shown(timezone) == expected
