"""Access log: who signed in, viewed and exported; a sponsor sees its own users, CMO staff's
views and exports of its data, and its own data-share tokens."""

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import polars as pl
import streamlit as st

from portal import access_log, tokens
from portal.context import current_principal
from portal.navigation import PAGES
from portal.store import utc_now
from portal.users import CMO_ROLES
from portal.widgets import export_frame, stamped_exports, table
from warehouse.catalogue.columns import ACCESS_EVENT_WORDS

principal = current_principal()
# CMO staff read everyone's entries, a sponsor's QA its own users'; any other role (an
# auditor, the demo, the user administrator) is refused here, not only by the router.
if principal.role not in CMO_ROLES and principal.role != "sponsor_qa":
    st.error("The access log is for the sponsor's QA and CMO staff.")
    st.stop()
st.title("Access log")
if principal.role in CMO_ROLES:
    st.caption("Every sponsor's users and CMO staff, newest first.")
else:
    st.caption("Your users' sign-ins, page views and exports, and every view, export and "
               "audit pack of your data by CMO staff, newest first.")  # fmt: skip
today = utc_now().date()  # the log is kept in UTC
period, who, what, whose = st.columns([2, 2, 2, 1])
chosen = period.date_input("Period (UTC days)", value=(today - timedelta(days=30), today),
                           key="access-log:range")  # fmt: skip
start, end = (chosen[0], chosen[-1]) if isinstance(chosen, tuple) and chosen else (today, today)
since = datetime.combine(start, time.min, UTC)
until = datetime.combine(end + timedelta(days=1), time.min, UTC)

if principal.role in CMO_ROLES:
    entries = access_log.entries_all(since, until)
else:
    entries = access_log.entries_for_sponsor(principal.sponsor_id, since, until)
# Pages by their titles (views name a page's address, exports its script).
titles = {spec.url_path: spec.title for spec in PAGES} | {
    Path(spec.script).stem: spec.title for spec in PAGES
}
log = access_log.entries_frame(entries).with_columns(pl.col("page").replace(titles))
users_seen = sorted(set(log["username"].drop_nulls()))
events_seen = [e for e in ACCESS_EVENT_WORDS if e in set(log["event"])]
picked_users = who.multiselect("Who", users_seen, placeholder="Everyone", key="access-log:who")
picked_events = what.multiselect("What", events_seen, format_func=ACCESS_EVENT_WORDS.get,
                                 placeholder="Everything", key="access-log:what")  # fmt: skip
picked_sponsors: list[str] = []
if principal.role in CMO_ROLES:
    sponsors_seen = sorted(set(log["sponsor_id"].drop_nulls()))
    picked_sponsors = whose.multiselect("Whose data", sponsors_seen, placeholder="All",
                                        key="access-log:sponsor")  # fmt: skip
if picked_users:
    log = log.filter(pl.col("username").is_in(picked_users))
if picked_events:
    log = log.filter(pl.col("event").is_in(picked_events))
if picked_sponsors:
    log = log.filter(pl.col("sponsor_id").is_in(picked_sponsors))

if log.is_empty():
    st.info("No access recorded for these choices." if entries else
            "No access recorded in this period.")  # fmt: skip
else:
    st.caption(f"{log.height} entries.")
    table(log, "access_log")
    described = {"start": start.isoformat(), "end": end.isoformat(), "who": picked_users,
                 "what": picked_events, "sponsors": picked_sponsors}  # fmt: skip
    about = principal.sponsor_id or "all sponsors"
    stamped_exports(lambda: export_frame(log, "access_log"), "access-log", described, about,
                    "none: the portal's own access log", principal)  # fmt: skip

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
