"""Management cockpit: the KPI inputs of a scope, and every KPI for the site and per sponsor.

The inputs are whole published tables (the KPIs in warehouse.kpis apply the period), read the
same way from a sponsor scope or a CMO scope. In a CMO scope `sponsor_id` is the Hive
partition: fanned-out records (deviation, CAPA, effectiveness check) have one copy per sponsor
they touch, plus the reserved SITE partition for those that touch none. `for_sponsor` keeps
one partition; `for_site` keeps every record once. Both feed the same KPI functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from datetime import date, timedelta

import polars as pl

from warehouse import catalogue, kpis
from warehouse.catalogue import Target
from warehouse.contract import SITE_PARTITION
from warehouse.queries.compliance import NOTIFIABLE_EVENTS_SQL
from warehouse.scope import Scope

P = "sponsor_id"
SITE_LABEL = "Site"  # the whole site's column beside the sponsors (ids are upper case)

INPUT_SQL = {
    "batches": """
        SELECT batch_id, sponsor_id, product_id, status, mfg_start, mfg_end, cmo_decision,
               cmo_decided_at, sponsor_decision, sponsor_decided_at, cycle_time_days, reworked,
               units_distributed
        FROM batch""",
    "deviations": """
        SELECT deviation_id, sponsor_id, classification, status, awareness_at, original_due,
               current_due, closed_at, root_cause_category, recurrence_of, is_recurrence
        FROM deviation""",
    "deviation_links": """
        SELECT DISTINCT l.sponsor_id, l.batch_id, l.deviation_id, d.status
        FROM deviation_link AS l
        JOIN deviation AS d ON d.deviation_id = l.deviation_id AND d.sponsor_id = l.sponsor_id
        WHERE l.batch_id IS NOT NULL""",
    "oos": """
        SELECT o.oos_id, o.sponsor_id, o.batch_id, t.test_type, o.outcome, o.opened_at,
               o.closed_at
        FROM oos_investigation AS o
        LEFT JOIN test_result AS t ON t.test_id = o.test_id AND t.sponsor_id = o.sponsor_id""",
    # One row per batch, test type and day: enough for "batches tested in the period".
    "tests": """
        SELECT DISTINCT sponsor_id, batch_id, test_type, tested_at::DATE AS tested_at
        FROM test_result""",
    "complaints": """
        SELECT complaint_id, sponsor_id, product_id, received_at, is_critical, confirmed
        FROM complaint""",
    "capas": """
        SELECT capa_id, sponsor_id, status, opened_at, original_due, current_due, closed_at
        FROM capa""",
    "capa_checks": """
        SELECT check_id, capa_id, sponsor_id, checked_at, result FROM capa_effectiveness""",
    "reviews": """
        SELECT review_id, sponsor_id, product_id, original_due, completed_at
        FROM product_review""",
    "impacts": """
        SELECT i.impact_id, i.change_id, i.sponsor_id, i.obligation, i.decision, i.decided_at,
               c.status AS change_status, c.actual_effective
        FROM change_impact AS i
        JOIN change_control AS c ON c.change_id = i.change_id AND c.sponsor_id = i.sponsor_id""",
    # Entries counted per day (kpis.entry_days): the late-entry rate needs no more.
    "events": kpis.ENTRY_DAYS_SQL,
}

# Fanned-out inputs and the key that names one record across its per-sponsor copies.
FANNED_KEYS = {"deviations": "deviation_id", "capas": "capa_id", "capa_checks": "check_id"}


@dataclass(frozen=True)
class KpiInputs:
    """Every frame the KPIs read, each with the partition in `sponsor_id`."""

    batches: pl.DataFrame
    deviations: pl.DataFrame
    deviation_links: pl.DataFrame
    oos: pl.DataFrame
    tests: pl.DataFrame
    complaints: pl.DataFrame
    capas: pl.DataFrame
    capa_checks: pl.DataFrame
    reviews: pl.DataFrame
    impacts: pl.DataFrame
    events: pl.DataFrame  # entries counted per day and partition (kpis.entry_days)
    notifications: pl.DataFrame

    def for_sponsor(self, sponsor_id: str) -> KpiInputs:
        """One sponsor's records: its partition of every input."""
        return replace(
            self,
            **{f.name: self._frame(f.name).filter(pl.col(P) == sponsor_id) for f in fields(self)},
        )

    def for_site(self) -> KpiInputs:
        """The whole site: fanned-out records once each (SITE rows included). Any copy will do:
        is_recurrence is the same on each, whichever copy hides recurrence_of."""
        site = {
            name: self._frame(name).unique(key, keep="first", maintain_order=True)
            for name, key in FANNED_KEYS.items()
        }
        return replace(self, **site)

    def _frame(self, name: str) -> pl.DataFrame:
        return getattr(self, name)


