"""The change-control page's decisions: what awaits the sponsor, the signing form for those who
may sign, and every signature given, as the catalogue's "decisions" rows.

What may be decided is read from the sponsor's confined scope on every run; the form keeps
nothing but the hash of what it showed, so a submit signs exactly what was on the screen or
nothing (portal.decisions.sign refuses a changed record, a foreign one, a replay)."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import polars as pl
import streamlit as st

from portal import decisions, session
from portal.context import current_principal, voice
from portal.store import utc_now
from portal.widgets import export_buttons, table
from warehouse.filters import Filters
from warehouse.queries import decisions as subjects_of
from warehouse.queries.cockpit import sponsor_names
from warehouse.queries.decision_receipts import receipts
from warehouse.scope import Scope

_SHOWN = "_decision_shown"  # record -> (content hash, decision it would replace) last rendered
_SIGNED = "_decision_signed"  # the signature just given, shown once after the rerun


# How long the CMO's QMS may take to record a decision signed in the portal before CMO staff
# are told (hours; the quality agreement's figure belongs here when it sets one).
def qms_record_hours() -> float:
    """PORTAL_QMS_RECORD_HOURS, 48 unless set."""
    return float(os.environ.get("PORTAL_QMS_RECORD_HOURS", "48"))


OPEN_SQL = """
SELECT i.sponsor_id, c.change_number, p.name AS product, i.obligation, c.planned_effective,
       c.title, i.impact_id,
       c.actual_effective IS NULL AND c.status NOT IN ('REJECTED', 'CLOSED')
         AND ((i.obligation = 'PRIOR_APPROVAL' AND coalesce(i.decision, 'PENDING') = 'PENDING')
              OR (i.obligation = 'NOTIFY' AND i.notified_at IS NULL)) AS awaiting,
       i.obligation = 'NOTIFY' AND i.notified_at IS NULL AS notice_not_sent
