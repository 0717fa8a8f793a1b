"""Access log: who signed in, viewed and exported; a sponsor sees its own users, CMO staff's
views and exports of its data, and its own data-share tokens."""

from datetime import UTC, date, datetime, time, timedelta

import streamlit as st

from portal import access_log, tokens
from portal.context import current_principal
from portal.store import utc_now
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
    st.caption("Your users' sign-ins, page views and exports, and every view, export and "
               "audit pack of your data by CMO staff.")  # fmt: skip

if entries:
    table(access_log.entries_frame(entries), "access_log")
else:
    st.info("No access recorded in this period.")

# CMO staff manage every sponsor's tokens on the Users page; here a sponsor's QA sees its own.
if principal.role == "sponsor_qa":
    st.subheader("Your data-share tokens")
    st.caption(
        "The tokens your IT uses to read your tables through the data share. For a new token, "
        "or to have one revoked, ask CMO quality."
    )
    own = tokens.list_tokens(principal.sponsor_id)
    if own:
        table(tokens.tokens_frame(own, utc_now()).drop("sponsor_id"), "api_tokens")
    else:
        st.info("No data-share token has been created for you yet.")