def kpi_inputs(scope: Scope) -> KpiInputs:
    """The KPI inputs of a scope (a sponsor's or the CMO's), whole history."""
    frames = {name: scope.frame(f"kpi input {name}", sql) for name, sql in INPUT_SQL.items()}
    frames["notifications"] = scope.frame(
        "kpi input notifications", NOTIFIABLE_EVENTS_SQL, {"products": []}
    )
    return KpiInputs(**frames)


def site_sponsors(inputs: KpiInputs) -> list[str]:
    """Sponsors with records in a CMO scope's inputs (never the reserved SITE partition)."""
    ids = set(inputs.batches[P]) | set(inputs.deviations[P]) | set(inputs.impacts[P])
    return sorted(ids - {SITE_PARTITION})


# The cockpit's KPIs in display order.
COCKPIT_KPIS = (
    "lot_acceptance_rate_fda", "lot_acceptance_rate_ispe", "right_first_time", "deviation_rate",
    "recurring_deviation_rate", "deviation_on_time_closure", "invalidated_oos_rate",
    "confirmed_oos_rate", "complaint_rate", "capa_on_time_closure_original",
    "capa_on_time_closure_current", "overdue_capas",
    "capa_effectiveness_rate", "apr_on_time", "disposition_cycle_time",
    "prior_approval_compliance", "late_entry_rate", "notification_timeliness",
    "open_deviations", "pending_change_approvals",
)  # fmt: skip


_Compute = Callable[[KpiInputs, date, date, date, float], kpis.KpiResult]
# How each cockpit KPI is computed from the inputs (period start, end, today, threshold).
_COMPUTE: dict[str, _Compute] = {
    "lot_acceptance_rate_fda": lambda i, s, e, t, m: kpis.lot_acceptance_rate_fda(
        i.batches, s, e, min_completeness=m),
    "lot_acceptance_rate_ispe": lambda i, s, e, t, m: kpis.lot_acceptance_rate_ispe(
        i.batches, s, e, min_completeness=m),
    "right_first_time": lambda i, s, e, t, m: kpis.right_first_time(
        i.batches, i.deviation_links, i.oos, s, e, min_completeness=m),
    "deviation_rate": lambda i, s, e, t, m: kpis.deviation_rate(
        i.deviations, i.batches, s, e, min_completeness=m),
    "recurring_deviation_rate": lambda i, s, e, t, m: kpis.recurring_deviation_rate(
        i.deviations, s, e, min_completeness=m),
    "deviation_on_time_closure": lambda i, s, e, t, m: kpis.deviation_on_time_closure(
        i.deviations, s, e, min_completeness=m),
    "invalidated_oos_rate": lambda i, s, e, t, m: kpis.invalidated_oos_rate(
        i.oos, s, e, min_completeness=m),
    "confirmed_oos_rate": lambda i, s, e, t, m: kpis.confirmed_oos_rate(
        i.oos, i.tests, s, e, min_completeness=m),
    "complaint_rate": lambda i, s, e, t, m: kpis.complaint_rate(
        i.complaints, i.batches, s, e, min_completeness=m),
    "capa_on_time_closure_original": lambda i, s, e, t, m: kpis.capa_on_time_closure(
        i.capas, s, e, t, due="original_due", min_completeness=m),
    "capa_on_time_closure_current": lambda i, s, e, t, m: kpis.capa_on_time_closure(
        i.capas, s, e, t, due="current_due", min_completeness=m),
    "overdue_capas": lambda i, s, e, t, m: kpis.overdue_capas(i.capas, t),
    "capa_effectiveness_rate": lambda i, s, e, t, m: kpis.capa_effectiveness_rate(
        i.capa_checks, s, e, min_completeness=m),
    "apr_on_time": lambda i, s, e, t, m: kpis.apr_on_time(
        i.reviews, s, e, t, min_completeness=m),
    "disposition_cycle_time": lambda i, s, e, t, m: kpis.disposition_cycle_time(
        i.batches, s, e, min_completeness=m),
    "prior_approval_compliance": lambda i, s, e, t, m: kpis.prior_approval_compliance(
        i.impacts, s, e, min_completeness=m),
    "late_entry_rate": lambda i, s, e, t, m: kpis.late_entry_rate(
        i.events, s, e, min_completeness=m),
    "notification_timeliness": lambda i, s, e, t, m: kpis.notification_timeliness(
        i.notifications, s, e, t, min_completeness=m),
    "open_deviations": lambda i, s, e, t, m: kpis.open_deviations(i.deviations),
    "pending_change_approvals": lambda i, s, e, t, m: kpis.pending_change_approvals(i.impacts),
}  # fmt: skip
# Measures of the current state: the period (and so the monthly trend) does not apply.
STATE_KPIS = ("overdue_capas", "open_deviations", "pending_change_approvals")


