"""The only page a signed-out browser can reach."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st
import streamlit_authenticator as stauth

from portal import preload, session
from portal.store import utc_now

URL_PATH = "sign-in"


def remember_requested_path() -> None:
    """Keep the page a bookmark asked for, to open it once signed in."""
    if session.REQUESTED_PATH in st.session_state:
        return
    path = session.opened_path()
    if path and path != URL_PATH:
        st.session_state[session.REQUESTED_PATH] = path


def sign_in_page(auth: stauth.Authenticate) -> Callable[[], None]:
    """The sign-in page as a navigation page function bound to this rerun's authenticator."""

    def sign_in() -> None:
        st.title("Sponsor Portal")
        notice = st.session_state.pop(session.NOTICE, None)
        if notice:
            st.info(notice)
        with st.form("sign-in"):
            username = st.text_input("Username", key="sign_in_username", autocomplete="username")
            password = st.text_input(
                "Password", type="password", key="sign_in_password", autocomplete="off"
            )
            submitted = st.form_submit_button("Sign in")
        preload.preload()  # the dashboards' browser code, while the password is typed
        if submitted:
            refusal = session.attempt_sign_in(auth, username, password, utc_now())
            if refusal is None:
                st.rerun()
            st.error(refusal)

    return sign_in
