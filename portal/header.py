"""The header every signed-in page carries: who, role, sponsor, data age, auditor watermark."""

from __future__ import annotations

import html
from datetime import UTC, timedelta
from pathlib import Path

import streamlit as st

from portal import session, when
from portal.store import utc_now
from portal.users import Principal, set_landing_page
from warehouse import layout
from warehouse.scope import DataUnavailable, ScopeError, SnapshotInfo, snapshot_info

STALE_AFTER = timedelta(hours=36)
ROLE_LABELS = {
    "sponsor_qa": "Sponsor QA",
    "auditor": "Auditor (read-only)",
    "cmo_quality": "CMO Quality",
    "cmo_management": "CMO Management",
    "bd_demo": "Demo plant",
    "admin": "Administrator",
}


def render(principal: Principal, root: Path, url_path: str, *, landing: str) -> None:
    """Draw the sidebar header (with the landing-page choice), and the watermark for auditors."""
    bar = st.sidebar
    bar.markdown(f"**{principal.display_name}** · `{principal.username}`")
    bar.caption(ROLE_LABELS.get(principal.role, principal.role))
    if principal.sponsor_id:
        bar.caption(f"Sponsor: {principal.sponsor_id}")
    if root == layout.demo_warehouse():
        bar.caption("Demo plant: fictional sponsors and data")
    try:
        info = snapshot_info(root)
    except DataUnavailable:
        raise  # the store does not answer: the whole page says only that (portal_app)
    except ScopeError:
        # The live run cannot be named (a damaged pointer on S3): the page says why, and the
        # sidebar stays whole (sign out).
        bar.warning("The published data cannot be read right now.")
    else:
        _data_age(info)
    if url_path != landing:
        bar.button(
            "Open this page first after sign-in", key="landing_page",
            on_click=set_landing_page, args=(principal.username, url_path),
        )  # fmt: skip
    bar.button("Sign out", key="sign_out", on_click=session.request_sign_out)
    if principal.role == "auditor":
        _watermark(principal)


def _data_age(info: SnapshotInfo | None) -> None:
    bar = st.sidebar
    if info is None:
        bar.info("No data yet: the nightly update has not published a snapshot.")
        return
    created = info.created_at
    created = created if created.tzinfo else created.replace(tzinfo=UTC)
    bar.caption(f"Data as of {when.local(created)}")
    if utc_now() - created > STALE_AFTER:
        bar.warning(
            f"Data is older than {STALE_AFTER.total_seconds() / 3600:.0f} h: "
            "the nightly update may have failed."
        )


def _watermark(principal: Principal) -> None:
    until = principal.valid_until
    valid = f"valid until {when.local(until)}"
    text = html.escape(f"{principal.display_name} · auditor · {valid}")
    st.sidebar.warning(f"Auditor access {valid}")
    st.html(
        '<div style="position:fixed;bottom:0.6rem;right:1rem;z-index:1000;opacity:0.55;'
        "font-size:0.8rem;padding:0.2rem 0.5rem;border:1px solid #b00;color:#b00;"
        f'background:rgba(255,255,255,0.8);pointer-events:none">{text}</div>'
    )