def compute_kpis(
    inputs: KpiInputs,
    start: date,
    end: date,
    today: date,
    *,
    min_completeness: float = kpis.COMPLETENESS_THRESHOLD,
    keys: tuple[str, ...] = COCKPIT_KPIS,
) -> dict[str, kpis.KpiResult]:
    """Cockpit KPIs over one population (pass inputs.for_site() or .for_sponsor(s))."""
    return {k: _COMPUTE[k](inputs, start, end, today, min_completeness) for k in keys}


def cockpit(
    inputs: KpiInputs,
    start: date,
    end: date,
    today: date,
    *,
    min_completeness: float = kpis.COMPLETENESS_THRESHOLD,
) -> dict[str, dict[str, kpis.KpiResult]]:
    """KPIs per population: the whole site (SITE_LABEL) first, then each sponsor."""
    populations = _populations(inputs)
    return {
        name: compute_kpis(frames, start, end, today, min_completeness=min_completeness)
        for name, frames in populations.items()
    }


def _populations(inputs: KpiInputs) -> dict[str, KpiInputs]:
    return {SITE_LABEL: inputs.for_site()} | {
        s: inputs.for_sponsor(s) for s in site_sponsors(inputs)
    }


def months(start: date, end: date) -> list[tuple[date, date]]:
    """The calendar months overlapping the period, each clipped to it."""
    spans, first = [], start.replace(day=1)
    while first <= end:
        following = _next_month(first)
        spans.append((max(first, start), min(_day_before(following), end)))
        first = following
    return spans


def _next_month(first: date) -> date:
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


def _day_before(day: date) -> date:
    return date.fromordinal(day.toordinal() - 1)


def monthly_trend(
    inputs: KpiInputs,
    key: str,
    start: date,
    end: date,
    today: date,
    *,
    min_completeness: float = kpis.COMPLETENESS_THRESHOLD,
) -> pl.DataFrame:
    """One KPI per month of the period for the site and each sponsor: month, population,
    value (null where the month has no data or is not reliable), completeness."""
    rows = []
    for name, frames in _populations(inputs).items():
        for first, last in months(start, end):
            [result] = compute_kpis(
                frames, first, last, today, min_completeness=min_completeness, keys=(key,)
            ).values()
            rows.append(
                {
                    "month": first.replace(day=1),
                    "population": name,
                    "value": result.value if result.reliable else None,
                    "completeness": result.completeness,
                }
            )
    return pl.DataFrame(
        rows,
        schema={"month": pl.Date, "population": pl.String, "value": pl.Float64,
                "completeness": pl.Float64},
    )  # fmt: skip


