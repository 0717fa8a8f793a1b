"""The BD demo tour's picks: which batch, change and shared vessel to show, chosen in one
sponsor's own confined scope each, so the tour demonstrates exactly what that sponsor sees.

The side-by-side of a shared vessel never opens a CMO scope: each side is computed from its
own sponsor scope, and the common (equipment, week) is found by intersecting what each side
can see on its own (equipment ids are site master data that both partitions carry).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import combinations

import polars as pl

from warehouse import catalogue
from warehouse.filters import Filters
from warehouse.queries import capa, compliance
from warehouse.queries.batch_record import batch_record, exception_table, review_by_exception
from warehouse.queries.change_control import change_impacts, change_type_words
from warehouse.queries.common import sponsor_name
from warehouse.scope import Scope

TOUR_BATCH_SQL = """
SELECT b.batch_id, b.batch_number, count(*) AS exceptions, max(e.performed_at) AS latest
FROM batch_event AS e
JOIN batch AS b USING (batch_id)
WHERE e.di_exception
GROUP BY ALL
ORDER BY latest DESC, b.batch_id
LIMIT 1
"""


def batch_with_exception(scope: Scope) -> str | None:
    """The sponsor's most recent batch whose record carries a data-integrity exception."""
    found = scope.frame("tour batch", TOUR_BATCH_SQL)
    return found["batch_id"][0] if found.height else None


def change_needing_approval(impacts: pl.DataFrame) -> pl.DataFrame:
    """From change_control.change_impacts: the prior-approval impacts awaiting this sponsor,
    or else its most recent prior-approval impact (one row, or none)."""
    prior = impacts.filter(pl.col("obligation") == "PRIOR_APPROVAL")
    awaiting = prior.filter(pl.col("awaiting_sponsor"))
    return (awaiting if awaiting.height else prior).head(1)


VESSEL_WEEKS_SQL = """
SELECT u.equipment_id, q.name AS equipment, q.equipment_type,
       date_trunc('week', u.started_at)::DATE AS week,
       bool_or(u.previous_occupant = 'ANOTHER_CLIENT') AS after_another_client
FROM equipment_usage AS u
JOIN (SELECT DISTINCT equipment_id, name, equipment_type FROM equipment) AS q USING (equipment_id)
GROUP BY ALL
"""

# Vessel-like equipment reads best in a demo: "the same tank" is what segregation is about.
VESSEL_TYPES = ("Vessel", "Bioreactor", "Blender", "Granulator", "Freeze dryer")


def shared_vessel_week(scope_a: Scope, scope_b: Scope) -> dict | None:
    """The latest (equipment, week) both sponsors used, preferring a vessel where each came
    right after another client; None when they never shared equipment in the same week."""
    weeks_a = scope_a.frame("vessel weeks", VESSEL_WEEKS_SQL)
    weeks_b = scope_b.frame("vessel weeks", VESSEL_WEEKS_SQL)
    both = weeks_a.join(
        weeks_b.select("equipment_id", "week", pl.col("after_another_client").alias("b_after")),
        on=["equipment_id", "week"],
    )
    if both.is_empty():
        return None
    ranked = both.with_columns(
        (pl.col("after_another_client") & pl.col("b_after")).alias("crossed"),
        pl.col("equipment_type").is_in(list(VESSEL_TYPES)).alias("vessel"),
    ).sort(["crossed", "vessel", "week", "equipment_id"], descending=[True, True, True, False])
    return ranked.select("equipment_id", "equipment", "week", "crossed").row(0, named=True)


def tour_pair(scopes: dict[str, Scope]) -> tuple[str, str]:
    """The sponsors the tour opens with: the first two (in the order given) that used one vessel
    in the same week, each right after another client, else the first two that shared any
    equipment in a week, else simply the first two. Each sponsor's weeks come from its own
    scope."""
    pairs = list(combinations(scopes, 2))
    shared = {pair: shared_vessel_week(scopes[pair[0]], scopes[pair[1]]) for pair in pairs}
    crossed = [pair for pair in pairs if shared[pair] and shared[pair]["crossed"]]
    return next(iter(crossed or [pair for pair in pairs if shared[pair]] or pairs))


