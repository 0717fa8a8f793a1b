"""Users: the registry and the data share's tokens; CMO staff and admins create time-bounded
auditor accounts and sponsors' API tokens here, and manage accounts (CMO staff: auditors only)."""

import json
from datetime import UTC, datetime, time, timedelta

import streamlit as st

from portal import access_log, tokens, users
from portal.context import current_principal, published_sponsors
from portal.store import utc_now
from portal.users import CMO_ROLES, UserError, create_auditor, list_users, users_frame
from portal.widgets import table
from warehouse.catalogue.columns import ROLE_WORDS

principal = current_principal()
if principal.role not in CMO_ROLES | {"admin"}:
    # Navigation never registers this page for other roles; the page refuses them itself too.
    st.error("User management is for the administrator and CMO staff.")
    st.stop()
st.title("Users")
registry = st.container()  # filled last, so it shows what the forms below just changed
sponsors = published_sponsors()
new_auditor, manage = st.columns(2, gap="large")

with new_auditor:
    st.subheader("New auditor account")
    if not sponsors:
        st.info("Auditor accounts can be created once a snapshot is published: sponsors come "
                "from it.")  # fmt: skip
    else:
        with st.form("new-auditor", clear_on_submit=True):
            username = st.text_input("Username", placeholder="lower case, e.g. anna.berg")
            display_name = st.text_input("Name")
            sponsor_id = st.selectbox("Sponsor audited", sponsors)
            days = st.number_input("Valid for (days, from today)", min_value=1, max_value=30,
                                   value=5)  # fmt: skip
            submitted = st.form_submit_button("Create auditor")
        if submitted:
            start = datetime.combine(utc_now().date(), time.min, UTC)
            try:
                if not display_name.strip():
                    raise UserError("give the auditor's name")
                user, password = create_auditor(
                    username.strip(), display_name.strip(), sponsor_id, valid_from=start,
                    valid_until=start + timedelta(days=int(days)), created_by=principal.username,
                )  # fmt: skip
            except UserError as refused:
                st.error(f"No account was created: {refused}.")
            else:
                access_log.record_account("USER_CREATED", principal, user.username, sponsor_id)
                # Shown once, in this rerun only; it is stored nowhere but as a bcrypt hash.
                st.success(f"Created {user.username} for {sponsor_id}, valid until "
                           f"{user.valid_until:%Y-%m-%d %H:%M} UTC.")  # fmt: skip
                st.code(password, language=None)
                st.caption("One-time password: hand it over securely; it will not be shown "
                           "again.")  # fmt: skip

with manage:
    st.subheader("Manage an account")
    now = utc_now()
    managed = {u.username: u for u in list_users() if users.may_manage(principal, u)}
    if not managed:
        st.info("No account you may manage." if principal.role == "admin" else
                "No auditor account yet: CMO staff manage auditors' accounts here.")  # fmt: skip
    else:
        if principal.role != "admin":
            st.caption("CMO staff manage auditors' accounts; the administrator manages all.")
        chosen = managed[st.selectbox(
            "Account", list(managed), key="users:manage",
            format_func=lambda name: " · ".join(filter(None, (
                name, managed[name].display_name, ROLE_WORDS.get(managed[name].role),
                managed[name].sponsor_id, "disabled" if managed[name].disabled else None))),
        )]  # fmt: skip
        actions = (["Enable"] if chosen.disabled else ["Disable"]) + ["Reset password"]
        if chosen.role == "auditor" and (chosen.valid_until is None or chosen.valid_until > now):
            actions.append("End access now")
        with st.form("manage-account", clear_on_submit=True):
            action = st.radio("Action", actions, horizontal=True)
            confirmed = st.checkbox(f"I mean to do this to {chosen.username}.")
            apply = st.form_submit_button("Apply")
        if apply and not confirmed:
            st.warning("Tick the box to confirm.")
        elif apply:
            name, sponsor = chosen.username, chosen.sponsor_id
            if action == "Disable":
                users.disable_user(name)
                access_log.record_account("USER_DISABLED", principal, name, sponsor)
                st.success(f"Disabled {name}: it cannot sign in, and its open sessions end at "
                           "their next click.")  # fmt: skip
            elif action == "Enable":
                users.enable_user(name)
                access_log.record_account("USER_ENABLED", principal, name, sponsor)
                st.success(f"Enabled {name}.")
            elif action == "Reset password":
                password = users.one_time_password()
                users.reset_password(name, password)
                access_log.record_account("PASSWORD_RESET", principal, name, sponsor)
                st.success(f"New one-time password for {name}:")
                st.code(password, language=None)
                st.caption("Hand it over securely; it will not be shown again.")
            else:
                try:
                    ended = users.end_access(name, now)
                except UserError as refused:
                    st.error(f"Nothing was changed: {refused}.")
                else:
                    access_log.record_account("ACCESS_ENDED", principal, name, sponsor)
                    st.success(f"{name}'s access ended at {ended.valid_until:%Y-%m-%d %H:%M} "
                               "UTC: its open sessions end at their next click.")  # fmt: skip

with registry:
    table(users_frame(list_users()), "users")

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
