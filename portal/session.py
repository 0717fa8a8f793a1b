"""A browser session's sign-in state: settings, sign-in and sign-out, per-rerun checks.

The principal is re-derived from the registry on every rerun; nothing a page, a cookie or a
URL says decides who is signed in or which sponsor they see.
"""

from __future__ import annotations

import os
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import jwt
import streamlit as st
import streamlit_authenticator as stauth
from streamlit_authenticator.utilities import LoginError

from portal import access_log, cookies, lockout, when
from portal.store import data_root_key, utc_now
from portal.users import Principal, get_user, principal_for, signable_credentials
from warehouse import layout

MODES = ("demo", "production")
PLACEHOLDER_KEYS = frozenset({"", "change-me", "changeme", "placeholder", "some_key"})
MIN_KEY_LENGTH = 32
COOKIE_NAME = "sponsor_portal_auth"
COOKIE_EXPIRY_DAYS = 1.0
DEMO_KEY_FILE = ".cookie_key"

PRINCIPAL = "_principal"
WAREHOUSE_ROOT = "_warehouse_root"
LAST_ACTIVITY = "_last_activity"
SIGN_OUT_REQUESTED = "_sign_out_requested"
NOTICE = "_notice"
REQUESTED_PATH = "_requested_path"
# The signed cookie is set by a browser-side component; set in the sign-in run, which ends
# in st.rerun(), the component can be dropped before it runs once the next run is fast.
COOKIE_PENDING = "_cookie_pending"
LAST_LOGGED_PAGE = "_last_logged_page"
SHOWN_PAGE = "_shown_page"  # the URL path of the page this run shows
DEFERRED_VIEW = "_deferred_view"  # a view to log at the run's end, unless a sponsor's page did


class ConfigError(RuntimeError):
    """The portal must not start with this configuration; the message says why."""


@dataclass(frozen=True)
class Settings:
    mode: str
    cookie_key: str
    idle_limit: timedelta


def portal_mode() -> str:
    mode = os.environ.get("PORTAL_MODE", "demo")
    if mode not in MODES:
        raise ConfigError(f"PORTAL_MODE must be one of {', '.join(MODES)}, not {mode!r}.")
    return mode


def _configured_key() -> str | None:
    try:
        key = st.secrets.get("cookie_key")
    except FileNotFoundError:
        key = None
    return key or os.environ.get("PORTAL_COOKIE_KEY")


def _demo_key() -> str:
    """A key generated once per data root, so demo cookies survive restarts."""
    return data_root_key(DEMO_KEY_FILE)


def cookie_key(mode: str) -> str:
    """The key that signs the sign-in cookie; outside demo mode a real one is required."""
    key = _configured_key()
    if key is not None and key.strip() not in PLACEHOLDER_KEYS:
        if mode == "production" and len(key) < MIN_KEY_LENGTH:
            raise ConfigError(
                f"The cookie key is shorter than {MIN_KEY_LENGTH} characters. "
                "Set a long random cookie_key in .streamlit/secrets.toml or PORTAL_COOKIE_KEY."
            )
        return key
    if mode == "demo":
        return _demo_key()
    reason = "is missing" if key is None else "is still the placeholder"
    raise ConfigError(
        f"The cookie key {reason}. In production mode the portal refuses to start without a "
        "secret key: set cookie_key in .streamlit/secrets.toml or PORTAL_COOKIE_KEY "
        '(e.g. python -c "import secrets; print(secrets.token_urlsafe(48))").'
    )


def settings() -> Settings:
    """Mode, cookie key and idle time-out from the environment and secrets."""
    mode = portal_mode()
    minutes = float(os.environ.get("PORTAL_IDLE_MINUTES", 15))
    return Settings(mode, cookie_key(mode), timedelta(minutes=minutes))


def warehouse_root(principal: Principal, mode: str) -> Path:
    """bd_demo only ever reads the demo plant; others read real data in production."""
    if principal.role == "bd_demo" or mode == "demo":
        return layout.demo_warehouse()
    return layout.real_warehouse()


def set_principal(principal: Principal, root: Path) -> None:
    """Publish this rerun's principal and warehouse root for portal.context."""
    st.session_state[PRINCIPAL] = principal
    st.session_state[WAREHOUSE_ROOT] = str(root)


def authenticator(config: Settings, now: datetime) -> stauth.Authenticate:
    """The authenticator over the users who may sign in now, rebuilt from the registry; its
    cookie is written by the page itself (portal.cookies), not by a component."""
    cookies.install()
    return stauth.Authenticate(
        {"usernames": signable_credentials(now)},
        COOKIE_NAME,
        config.cookie_key,
        COOKIE_EXPIRY_DAYS,
        auto_hash=False,
        # The library sleeps before every signed-out rerun; the portal's lockout replaces it.
        login_sleep_time=0,
    )


def attempt_sign_in(
    auth: stauth.Authenticate, username: str, password: str, now: datetime
) -> str | None:
    """Check a typed username and password; None on success, else what to tell the user."""
    username = username.strip().lower()
    if not username or not password:
        return "Enter your username and password."
    known = get_user(username)
    subject = known.principal() if known else None
    # Failures count for any typed name, so a lock does not reveal which names exist.
    lock_end = lockout.locked_until(username, now)
    if lock_end is not None:
        access_log.record("LOCKED", subject, username=username, detail="sign-in while locked")
        return _locked_message(lock_end)
    # The library's widget hides the typed name on failure; the lockout needs it.
    if auth.authentication_controller.login(username, password):
        lockout.clear_failures(username)
        st.session_state[COOKIE_PENDING] = True  # set by the first signed-in run
        st.session_state[LAST_ACTIVITY] = now
        access_log.record("SIGN_IN", principal_for(username, now))
        return None
    expired = known is not None and not known.disabled and not known.is_valid_at(now)
    access_log.record(
        "EXPIRED" if expired else "SIGN_IN_FAILED",
        subject,
        username=username,
        detail="outside validity window" if expired else None,
    )
    lock_end = lockout.record_failure(username, now, lockout.LockoutPolicy.from_env())
    if lock_end is not None:
        access_log.record("LOCKED", subject, username=username, detail=f"until {lock_end}")
        return _locked_message(lock_end)
    return "Sign-in refused: wrong username or password, or the account is not active."