VESSEL_VIEW_SQL = """
WITH own AS (
    SELECT u.usage_id, b.batch_number, p.name AS product, u.started_at, u.ended_at,
           CASE u.previous_occupant
               WHEN 'ANOTHER_CLIENT' THEN 'another client'
               WHEN 'SAME_SPONSOR' THEN 'own batch ' || coalesce(pb.batch_number, '?')
               ELSE 'none recorded'
           END AS previous_occupant,
           u.cleaning_verified_at, u.cleaning_result, u.previous_ended_at,
           lag(u.ended_at) OVER (ORDER BY u.started_at, u.usage_id) AS own_previous_end
    FROM equipment_usage AS u
    JOIN batch AS b ON b.batch_id = u.batch_id
    JOIN product AS p ON p.product_id = b.product_id
    LEFT JOIN batch AS pb ON pb.batch_id = u.previous_batch_id
    WHERE u.equipment_id = $equipment_id
)
SELECT * EXCLUDE (usage_id)
FROM own
WHERE started_at >= $week AND started_at < $week + INTERVAL 7 DAY
ORDER BY started_at, usage_id
"""
# Returned for the timeline only: when the use before each ended (whoever's it was) and when
# this sponsor's own previous use of the equipment ended.
TIMELINE_ONLY = ("previous_ended_at", "own_previous_end")


def vessel_uses(scope: Scope, equipment_id: str, week: date) -> pl.DataFrame:
    """This sponsor's own uses of one equipment in one week (dataset "vessel_week"), with the
    TIMELINE_ONLY columns."""
    params = {"equipment_id": equipment_id, "week": week}
    return scope.frame("vessel week", VESSEL_VIEW_SQL, params)


def vessel_week(scope: Scope, equipment_id: str, week: date) -> pl.DataFrame:
    """What this sponsor sees of one equipment in one week: its own uses, and whoever came
    before each only as "another client" unless it was its own batch."""
    return vessel_uses(scope, equipment_id, week).drop(TIMELINE_ONLY)


OWN_BATCH, ANOTHER_CLIENT = "Own batch", "Another client"
# Blue for the sponsor's own batches, grey for everyone else: neither needs attention.
TIMELINE_COLOURS = {OWN_BATCH: "#1f77b4", ANOTHER_CLIENT: "#9e9e9e"}
ANOTHER_CLIENT_SHOWN = timedelta(hours=12)  # how long before its end another's use is drawn
TIMELINE_SCHEMA = {
    "lane": pl.String, "block": pl.String, "label": pl.String, "start": pl.Datetime("us"),
    "end": pl.Datetime("us"), "detail": pl.String,
}  # fmt: skip


def _moment(value: datetime) -> str:
    return f"{value:%a %d %b %H:%M}"


def vessel_timeline(uses: pl.DataFrame, lane: str, week: date) -> pl.DataFrame:
    """One sponsor's week on one equipment as blocks: its own batches, by number, and every
    use by anyone else as "another client".

    Built from vessel_uses, i.e. from this sponsor's own rows only. The sponsor knows when
    another client's use ended, never who it was, what it made nor when it began: that block
    is drawn as the ANOTHER_CLIENT_SHOWN before it ended (from the sponsor's own previous use,
    if that ended later)."""
    week_start = datetime.combine(week, datetime.min.time())
    rows = []
    for use in uses.iter_rows(named=True):
        before, own_before = use["previous_ended_at"], use["own_previous_end"]
        if use["previous_occupant"] == "another client" and before is not None:
            start = max(before - ANOTHER_CLIENT_SHOWN, own_before or before - ANOTHER_CLIENT_SHOWN)
            rows.append((lane, ANOTHER_CLIENT, "another client", start, before,
                         f"Another client's use, ended {_moment(before)}<br>"
                         "Who, what and since when is not shown."))  # fmt: skip
        ended, cleaned = use["ended_at"], use["cleaning_verified_at"]
        detail = f"{use['batch_number']}: {use['product']}<br>{_moment(use['started_at'])} "
        detail += f"to {_moment(ended)}" if ended else "still in use"
        if cleaned is not None:
            result = "passed" if use["cleaning_result"] == "PASS" else "not passed"
            detail += f"<br>Cleaning before it verified {_moment(cleaned)}: {result}"
        rows.append((lane, OWN_BATCH, use["batch_number"], use["started_at"],
                     ended or week_start + timedelta(days=7), detail))  # fmt: skip
    return pl.DataFrame(rows, schema=TIMELINE_SCHEMA, orient="row")


# --- one model per tour step -------------------------------------------------------------------

