"""Users: the registry; CMO staff and admins create time-bounded auditor accounts here."""

from datetime import UTC, date, datetime, time, timedelta

import streamlit as st

from portal.context import current_principal
from portal.users import CMO_ROLES, UserError, create_auditor, list_users, users_frame
from portal.widgets import table

principal = current_principal()
if principal.role not in CMO_ROLES | {"admin"}:
    # Navigation never registers this page for other roles; the page refuses them itself too.
    st.error("User management is for the administrator and CMO staff.")
    st.stop()
st.title("Users")

table(users_frame(list_users()), "users")

st.subheader("New auditor account")
with st.form("new-auditor", clear_on_submit=True):
    username = st.text_input("Username (lower case)")
    display_name = st.text_input("Name")
    sponsor_id = st.text_input("Sponsor id").strip().upper()
    days = st.number_input("Valid for (days, from today)", min_value=1, max_value=30, value=5)
    submitted = st.form_submit_button("Create auditor")
if submitted:
    start = datetime.combine(date.today(), time.min, UTC)
    try:
        user, password = create_auditor(
            username.strip(),
            display_name.strip(),
            sponsor_id,
            valid_from=start,
            valid_until=start + timedelta(days=int(days)),
            created_by=principal.username,
        )
    except UserError as refused:
        st.error(str(refused))
    else:
        # Shown once, in this rerun only; it is stored nowhere but as a bcrypt hash.
        st.success(f"Created {user.username}, valid until {user.valid_until:%Y-%m-%d %H:%M} UTC.")
        st.code(password, language=None)
        st.caption("One-time password: hand it over securely; it will not be shown again.")