def _locked_message(lock_end: datetime) -> str:
    return (
        "This account is locked after repeated failed sign-ins. "
        f"Try again after {when.local(lock_end, '%H:%M:%S')}."
    )


def request_sign_out(notice: str | None = None) -> None:
    """Button callback: sign out at the start of the next rerun, telling the user `notice`."""
    st.session_state[SIGN_OUT_REQUESTED] = notice or "You are signed out."


def sign_out(
    auth: stauth.Authenticate,
    event: str,
    subject: Principal | None,
    *,
    detail: str | None = None,
    notice: str | None = None,
) -> None:
    """Log, delete the cookie and clear ALL session state; `notice` is shown at sign-in."""
    access_log.record(event, subject, username=st.session_state.get("username"), detail=detail)
    if st.session_state.get("authentication_status"):
        auth.logout(location="unrendered")
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    # The browser presents the old cookie for the rest of this connection; the library's
    # own flag stops it from signing the session straight back in.
    st.session_state["logout"] = True
    if notice:
        st.session_state[NOTICE] = notice


def signed_in_principal(
    auth: stauth.Authenticate, config: Settings, now: datetime
) -> Principal | None:
    """This rerun's principal, or None after signing out a session that may not continue."""
    # Resumes a session from a signed cookie; a cookie of a user who may no longer sign in
    # leaves the session signed out.
    # A cookie the library cannot decode at all (e.g. alg "none") must not crash the page.
    with suppress(LoginError, jwt.InvalidTokenError):
        auth.login(location="unrendered")
    username = st.session_state.get("username")
    if not st.session_state.get("authentication_status") or not username:
        return None
    if notice := st.session_state.pop(SIGN_OUT_REQUESTED, None):
        sign_out(auth, "SIGN_OUT", principal_for(username, now), notice=notice)
        return None
    principal = principal_for(username, now)
    if principal is None:
        known = get_user(username)
        if known is not None and not known.disabled:
            sign_out(
                auth,
                "EXPIRED",
                known.principal(),
                detail="validity window ended",
                notice="Your access period has ended.",
            )
        else:
            sign_out(auth, "SIGN_OUT", None, detail="account disabled or removed")
        return None
    last = st.session_state.get(LAST_ACTIVITY)
    if last is not None and now - last > config.idle_limit:
        sign_out(
            auth,
            "TIMEOUT",
            principal,
            detail=f"idle since {last:%H:%M:%S}",
            notice="You were signed out after a period of inactivity.",
        )
        return None
    if last is None:
        access_log.record("SIGN_IN", principal, detail="resumed from signed cookie")
    st.session_state[LAST_ACTIVITY] = now
    return principal


def opened_path() -> str:
    """The page address this browser tab was opened at ("" for the portal's root): the last
    part of the URL the session connected from."""
    if not st.context.url:
        return ""
    return urlparse(st.context.url).path.rstrip("/").rsplit("/", 1)[-1]


def store_cookie(auth: stauth.Authenticate) -> None:
    """Set the signed cookie after a sign-in, in the run that shows the first page.

    Called once the router will not hop to another page any more: the component must render in
    a run that completes, so the browser keeps it until it has stored the cookie (a URL opened
    later resumes the session from it).
    """
    if st.session_state.pop(COOKIE_PENDING, False):
        auth.cookie_controller.set_cookie()


def idle_expired(config: Settings, now: datetime | None = None) -> bool:
    """True when the signed-in session has been idle longer than the limit."""
    last = st.session_state.get(LAST_ACTIVITY)
    return last is not None and (now or utc_now()) - last > config.idle_limit


def watch_idle(config: Settings) -> None:
    """Clear an idle screen on its own: a timer reruns the app once the limit has passed.

    The fragment's own runs do not count as activity (only full reruns do), so the rerun it
    triggers finds the session idle and signs it out.
    """
    every = max(5.0, min(60.0, config.idle_limit.total_seconds() / 4))

    @st.fragment(run_every=every)
    def _watch() -> None:
        if idle_expired(config):
            st.rerun(scope="app")

    _watch()


def log_page_view(principal: Principal, url_path: str) -> None:
    """One PAGE_VIEW per page (and sponsor) opened, not per widget rerun.

    CMO staff's views of one sponsor's page are logged by that page, with the sponsor it shows
    as the entry's sponsor (portal.context.scoped_sponsor): that sponsor's QA reads them."""
    st.session_state.pop(DEFERRED_VIEW, None)
    viewed = (url_path, principal.sponsor_id)
    if st.session_state.get(LAST_LOGGED_PAGE) != viewed:
        access_log.record("PAGE_VIEW", principal, page=url_path)
        st.session_state[LAST_LOGGED_PAGE] = viewed


def defer_page_view(url_path: str) -> None:
    """For CMO staff: the page may show one sponsor, whose view it logs with that sponsor."""
    st.session_state[DEFERRED_VIEW] = url_path


def log_deferred_view(principal: Principal) -> None:
    """The view no sponsor's page logged this run: a site-wide page's, without a sponsor."""
    if url_path := st.session_state.pop(DEFERRED_VIEW, None):
        log_page_view(principal, url_path)