# The health table's measures, in the catalogue's column order (dataset "sponsor_health").
HEALTH_KEYS: tuple[str, ...] = tuple(
    col.name for col in catalogue.dataset("sponsor_health").columns[2:-1]
)
# Conventions, not regulation (DOMAIN.md): the catalogue's targets; the cockpit lets the user
# change each one.
DEFAULT_TARGETS: dict[str, Target] = {key: catalogue.measure(key).target for key in HEALTH_KEYS}


def health_measures(results: dict[str, kpis.KpiResult]) -> dict[str, tuple[float | None, str]]:
    """A population's health-table cells: (number compared with the target or None when
    unreliable or empty, text shown) per HEALTH_KEYS key."""

    def cell(result: kpis.KpiResult, value: float | None) -> tuple[float | None, str]:
        if result.caveat or value is None:
            return None, result.display() if result.caveat else "—"
        return value, kpis.format_value(value, result.definition.unit)

    deviations = results["open_deviations"]
    cycle = results["disposition_cycle_time"]
    cells = {
        key: cell(results[key], results[key].value)
        for key in ("lot_acceptance_rate_fda", "lot_acceptance_rate_ispe", "right_first_time",
                    "overdue_capas", "notification_timeliness", "disposition_cycle_time")
    }  # fmt: skip
    for severity in ("CRITICAL", "MAJOR", "MINOR"):
        count = deviations.extra[severity]
        cells[f"open_{severity.lower()}_deviations"] = (count, f"{count:g}")
    pending = results["pending_change_approvals"].value
    cells["pending_change_approvals"] = (pending, f"{pending:g}")
    cells["disposition_cycle_time_p90"] = cell(cycle, cycle.extra.get("p90"))
    return {key: cells[key] for key in HEALTH_KEYS}


# The health measures whose data completeness a row reports (the counts are always complete).
COMPLETENESS_KEYS = ("lot_acceptance_rate_fda", "lot_acceptance_rate_ispe", "right_first_time",
                     "notification_timeliness", "disposition_cycle_time")  # fmt: skip


