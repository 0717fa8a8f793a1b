"""Access log: who signed in, viewed and exported; a sponsor sees only its own users."""

from datetime import UTC, date, datetime, time, timedelta

import streamlit as st

from portal import access_log
from portal.context import current_principal
from portal.users import CMO_ROLES
from portal.widgets import table

principal = current_principal()
# CMO staff read everyone's entries, a sponsor's QA its own users'; any other role (an
# auditor, the demo, the user administrator) is refused here, not only by the router.
if principal.role not in CMO_ROLES and principal.role != "sponsor_qa":
    st.error("The access log is for the sponsor's QA and CMO staff.")
    st.stop()
st.title("Access log")
today = date.today()
period = st.date_input("Period", value=(today - timedelta(days=30), today), key="access-log:range")
start, end = (period[0], period[-1]) if isinstance(period, tuple) and period else (today, today)
since = datetime.combine(start, time.min, UTC)
until = datetime.combine(end + timedelta(days=1), time.min, UTC)

if principal.role in CMO_ROLES:
    entries = access_log.entries_all(since, until)
    st.caption("All sponsors' users and CMO staff.")
else:
    entries = access_log.entries_for_sponsor(principal.sponsor_id, since, until)
    st.caption(f"Sign-ins, page views and exports of {principal.sponsor_id}'s users.")

if entries:
    table(access_log.entries_frame(entries), "access_log")
else:
    st.info("No access recorded in this period.")
