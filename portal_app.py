"""Sponsor Portal router: check settings, sign in, register only the role's pages, run one.

streamlit run portal_app.py
"""

from __future__ import annotations

import pandas  # noqa: F401 -- see below
import streamlit as st

from portal import header, session, warm
from portal.bootstrap import bootstrap, needs_bootstrap
from portal.context import PICKER_ROLES
from portal.navigation import PAGES, pages_for
from portal.sign_in import URL_PATH, remember_requested_path, sign_in_page
from portal.store import StoreUnavailable, utc_now
from portal.users import get_user
from warehouse.scope import DataUnavailable

# pandas is imported here, in full, before any page runs: polars and Streamlit import it lazily
# on first use, and two sessions' first runs doing so at once (one thread each) can meet a
# half-initialised module ("module 'pandas' has no attribute 'Series'").
st.set_page_config(page_title="Sponsor Portal", layout="wide")

try:
    config = session.settings()
except session.ConfigError as refused:
    st.error(f"The portal cannot start. {refused}")
    st.stop()


def route() -> None:
    """Sign in, register only the role's pages, run the one asked for."""
    if needs_bootstrap(config.mode):
        bar = st.progress(0.0, "Preparing the portal on a fresh data root…")
        bootstrap(config.mode, lambda share, step: bar.progress(share, step))
        bar.empty()

    now = utc_now()
    auth = session.authenticator(config, now)
    principal = session.signed_in_principal(auth, config, now)

    # Every known URL path is answered (no "page not found" box): signed out, by the sign-in
    # form; signed in, outside the role, by a hop to the default page. Neither runs a page script.
    known_paths = [spec.url_path for spec in PAGES]

    if principal is None:
        remember_requested_path()
        sign_in = sign_in_page(auth)
        forms = [st.Page(sign_in, title="Sign in", url_path=URL_PATH, default=True)] + [
            st.Page(sign_in, title="Sign in", url_path=path, visibility="hidden")
            for path in known_paths
        ]
        st.navigation(forms, position="hidden").run()
        st.stop()

    root = session.warehouse_root(principal, config.mode)
    session.set_principal(principal, root)
    warm.keep_warm(root)  # the cockpit's first view after a nightly run, computed beforehand
    specs = pages_for(principal.role)
    landing = (get_user(principal.username).landing_page, specs[0].url_path)
    default = next(path for path in landing if path in {spec.url_path for spec in specs})
    # Streamlit's default page answers only at "/": a tab opened at the landing page's own address
    # would meet "page not found" on its first run. Such a session gets a hidden hop as its default
    # instead, so the landing page answers by its name; any other keeps the landing page as the
    # default, and signing in lands on it without a hop (one script run less).
    opened_at = session.opened_path()
    hop = opened_at == default
    pages = {
        spec.url_path: st.Page(spec.script, title=spec.title, url_path=spec.url_path,
                               icon=spec.icon or None, default=spec.url_path == default and not hop)
        for spec in specs
    }  # fmt: skip
    start = [st.Page(lambda: None, title=pages[default].title, url_path="start", default=True,
                     visibility="hidden")] if hop else []  # fmt: skip
    elsewhere = [
        st.Page(lambda: None, title="Not available", url_path=path, visibility="hidden")
        for path in known_paths
        if path not in pages
    ]
    current = st.navigation([*start, *pages.values(), *elsewhere])
    if current in start or current in elsewhere:
        st.switch_page(pages[default])
    requested = st.session_state.pop(session.REQUESTED_PATH, None)
    if requested in pages and current.url_path != requested:
        st.switch_page(pages[requested])
    session.store_cookie(auth)
    shown = next(path for path, page in pages.items() if page is current)
    header.render(principal, root, shown, landing=default)
    session.watch_idle(config)
    st.session_state[session.SHOWN_PAGE] = shown
    if principal.role in PICKER_ROLES:
        # Logged with the sponsor the page shows once it has picked one (scoped_sponsor), else
        # (a site-wide page, or a run that stopped first) when the run ends.
        session.defer_page_view(shown)
    else:
        session.log_page_view(principal, shown)
    try:
        current.run()
    finally:
        session.log_deferred_view(principal)


try:
    route()
except (StoreUnavailable, DataUnavailable) as down:
    # The store (PostgreSQL) or the warehouse (S3) is down: say so, nothing else.
    st.title("Sponsor Portal")
    st.error(str(down))