def health_table(
    per_population: dict[str, dict[str, kpis.KpiResult]], targets: dict[str, Target]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One row per sponsor (dataset "sponsor_health": sponsor, lots started, then each health
    measure as text) and, beside it, each cell's state against its target: "met", "missed",
    "unreliable" or "none"."""
    rows, states = [], []
    for sponsor, results in per_population.items():
        if sponsor == SITE_LABEL:
            continue
        cells = health_measures(results)
        lots = results["lot_acceptance_rate_fda"].extra["lots_started"]
        texts = {key: text for key, (_, text) in cells.items()}
        marks = {key: _state(n, text, targets[key]) for key, (n, text) in cells.items()}
        complete = [results[k].completeness for k in COMPLETENESS_KEYS
                    if results[k].completeness is not None]  # fmt: skip
        least = kpis.percent(min(complete)) if complete else "—"
        rows.append({"sponsor_id": sponsor, "lots_started": f"{lots:g}"} | texts
                    | {"least_complete": least})  # fmt: skip
        states.append({"sponsor_id": "none", "lots_started": "none"} | marks
                      | {"least_complete": "none"})  # fmt: skip
    columns = ["sponsor_id", "lots_started", *HEALTH_KEYS, "least_complete"]
    return (
        pl.DataFrame(rows, schema=dict.fromkeys(columns, pl.String)),
        pl.DataFrame(states, schema=dict.fromkeys(columns, pl.String)),
    )


def health_glance(health: pl.DataFrame, states: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Dataset "sponsor_health_glance": each sponsor's health row in four facts (lots started,
    targets met, the measures that need attention by name, least complete) that fit a screen;
    and the state of its "needs attention" cell: "missed" when a target is missed,
    "unreliable" when a measure is only not reliable, else "met"."""
    rows, marks = [], []
    for row, state in zip(health.iter_rows(named=True), states.iter_rows(named=True),
                          strict=True):  # fmt: skip
        missed = [catalogue.measure(k).name for k in HEALTH_KEYS if state[k] == "missed"]
        unreliable = [catalogue.measure(k).name for k in HEALTH_KEYS if state[k] == "unreliable"]
        judged = [k for k in HEALTH_KEYS if state[k] in ("met", "missed")]
        met = sum(state[k] == "met" for k in judged)
        said = ", ".join(missed)
        if unreliable:
            said += ("; " if said else "") + "not reliable: " + ", ".join(unreliable)
        rows.append({"sponsor_id": row["sponsor_id"], "lots_started": row["lots_started"],
                     "targets_met": f"{met} of {len(judged)}", "needs_attention": said or "—",
                     "least_complete": row["least_complete"]})  # fmt: skip
        worst = "missed" if missed else "unreliable" if unreliable else "met"
        marks.append({"sponsor_id": "none", "lots_started": "none", "targets_met": "none",
                      "needs_attention": worst, "least_complete": "none"})  # fmt: skip
    columns = ["sponsor_id", "lots_started", "targets_met", "needs_attention", "least_complete"]
    return (
        pl.DataFrame(rows, schema=dict.fromkeys(columns, pl.String)),
        pl.DataFrame(marks, schema=dict.fromkeys(columns, pl.String)),
    )


def kpi_comparison(per_population: dict[str, dict[str, kpis.KpiResult]]) -> pl.DataFrame:
    """Dataset "kpi_comparison": one row per cockpit KPI and population (the site, then each
    sponsor), the value with its data completeness or why it is not reliable."""
    rows = []
    for key in in_domain_order(COCKPIT_KPIS):
        measure = catalogue.measure(key)
        for population, results in per_population.items():
            result = results[key]
            if result.caveat or result.completeness is None:
                shown = result.caveat or "no data"
            else:
                shown = f"{result.display()} · {kpis.percent(result.completeness)} complete"
            rows.append({"kpi": kpi_label(key), "population": population,
                         "result": shown, "formula": f"{measure.formula} Source: "
                         f"{measure.source}."})  # fmt: skip
    return pl.DataFrame(
        rows, schema=dict.fromkeys(("kpi", "population", "result", "formula"), pl.String)
    )


def _state(number: float | None, text: str, target: Target) -> str:
    if number is not None:
        return "met" if target.met(number) else "missed"
    return "unreliable" if text.startswith("not reliable") else "none"


def in_domain_order(keys: tuple[str, ...]) -> list[str]:
    """KPIs by their DOMAIN.md number (the counts without one last), as the domain reads."""
    return sorted(keys, key=lambda k: (catalogue.measure(k).number or 99, keys.index(k)))


def kpi_label(key: str) -> str:
    measure = catalogue.measure(key)
    return f"{measure.number}. {measure.name}" if measure.number else measure.name


def side_by_side(
    per_population: dict[str, dict[str, kpis.KpiResult]], show: str = "value"
) -> pl.DataFrame:
    """One row per cockpit KPI in DOMAIN.md's order ("kpi"), one column per population (the
    site first, then each sponsor): its value (or why it is not reliable) when `show` is
    "value", its data completeness when "completeness"."""

    def cell(result: kpis.KpiResult) -> str:
        if show == "completeness":
            return "—" if result.completeness is None else kpis.percent(result.completeness)
        if result.caveat or result.completeness is None:
            return result.caveat or "no data"
        return result.display()

    rows = [
        {"kpi": kpi_label(key)} | {p: cell(results[key]) for p, results in per_population.items()}
        for key in in_domain_order(COCKPIT_KPIS)
    ]
    return pl.DataFrame(rows, schema=dict.fromkeys(["kpi", *per_population], pl.String))


@dataclass(frozen=True)
class CockpitPage:
    """Everything the cockpit shows for one period, threshold and set of targets."""

    inputs: KpiInputs  # every sponsor's KPI inputs (for the monthly trend of a picked KPI)
    populations: list[str]  # SITE_LABEL, then each sponsor
    health: pl.DataFrame  # dataset "sponsor_health"
    health_states: pl.DataFrame  # each health cell: met, missed, unreliable or none
    glance: pl.DataFrame  # dataset "sponsor_health_glance"
    glance_states: pl.DataFrame  # its cells' states, the same way
    comparison: pl.DataFrame  # dataset "kpi_comparison" (long)
    values: pl.DataFrame  # each KPI's value, one column per population (side_by_side)
    completeness: pl.DataFrame  # each KPI's data completeness, the same way
    sponsor_names: dict[str, str]  # sponsor id -> its name


# The page's defaults: the year to today, reliable from 80 % completeness, and the first KPI
# of the trend (portal.warm computes that view before anyone opens the page).
DEFAULT_DAYS = 365
DEFAULT_THRESHOLD = 80


def trended_kpis() -> list[str]:
    """The KPIs the trend offers, the default first."""
    return [k for k in COCKPIT_KPIS if k not in STATE_KPIS]


def default_period(today: date) -> tuple[date, date]:
    return today - timedelta(days=DEFAULT_DAYS), today


def warm_default_view(scope: Scope, today: date) -> None:
    """Put the page's default view (default_period, DEFAULT_THRESHOLD, the first trended KPI)
    into the scope's memo, as the page's first run would."""
    start, end = default_period(today)
    model = page_model(scope, start, end, today, DEFAULT_THRESHOLD, DEFAULT_TARGETS)
    trend_model(scope, model.inputs, trended_kpis()[0], start, end, today, DEFAULT_THRESHOLD)


def page_model(
    scope: Scope,
    start: date,
    end: date,
    today: date,
    threshold: int,
    targets: dict[str, Target],
) -> CockpitPage:
    """The cockpit's model, from the CMO scope's memo where it pays: the inputs once per
    snapshot (a session cache unpickled every sponsor's records on each rerun: 0.8 s on
    `large`), the KPIs of every population once per period and threshold (~40 ms a run)."""
    inputs = scope.memo(("cockpit-inputs",), lambda: kpi_inputs(scope))
    results = scope.memo(
        ("cockpit", start, end, today, threshold),
        lambda: cockpit(inputs, start, end, today, min_completeness=threshold / 100),
    )
    health, states = health_table(results, targets)
    glance, glance_states = health_glance(health, states)
    comparison = kpi_comparison(results)
    return CockpitPage(
        inputs=inputs,
        populations=list(results),
        health=health,
        health_states=states,
        glance=glance,
        glance_states=glance_states,
        comparison=comparison,
        values=side_by_side(results, "value"),
        completeness=side_by_side(results, "completeness"),
        sponsor_names=sponsor_names(scope),  # Scope.frame remembers it per snapshot
    )


SPONSOR_NAMES_SQL = "SELECT DISTINCT sponsor_id, name FROM sponsor ORDER BY sponsor_id"


def sponsor_names(scope: Scope) -> dict[str, str]:
    """Each sponsor's name by id, from the sponsors' registry rows (a CMO scope reads all)."""
    names = scope.frame("sponsor names", SPONSOR_NAMES_SQL)
    return dict(zip(names["sponsor_id"], names["name"], strict=True))


def trend_model(
    scope: Scope, inputs: KpiInputs, key: str, start: date, end: date, today: date, threshold: int
) -> pl.DataFrame:
    """The picked KPI's monthly trend (dataset "kpi_trend"), rates in percent, kept in the
    scope's memo per KPI, period and threshold."""
    trend = scope.memo(
        ("cockpit-trend", key, start, end, today, threshold),
        lambda: monthly_trend(inputs, key, start, end, today, min_completeness=threshold / 100),
    )
    if catalogue.measure(key).unit == "rate":
        return trend.with_columns(pl.col("value") * 100)
    return trend