NEEDS_REVIEW, AS_RECORDED = "Needs review", "No finding"


@dataclass(frozen=True)
class ExceptionStep:
    """Step 1: the sponsor's latest batch record with a data-integrity exception."""

    batch_number: str
    product: str
    status: str  # in words
    steps_recorded: int
    exceptions: pl.DataFrame  # dataset "batch_record_exceptions"
    steps: pl.DataFrame  # step, step_name, performed_at, state (NEEDS_REVIEW or AS_RECORDED), note

    @property
    def title(self) -> str:
        flagged = self.steps.filter(pl.col("state") == NEEDS_REVIEW).height
        return (f"Batch {self.batch_number}, step by step: {flagged} of {self.steps_recorded} "
                "recorded steps need review")  # fmt: skip


def exception_step(scope: Scope) -> ExceptionStep | None:
    """None when no batch record of the sponsor carries an exception."""
    batch_id = batch_with_exception(scope)
    if batch_id is None:
        return None
    record = batch_record(scope, batch_id)
    header = record.header.row(0, named=True)
    status = catalogue.dataset("batches").column("status").word(header["status"])
    exceptions = exception_table(review_by_exception(record))
    kind = catalogue.dataset("batch_record_exceptions").column("kind")
    # A step may carry several findings: its note names them all.
    notes = exceptions.group_by("record", maintain_order=True).agg(
        pl.col("kind").map_elements(kind.word, return_dtype=pl.String).str.join(", ").alias("note")
    )
    steps = (
        record.steps.select(pl.col("seq").alias("step"), "step_name", "performed_at", "event_id")
        .join(notes, left_on="event_id", right_on="record", how="left")
        .with_columns(
            pl.when(pl.col("note").is_null()).then(pl.lit(AS_RECORDED))
            .otherwise(pl.lit(NEEDS_REVIEW)).alias("state"),
            pl.col("note").fill_null(""),
        )
        .drop("event_id")
    )  # fmt: skip
    return ExceptionStep(
        batch_number=header["batch_number"],
        product=header["product"],
        status=status or "",
        steps_recorded=record.steps.height,
        exceptions=exceptions,
        steps=steps,
    )


@dataclass(frozen=True)
class CapaStep:
    """Step 2: open CAPAs by age, and the overdue ones."""

    aging_chart: pl.DataFrame  # capa.aging_chart
    overdue: pl.DataFrame  # dataset "capas", most overdue first

    @property
    def open_count(self) -> int:
        return int(self.aging_chart["capas"].sum())

    @property
    def sentences(self) -> list[str]:
        """One sentence per overdue CAPA, most overdue first."""
        said = []
        for row in self.overdue.iter_rows(named=True):
            days = row["days_overdue"]
            sentence = (f"{row['capa_number']} is {days} day{'s' if days != 1 else ''} past its "
                        f"due date of {row['current_due']}: {row['title']}.")  # fmt: skip
            if row["extension_count"]:
                sentence += (f" Its due date was extended {row['extension_count']} time(s) "
                             f"from {row['original_due']}.")  # fmt: skip
            said.append(sentence)
        return said


def capa_step(scope: Scope, period: Filters, today: date) -> CapaStep:
    found = capa.capas(scope, period, today)
    overdue = found.filter(pl.col("overdue").fill_null(False)).select(
        "capa_number", "title", "source_record", "status", "original_due", "current_due",
        "extension_count", "days_overdue",
    ).sort("days_overdue", descending=True)  # fmt: skip
    return CapaStep(aging_chart=capa.aging_chart(found, today), overdue=overdue)


@dataclass(frozen=True)
class ChangeStep:
    """Step 3: the prior-approval change awaiting the sponsor, or its latest one, as a card."""

    change_number: str
    title: str
    what: str  # the kind of change, and the product it touches, in words
    awaiting: bool
    obligation: str  # in words
    decision: str  # in words; "Pending" while undecided
    planned_effective: date | None
    days_left: int | None  # to the planned effective date; None once effective or decided
    effective: date | None  # when it went effective, if it has


