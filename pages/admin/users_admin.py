"""Users: the registry and the data share's tokens; CMO staff and admins create time-bounded
auditor accounts and sponsors' API tokens here."""

import json
from datetime import UTC, date, datetime, time, timedelta

import streamlit as st

from portal import tokens
from portal.context import current_principal, published_sponsors
from portal.store import utc_now
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

st.subheader("Data-share tokens")
st.caption(
    "A sponsor's IT reads its own tables through the data share with a token, handed over in "
    "a profile file. The token's secret is in that file only: it is shown once, at creation."
)
listing = st.container()  # filled last, so it shows what the forms below just changed
now = utc_now()
new_token, old_token = st.columns(2, gap="large")

with new_token:
    st.markdown("**Create a token**")
    sponsors = published_sponsors()
    if not sponsors:
        st.info("Tokens can be created once a snapshot is published: sponsors come from it.")
    else:
        today = now.date()
        with st.form("new-token", clear_on_submit=True):
            for_sponsor = st.selectbox("Sponsor", sponsors)
            label = st.text_input(
                "Label", max_chars=tokens.MAX_LABEL_LENGTH,
                placeholder="Who will use it, e.g. the sponsor's data team",
            )  # fmt: skip
            # No min/max on the picker: Streamlit would silently swap a date outside them for
            # the default; tokens.create refuses it with the limit instead.
            latest = tokens.years_later(today, tokens.MAX_YEARS_AHEAD)
            expires = st.date_input(
                "Expires (end of the day, UTC)",
                value=tokens.years_later(today, tokens.DEFAULT_YEARS_AHEAD),
                format="YYYY-MM-DD",
                help=f"At most {tokens.MAX_YEARS_AHEAD} years ahead: {latest} at the latest.",
            )
            endpoint = st.text_input(
                "Data-share address", value=tokens.DEFAULT_ENDPOINT,
                help="Where the sponsor's tools read the tables; keep it unless CMO IT gave "
                "another.",
            ).strip()  # fmt: skip
            create = st.form_submit_button("Create token")
        if create:
            try:
                tokens.check_endpoint(endpoint)
                token, secret = tokens.create(
                    for_sponsor, label.strip(), expires, principal.username, role=principal.role
                )
            except tokens.TokenError as refused:
                st.error(f"No token was created: {refused}.")
            else:
                # The secret lives in this rerun's download only; it is stored nowhere but as
                # a hash, and the next rerun drops the button.
                st.success(f"Created {token.token_id} for {token.sponsor_id} ({token.label}).")
                st.download_button(
                    "Download the profile file",
                    json.dumps(tokens.profile(secret, endpoint, token), indent=2) + "\n",
                    file_name=tokens.profile_name(token), mime="application/json",
                    on_click="ignore", type="primary",
                )  # fmt: skip
                st.warning(
                    "Download the file now: the token's secret will not be shown again. Hand "
                    "it to the sponsor securely; if it is lost, revoke the token and create "
                    "another."
                )

with old_token:
    st.markdown("**Revoke a token**")
    live = {t.token_id: t for t in tokens.list_tokens() if t.live(now)}
    if not live:
        st.info("No token is live.")
    else:
        with st.form("revoke-token", clear_on_submit=True):
            token_id = st.selectbox(
                "Token", list(live),
                format_func=lambda i: f"{i} · {live[i].sponsor_id} · {live[i].label}",
            )  # fmt: skip
            confirmed = st.checkbox("Its clients lose access at once; this cannot be undone.")
            revoke = st.form_submit_button("Revoke token")
        if revoke and not confirmed:
            st.warning("Tick the box to confirm the revocation.")
        elif revoke:
            revoked = tokens.revoke(token_id, principal.username, now, role=principal.role)
            if revoked.revoked_at == now:
                st.success(f"Revoked {revoked.token_id} ({revoked.sponsor_id}, {revoked.label}).")
            else:
                st.info(f"{revoked.token_id} was already revoked by {revoked.revoked_by}.")

with listing:
    issued = tokens.list_tokens()
    if issued:
        table(tokens.tokens_frame(issued, now), "api_tokens")
    else:
        st.info("No token has been created yet.")