FROM change_impact AS i
JOIN change_control AS c ON c.change_id = i.change_id AND c.sponsor_id = i.sponsor_id
LEFT JOIN product AS p ON p.product_id = i.product_id AND p.sponsor_id = i.sponsor_id
ORDER BY c.planned_effective NULLS LAST, c.change_number, i.sponsor_id, product
"""


def open_obligations(
    scope: Scope, signed: pl.DataFrame, receipts: pl.DataFrame | None, now: datetime
) -> pl.DataFrame:
    """Catalogue "open_change_obligations": the scope's impacts still awaiting the CMO's notice
    or the sponsor, and those whose decision in force (`signed`: catalogue "decisions" rows,
    with sponsor_id) the QMS has not recorded, flagged once qms_record_hours() have passed."""
    impacts = scope.frame("open change obligations", OPEN_SQL)
    latest = (
        signed.filter(pl.col("record_type").is_in(subjects_of.CHANGE_KINDS))
        .sort("signed_at_utc", maintain_order=True)
        .unique(["sponsor_id", "record_id"], keep="last")
        .select("sponsor_id", pl.col("record_id").alias("impact_id"), "signature",
                "signer_name", "signed_at_utc", "decision_id")
    )  # fmt: skip
    if receipts is not None and receipts.height:
        recorded = receipts.select("decision_id", pl.col("recorded_at").alias("qms_recorded_at"))
    else:
        recorded = pl.DataFrame(
            schema={"decision_id": pl.String, "qms_recorded_at": pl.Datetime("us")}
        )
    late = pl.lit(now.astimezone(UTC).replace(tzinfo=None)) - pl.col("signed_at_utc") >= (
        pl.duration(seconds=round(qms_record_hours() * 3600)))  # fmt: skip
    rows = (
        impacts.join(latest, on=["sponsor_id", "impact_id"], how="left")
        .join(recorded, on="decision_id", how="left")
        .with_columns(
            state=pl.when(pl.col("decision_id").is_null() & pl.col("notice_not_sent"))
            .then(pl.lit("NOTICE_NOT_SENT"))
            .when(pl.col("decision_id").is_null())
            .then(pl.lit("AWAITING_SPONSOR"))
            .when(pl.col("qms_recorded_at").is_not_null())
            .then(pl.lit(None, pl.String))
            .when(late)
            .then(pl.lit("QMS_OVERDUE"))
            .otherwise(pl.lit("SIGNED_NOT_RECORDED"))
        )
        .filter(
            (pl.col("decision_id").is_null() & pl.col("awaiting"))
            | (pl.col("decision_id").is_not_null() & pl.col("state").is_not_null())
        )
    )
    return rows.select(
        "sponsor_id", "change_number", "product", "obligation", "planned_effective", "state",
        "signer_name", "signed_at_utc", "signature",
        pl.col("qms_recorded_at").cast(pl.Datetime("us")), "title", "impact_id",
    )  # fmt: skip


def cmo_obligations(scope: Scope) -> pl.DataFrame:
    """open_obligations over every sponsor (CMO staff's site scope) and every decision."""
    signed = decisions.decisions_frame(decisions.all_decisions())
    return open_obligations(scope, signed, receipts(scope), utc_now())


def answered_in_portal(
    scope: Scope, awaiting: pl.DataFrame, signed: pl.DataFrame | None = None
) -> tuple[pl.DataFrame, int]:
    """`awaiting` (change impacts the QMS still shows as awaiting the sponsor: approvals and
    notifications to acknowledge) without those the sponsor has already answered in the
    portal (`signed`: its change decisions, read here when not given), and how many."""
    if signed is None:
        signed = decisions.signed_for(scope, subjects_of.CHANGE_KINDS)
    answered = awaiting.filter(pl.col("impact_id").is_in(signed["record_id"].implode()))
    return awaiting.filter(~pl.col("impact_id").is_in(answered["impact_id"].implode())), (
        answered.height
    )


def sponsor_obligations(scope: Scope) -> pl.DataFrame:
    """open_obligations of one sponsor's scope, with its own decisions only."""
    return open_obligations(scope, decisions.signed_for(scope), receipts(scope), utc_now())


def not_recorded_in_time(obligations: pl.DataFrame, names: dict[str, str]) -> str | None:
    """One sentence for CMO staff naming the signed decisions the QMS has not recorded in
    qms_record_hours(), or None when there are none."""
    late = obligations.filter(pl.col("state") == "QMS_OVERDUE")
    if late.is_empty():
        return None
    which = ", ".join(
        f"{row['change_number']} ({names.get(row['sponsor_id'], row['sponsor_id'])})"
        for row in late.iter_rows(named=True)
    )
    return (
        f"{late.height} decision(s) signed by sponsors in the portal are not recorded in the "
        f"QMS after {qms_record_hours():g} hours: {which}. Import the outbox "
        "(python -m portal decisions export)."
    )


def obligations_section(scope: Scope, filters: Filters, page: str, site_wide: bool) -> None:
    """Change obligations not yet met (catalogue "open_change_obligations") with who signed,
    site-wide for CMO staff (sponsors by name, and the decisions the QMS has not recorded in
    time flagged) or for the scope's sponsor."""
    obligations = cmo_obligations(scope) if site_wide else sponsor_obligations(scope)
    names = sponsor_names(scope) if site_wide else {}
    if site_wide and (late := not_recorded_in_time(obligations, names)):
        st.error(late, icon=":material/sync_problem:")
    if obligations.is_empty():
        st.success("Every change not yet effective has the notification or approval the "
                   "agreement requires, and the QMS has recorded every decision signed in the "
                   "portal.")  # fmt: skip
        return
    named = pl.col("sponsor_id").replace({s: f"{n} ({s})" for s, n in names.items()})
    table(obligations.with_columns(named), "open_change_obligations", key=f"{page}:obligations",
          first=("change_number", "state", "planned_effective", "signer_name"))  # fmt: skip
    export_buttons(obligations, f"{page}-obligations", filters, scope,
                   dataset="open_change_obligations")  # fmt: skip


def decision_panel(
    scope: Scope, kinds: tuple[str, ...], page: str, signed: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Render the decisions on records of `kinds` (what awaits the sponsor, the signing form,
    the signatures given: `signed`, read here when not given) on `page`; returns the signed
    decisions shown (for the export)."""
    principal = current_principal()
    our = voice()
    subjects = subjects_of.subjects(scope, kinds)
    if signed is None:
        signed = decisions.signed_for(scope, kinds)
    if not subjects and signed.is_empty():
        return signed
    acknowledging = set(kinds) <= set(subjects_of.EVENT_KINDS)
    st.subheader(f"{our.Your} {'acknowledgements' if acknowledging else 'decisions'}")
    if done := st.session_state.pop(_SIGNED, None):
        st.success(f"Signed and recorded. {done}", icon=":material/verified:")
    may_sign = decisions.may_sign(principal) and principal.sponsor_id == scope.sponsor_id
    if principal.role == "sponsor_qa" and not may_sign and subjects:
        st.info(
            "You can read these records. Signing a decision needs the permission to sign for "
            "your company, which the CMO's quality staff grant.",
            icon=":material/lock:",
        )
    in_force = {
        (row["record_type"], row["record_id"]): row
        for row in signed.iter_rows(named=True)
    }  # fmt: skip
    shown_before = st.session_state.get(_SHOWN, {})
    shown_now: dict[str, tuple[str, str | None]] = {}
    for subject in subjects:
        current = in_force.get((subject.record_type, subject.record_id))
        record = f"{subject.record_type}:{subject.record_id}"
        with st.container(border=True):
            _subject_state(subject, current, our.your)
            if may_sign:
                shown_now[record] = (
                    subject.content_hash,
                    current["decision_id"] if current else None,
                )
                _signing_form(scope, subject, current, shown_before.get(record))
    st.session_state[_SHOWN] = shown_now
    if not signed.is_empty():
        st.markdown("**Signed in the portal**")
        table(signed, "decisions", key=f"{page}:decisions",
              first=("record", "meaning", "signer_name", "signed_at_utc", "qms_recorded_at",
                     "reason"))  # fmt: skip
    return signed


def _subject_state(subject: subjects_of.Subject, current: dict | None, your: str) -> None:
    kind = subjects_of.RECORD_TYPE_WORDS[subject.record_type]
    st.markdown(f"**{_plain(subject.label)}** · {kind}")
    if current is None:
        due = f", decide before {subject.deadline:%d %b %Y}" if subject.deadline else ""
        what = "prior approval" if subject.record_type == "change_approval" else "acknowledgement"
        st.markdown(f":orange-badge[:material/pending_actions: Awaits {your} {what}{due}]")
        return
    recorded = current["qms_recorded_at"]
    if subject.record_type in subjects_of.EVENT_KINDS:  # the QMS keeps no receipt of these
        qms = "The CMO receives it with the portal's decisions."
    elif recorded is not None:
        qms = f"Recorded in the CMO's QMS at {recorded:%Y-%m-%d %H:%M}."
    else:
        qms = "Not yet recorded in the CMO's QMS: the nightly job shows when it is."
    box = st.error if current["meaning"] == "REJECTED" else st.success
    box(f"{current['signature']} {qms}", icon=":material/signature:")


def _plain(text: str) -> str:
    """Free text shown as typed, never as Markdown."""
    return "".join(f"\\{ch}" if ch in "\\`*_[]<>|~$" else ch for ch in text)


def _signing_form(
    scope: Scope,
    subject: subjects_of.Subject,
    current: dict | None,
    shown: tuple[str, str | None] | None,
) -> None:
    """The record as shown and signed, the meaning, and the password again (21 CFR 11.200)."""
    meanings = [m for m in subject.meanings if not current or m != current["meaning"]]
    if not meanings:  # an acknowledgement given stays given: nothing to replace it with
        return
    title = "Review and sign" if current is None else "Replace this decision"
    urgent = current is None and subject.record_type == subjects_of.CHANGE_APPROVAL
    with st.expander(title, expanded=urgent):
        # What is signed, as the signer reads it (its hash goes into the signature).
        st.markdown(
            "\n".join(f"- **{what}:** {_plain(details)}" for what, details in subject.shown)
        )
        form_key = f"sign:{subject.record_id}:{current['decision_id'] if current else 'first'}"
        with st.form(form_key, clear_on_submit=True):
            meaning = st.radio(
                "Your decision", meanings, format_func=subjects_of.MEANING_WORDS.get,
                horizontal=True, key=f"{form_key}:meaning",
            )  # fmt: skip
            reason = st.text_area(
                "Reason" + (" (required to reject)" if "REJECTED" in meanings else ""),
                key=f"{form_key}:reason", height=68,
            )  # fmt: skip
            st.caption(
                "Your electronic signature is the legally binding equivalent of your "
                "handwritten signature (21 CFR 11.100). Enter your username and password to "
                "sign what is shown above; the signature records your name, the time and the "
                "meaning you chose."
            )
            left, right = st.columns(2)
            typed = left.text_input("Username", key=f"{form_key}:username",
                                    autocomplete="off")  # fmt: skip
            password = right.text_input("Password", type="password",
                                        key=f"{form_key}:password", autocomplete="off")  # fmt: skip
            submitted = st.form_submit_button("Sign", type="primary")
        if not submitted:
            return
        # What this browser was shown on the run before the click: the hash and the decision
        # it would replace. A submit without that (a forged rerun) signs nothing.
        shown_hash, replaces = shown if shown else ("", None)
        try:
            decision = decisions.sign(
                current_principal(), scope, subject.record_type, subject.record_id, meaning,
                typed_username=typed, password=password, shown_hash=shown_hash,
                zone=st.context.timezone, reason=reason, supersedes=replaces,
            )  # fmt: skip
        except decisions.SignatureRefused as refused:
            if refused.locked:
                session.request_sign_out(str(refused))
                st.rerun()
            st.error(str(refused), icon=":material/block:")
            return
        st.session_state[_SIGNED] = decision.manifestation()
        st.rerun()