def change_step(scope: Scope, period: Filters, today: date) -> ChangeStep | None:
    """None when no prior-approval change affects the sponsor in the period."""
    change = change_needing_approval(change_impacts(scope, period, today))
    if change.is_empty():
        return None
    row = change.row(0, named=True)
    declared = catalogue.dataset("change_controls")
    decision = declared.column("decision").word(row["decision"]) if row["decision"] else None
    what = f"A {change_type_words(row['change_type'])} change"
    what += f" to {row['product']}" if row["product"] else " across the site"
    return ChangeStep(
        change_number=row["change_number"],
        title=row["title"],
        what=what,
        awaiting=bool(row["awaiting_sponsor"]),
        obligation=declared.column("obligation").word(row["obligation"]) or "",
        decision=decision or "Pending",
        planned_effective=row["planned_effective"],
        days_left=row["days_to_planned"],
        effective=row["actual_effective"],
    )


KEPT, MISSED = "Kept", "Missed"
ALL_NOTIFICATIONS = "All notifications (KPI 16)"  # compliance.sponsor_compliance's measure


@dataclass(frozen=True)
class AuditStep:
    """Step 4: the sponsor's quality agreement, kept or broken, over the period."""

    shares: pl.DataFrame  # compliance.sponsor_compliance: measure, kept, counted, share per row
    breaches: pl.DataFrame  # dataset "compliance_breaches"
    clocks: pl.DataFrame  # dataset "agreed_clocks"
    obligations: pl.DataFrame  # dataset "agreed_obligations"

    @property
    def kept_chart(self) -> pl.DataFrame:
        """Per clock that counted anything: the share kept and missed (measure, outcome,
        share, records), the measures in the order of sponsor_compliance."""
        counted = self.shares.filter(pl.col("counted") > 0).with_columns(
            # A demo audience reads the measure, not DOMAIN.md's KPI number.
            pl.col("measure").str.replace(r" \(KPI \d+\)$", ""),
            (pl.col("counted") - pl.col("kept")).alias("missed"),
        )
        return pl.concat([
            counted.select("measure", pl.lit(outcome).alias("outcome"),
                           (pl.col(n) / pl.col("counted")).alias("share"),
                           pl.col(n).cast(pl.Int64).alias("records"))
            for outcome, n in ((KEPT, "kept"), (MISSED, "missed"))
        ])  # fmt: skip

    @property
    def notifications_on_time(self) -> str:
        """KPI 16 over every notifiable event, as shown (a share, or the KPI's caveat)."""
        return self.shares.filter(pl.col("measure") == ALL_NOTIFICATIONS)["shown"][0]

    @property
    def nothing_due(self) -> list[str]:
        """The clocks nothing was counted against in the period."""
        return self.shares.filter(pl.col("counted") == 0)["measure"].to_list()

    @property
    def sentences(self) -> list[str]:
        """One sentence per broken clock."""
        return [
            f"{row['record']}: {row['clock'][:1].upper()}{row['clock'][1:]}. Broken: "
            f"{row['broken_by']}."
            for row in self.breaches.iter_rows(named=True)
        ]


def audit_step(scope: Scope, period: Filters, today: date, now: datetime) -> AuditStep:
    events = compliance.notifiable_events(scope, period, today)
    changes = compliance.change_obligations(scope, period)
    terms = compliance.agreement_terms(scope)
    return AuditStep(
        shares=compliance.sponsor_compliance(events, changes, period.start, period.end, today),
        breaches=compliance.breaches(events, changes, now),
        clocks=compliance.agreed_clocks(terms),
        obligations=compliance.agreed_obligations(terms),
    )


@dataclass(frozen=True)
class VesselSide:
    """One sponsor's side of the shared vessel, read through its own scope only."""

    sponsor: str  # its name
    uses: pl.DataFrame  # dataset "vessel_week"
    timeline: pl.DataFrame  # vessel_timeline


@dataclass(frozen=True)
class VesselStep:
    """Step 5: one equipment in one week, as each of two sponsors sees it."""

    equipment: str
    week: date
    sides: tuple[VesselSide, ...]


def vessel_step(scope_a: Scope, scope_b: Scope) -> VesselStep | None:
    """None when the two sponsors never used the same equipment in the same week. Each side is
    read through its own sponsor's scope."""
    shared = shared_vessel_week(scope_a, scope_b)
    if shared is None:
        return None
    sides = []
    for scope in (scope_a, scope_b):
        uses = vessel_uses(scope, shared["equipment_id"], shared["week"])
        timeline = vessel_timeline(uses, shared["equipment"], shared["week"])
        sides.append(VesselSide(sponsor_name(scope), uses.drop(TIMELINE_ONLY), timeline))
    return VesselStep(shared["equipment"], shared["week"], tuple(sides))
