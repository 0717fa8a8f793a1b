"""Browser baseline: Streamlit's own floor for "submit a sign-in form, see a page".

A one-file app with no portal around it: a form with a username, a password and a button;
on submit it reruns and shows a title, one table and one chart of the sponsor's batches (the
minimal page's content), read through the sponsor's confined scope. No password check, no
registry, no access log, no navigation.
"""

import os
from pathlib import Path

import streamlit as st

from bench.pages.content import minimal_content
from warehouse.scope import Scope, open_sponsor_scope


@st.cache_resource
def scope_of(root: str, sponsor_id: str) -> Scope:
    return open_sponsor_scope(Path(root), sponsor_id)


if not st.session_state.get("signed_in"):
    st.title("Floor app")
    with st.form("sign-in"):
        st.text_input("Username", key="sign_in_username")
        st.text_input("Password", type="password", key="sign_in_password")
        if st.form_submit_button("Sign in"):
            st.session_state["signed_in"] = True
            st.rerun()
    st.stop()

minimal_content(scope_of(os.environ["BENCH_WAREHOUSE"], os.environ["BENCH_SPONSOR"]), "Overview")
