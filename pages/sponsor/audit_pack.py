"""Audit pack: one sponsor's records for a period as a watermarked PDF, data files, manifest."""

from dataclasses import replace
from datetime import timedelta

import streamlit as st

from portal import access_log, decisions
from portal.context import current_principal, sponsor_scope
from portal.users import CMO_ROLES, SPONSOR_ROLES
from portal.widgets import deliver
from warehouse import clock
from warehouse.auditpack import AuditPack, PackError, PackRequest, build_pack
from warehouse.queries.common import products

PAGE = "audit-pack"
HELD = "_audit_pack"  # (sponsor id, AuditPack) of the last pack generated in this session


def log_download(who, pack: AuditPack) -> None:
    # Called by deliver() once the pack is handed out: a button left on screen past the
    # user's access is refused and, like every export, leaves nothing in the log.
    access_log.record(
        "DOWNLOAD", who, page=PAGE, filters=pack.manifest["parameters"],
        row_count=pack.row_count, content_hash=pack.content_hash, detail=pack.file_name,
    )  # fmt: skip


principal = current_principal()
st.title("Audit pack")
if principal.role not in SPONSOR_ROLES | CMO_ROLES:
    st.error("Audit packs are for sponsor QA, auditors and CMO quality staff.")
    st.stop()
scope = sponsor_scope()
sponsor = scope.sponsor_id
# Log entries carry the pack's sponsor, so that sponsor sees packs CMO staff made for it.
logged_as = replace(principal, sponsor_id=sponsor)
auditor = principal.role == "auditor"

options = products(scope)
names = dict(zip(options["product_id"], options["name"], strict=True))
today = clock.today()
period = st.date_input("Period", value=(today - timedelta(days=365), today), key="pack:range")
start, end = (period[0], period[-1]) if isinstance(period, tuple) and period else (today, today)
picked = st.multiselect("Products", list(names), format_func=names.get,
                        placeholder="All products", key=f"pack:products:{sponsor}")  # fmt: skip
if auditor:
    recipient = principal.display_name
    st.text_input("Recipient", value=recipient, disabled=True, key="pack:auditor")
    st.caption(f"Your packs carry your name and expire with your access "
               f"({principal.valid_until:%Y-%m-%d %H:%M} UTC).")  # fmt: skip
else:
    recipient = st.text_input("Recipient", value=principal.display_name, key="pack:recipient")

if st.button("Generate", type="primary", key="pack:generate"):
    request = PackRequest(
        sponsor_id=sponsor, start=start, end=end, recipient=recipient,
        generated_by=f"{principal.display_name} ({principal.username})", products=tuple(picked),
        valid_until=principal.valid_until if auditor else None,
    )  # fmt: skip
    try:
        with st.spinner("Building the audit pack…"):
            pack = build_pack(scope, request, signed=decisions.signed_for(scope))
    except PackError as refused:
        st.error(str(refused))
        st.stop()
    access_log.record(
        "AUDIT_PACK", logged_as, page=PAGE, filters=pack.manifest["parameters"],
        row_count=pack.row_count, content_hash=pack.content_hash, detail=pack.file_name,
    )  # fmt: skip
    st.session_state[HELD] = (sponsor, pack)

held = st.session_state.get(HELD)
if held is not None and held[0] == sponsor:
    pack = held[1]
    issue = pack.manifest["issue"]
    until = issue["valid_until"][:16].replace("T", " ")
    st.success(f"Audit pack ready for {issue['recipient']}: {len(pack.manifest['sections'])} "
               f"sections, {pack.row_count} rows, valid until {until} UTC.")  # fmt: skip
    # Built when fetched, through deliver(): a button left on screen past an auditor's window
    # (or after the account is disabled) serves the refusal, not the pack.
    st.download_button(
        "Download audit pack",
        deliver(principal, lambda zipped=pack.zip_bytes: zipped,
                lambda: log_download(logged_as, pack)),
        file_name=pack.file_name, mime="application/zip", on_click="ignore", key="pack:download",
    )  # fmt: skip
    st.caption("Content hash (SHA-256), also on the cover: the same snapshot and parameters "
               "always give this hash.")  # fmt: skip
    st.code(pack.content_hash, language=None)
