"""What a page may know about its session: the principal and the scope it reads through.

The principal is re-derived from the user registry by portal_app.py on every rerun and the
scope follows from it; a page never chooses a sponsor for a sponsor-bound role.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import streamlit as st

from portal import session
from portal.session import SHOWN_PAGE
from portal.users import CMO_ROLES, SPONSOR_ROLES, Principal
from warehouse import layout
from warehouse.queries.common import sponsor_name
from warehouse.scope import Scope, ScopeError, open_cmo_scope, open_sponsor_scope, snapshot_info
from warehouse.scope import sponsor_ids as published_sponsor_ids

PICKER_ROLES = CMO_ROLES | {"bd_demo"}
# Who may put two demo sponsors side by side (the demo tour): business development only.
DEMO_TOUR_ROLES = frozenset({"bd_demo"})
_PICKED_SPONSOR = "_picked_sponsor"


def current_principal() -> Principal:
    principal = st.session_state.get("_principal")
    if principal is None:
        st.stop()
    return principal


def warehouse_root() -> Path | str:
    return layout.as_warehouse(st.session_state["_warehouse_root"])


@st.cache_resource(max_entries=64, show_spinner=False)
def _scope(root: str, run_id: str, sponsor_id: str | None) -> Scope:
    """One confined instance per (warehouse root, snapshot, sponsor); scope is in the key."""
    if sponsor_id is None:
        return open_cmo_scope(layout.as_warehouse(root))
    return open_sponsor_scope(layout.as_warehouse(root), sponsor_id)


def open_cached_scope(root: Path | str, run_id: str, sponsor_id: str | None) -> Scope:
    """The pages' own cached scope (for portal.warm, which runs outside any page)."""
    return _scope(str(root), run_id, sponsor_id)


def scoped_sponsor() -> str:
    """The sponsor whose data this page shows.

    Sponsor-bound roles: their own, from the registry. CMO and demo roles: the sponsor they
    picked, checked against the published registry.
    """
    principal = current_principal()
    if principal.role in SPONSOR_ROLES:
        return principal.sponsor_id
    if principal.role not in PICKER_ROLES:
        st.error("This role has no sponsor dashboards.")
        st.stop()
    choices = published_sponsor_ids(warehouse_root())
    if not choices:
        st.info("No data has been published yet.")
        st.stop()
    picked = st.session_state.get(_PICKED_SPONSOR)
    if picked not in choices:
        picked = choices[0]
    picked = st.sidebar.selectbox("Sponsor", choices, index=choices.index(picked))
    st.session_state[_PICKED_SPONSOR] = picked
    # The view is logged as of the sponsor shown: that sponsor's QA sees who at the CMO looked.
    # (A page script run on its own, as the page tests do, has no URL path and logs nothing.)
    if shown := st.session_state.get(SHOWN_PAGE):
        session.log_page_view(replace(principal, sponsor_id=picked), shown)
    return picked


def sponsor_scope() -> Scope:
    """The confined scope of the sponsor this page shows (see scoped_sponsor). Anyone but the
    sponsor's own QA reads which sponsor it is, by name and id, under the page's title."""
    scope = _open(scoped_sponsor())
    if current_principal().role != "sponsor_qa":
        name = sponsor_name(scope)
        shown = name if name == scope.sponsor_id else f"{name} ({scope.sponsor_id})"
        st.badge(f"Sponsor: {shown}", icon=":material/domain:", color="blue")
    return scope


@dataclass(frozen=True)
class Voice:
    """How a page addresses its reader: "your release" to the sponsor's own QA, "the
    sponsor's release" to an auditor, CMO staff or a demo audience."""

    your: str
    you: str

    @property
    def Your(self) -> str:  # noqa: N802 -- the capitalised form, at a sentence's start
        return self.your[:1].upper() + self.your[1:]


def voice() -> Voice:
    if current_principal().role == "sponsor_qa":
        return Voice("your", "you")
    return Voice("the sponsor's", "the sponsor")


def site_scope() -> Scope:
    """Every sponsor of the warehouse: CMO roles (and the demo plant) only."""
    if current_principal().role not in PICKER_ROLES:
        st.error("This page is for CMO staff.")
        st.stop()
    return _open(None)


def published_sponsors() -> list[str]:
    """The sponsors of the current snapshot of the session's warehouse, for CMO staff and the
    administrator (who reads no sponsor's data: only the snapshot's list of sponsors)."""
    if current_principal().role not in CMO_ROLES | {"admin"}:
        st.error("This page is for CMO staff and the administrator.")
        st.stop()
    return published_sponsor_ids(warehouse_root())


def demo_scope(sponsor_id: str) -> Scope:
    """A demo-plant sponsor's confined scope, whatever warehouse the session reads (BD tour).

    The tour shows several sponsors at once, so it refuses every other role itself, not only
    through the router's page registry."""
    if current_principal().role not in DEMO_TOUR_ROLES:
        st.error("The demo tour is for business development on the demo plant.")
        st.stop()
    return _open(sponsor_id, layout.demo_warehouse())


def _open(sponsor_id: str | None, root: Path | str | None = None) -> Scope:
    root = root or warehouse_root()
    try:
        info = snapshot_info(root)
        if info is None:
            st.info("No data has been published yet. The nightly job has not run.")
            st.stop()
        return _scope(str(root), info.run_id, sponsor_id)
    except ScopeError as refused:  # DataUnavailable too: the object store does not answer
        st.error(str(refused))
        st.stop()
