"""Technology-transfer projects of one sponsor: milestones planned vs actual.

A project is in view when its contract was signed by the end of the period and it was still
running in it (not completed before the start), for a chosen product.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from warehouse import clock
from warehouse.filters import Filters
from warehouse.scope import Scope

# DOMAIN.md seed claim: 6–10 weeks from contract to live engineering batch on a good platform.
ENGINEERING_BATCH_BENCHMARK_WEEKS = (6, 10)

PROJECTS_SQL = """
WITH progress AS (
    SELECT
        project_id,
        arg_max(milestone, seq) FILTER (WHERE actual_at IS NOT NULL) AS current_phase,
        arg_min(milestone, seq) FILTER (WHERE actual_at IS NULL) AS next_milestone,
        arg_min(planned_at, seq) FILTER (WHERE actual_at IS NULL) AS next_planned,
        max(planned_at) FILTER (WHERE milestone = 'ENGINEERING_BATCH') AS engineering_planned,
        max(actual_at) AS last_actual,
        count(*) FILTER (WHERE actual_at IS NULL AND planned_at < $today::DATE)
            AS milestones_late
    FROM tt_milestone
    GROUP BY project_id
)
SELECT
    t.project_id,
    p.name AS product,
    p.modality,
    t.contract_signed_at,
    t.status,
    coalesce(g.current_phase, 'NOT_STARTED') AS current_phase,
    g.next_milestone,
    g.next_planned,
    coalesce(g.milestones_late, 0) AS milestones_late,
    date_diff('day', t.contract_signed_at, g.engineering_planned) / 7.0
        AS planned_weeks_to_engineering_batch,
    t.weeks_to_engineering_batch
FROM tech_transfer AS t
JOIN product AS p USING (product_id)
LEFT JOIN progress AS g USING (project_id)
WHERE (len($products::VARCHAR[]) = 0 OR list_contains($products::VARCHAR[], t.product_id))
  AND t.contract_signed_at <= $end
  AND (t.status <> 'COMPLETED' OR coalesce(g.last_actual, t.contract_signed_at) >= $start)
ORDER BY t.contract_signed_at DESC, t.project_id
"""


def projects(scope: Scope, filters: Filters, today: date | None = None) -> pl.DataFrame:
    """This sponsor's transfer projects in view, with phase and weeks to engineering batch."""
    params = {**filters.params(), "today": today or clock.today()}
    return scope.frame("tech transfer projects", PROJECTS_SQL, params)


MILESTONES_SQL = """
SELECT
    m.project_id,
    p.name AS product,
    m.seq,
    m.milestone,
    coalesce(lag(m.planned_at) OVER w, t.contract_signed_at) AS planned_start,
    m.planned_at,
    CASE WHEN m.actual_at IS NOT NULL
         THEN coalesce(lag(m.actual_at) OVER w, t.contract_signed_at) END AS actual_start,
    m.actual_at,
    CASE WHEN m.actual_at IS NOT NULL THEN date_diff('day', m.planned_at, m.actual_at)
         WHEN m.planned_at < $today::DATE THEN date_diff('day', m.planned_at, $today::DATE)
         END AS slip_days
FROM tt_milestone AS m
JOIN tech_transfer AS t USING (project_id)
JOIN product AS p ON p.product_id = t.product_id
WHERE list_contains($projects::VARCHAR[], m.project_id)
WINDOW w AS (PARTITION BY m.project_id ORDER BY m.seq)
ORDER BY m.project_id, m.seq
"""


def milestones(scope: Scope, project_ids: list[str], today: date | None = None) -> pl.DataFrame:
    """Milestones of the given projects with planned and actual spans and slip in days."""
    params = {"projects": project_ids, "today": today or clock.today()}
    return scope.frame("tech transfer milestones", MILESTONES_SQL, params)


def timeline(milestones_frame: pl.DataFrame) -> pl.DataFrame:
    """Long form for a Gantt chart: one planned and (when reached) one actual span each."""
    planned = milestones_frame.select(
        "project_id", "seq", "milestone", pl.lit("planned").alias("track"),
        pl.col("planned_start").alias("start"), pl.col("planned_at").alias("finish"),
    )  # fmt: skip
    actual = milestones_frame.filter(pl.col("actual_at").is_not_null()).select(
        "project_id", "seq", "milestone", pl.lit("actual").alias("track"),
        pl.col("actual_start").alias("start"), pl.col("actual_at").alias("finish"),
    )  # fmt: skip
    return pl.concat([planned, actual]).sort(
        "project_id", "seq", "track", descending=[False, False, True]
    )


@dataclass(frozen=True)
class TechTransferPage:
    """Everything the tech transfer page shows before a project is picked, from one call."""

    projects: pl.DataFrame  # dataset "tech_transfer_projects", with within_benchmark
    project_ids: list[str]  # the milestones' project picker, in the table's order
    active: int
    milestones_late: int  # measure "milestones_late"
    weeks_chart: pl.DataFrame  # project_id, product, weeks, basis (actual or planned)


def page_model(scope: Scope, filters: Filters, today: date) -> TechTransferPage:
    """The tech transfer page's model: projects in view against the engineering-batch
    benchmark, active and late counts, weeks to engineering batch (actual, else planned)."""
    actual = pl.col("weeks_to_engineering_batch")
    high = ENGINEERING_BATCH_BENCHMARK_WEEKS[1]
    found = projects(scope, filters, today).with_columns((actual <= high).alias("within_benchmark"))
    weeks = found.select(
        "project_id",
        "product",
        pl.coalesce(actual, "planned_weeks_to_engineering_batch").alias("weeks"),
        pl.when(actual.is_null())
        .then(pl.lit("planned"))
        .otherwise(pl.lit("actual"))
        .alias("basis"),
    ).drop_nulls("weeks")
    return TechTransferPage(
        projects=found,
        project_ids=found["project_id"].to_list(),
        active=found.filter(pl.col("status") == "ACTIVE").height,
        milestones_late=int(found["milestones_late"].sum()),
        weeks_chart=weeks,
    )


@dataclass(frozen=True)
class ProjectMilestones:
    """The tech transfer page's milestones of the picked project."""

    milestones: pl.DataFrame  # dataset "tech_transfer_milestones"
    timeline: pl.DataFrame  # planned and actual spans, for a Gantt chart


def project_milestones(scope: Scope, project_id: str, today: date) -> ProjectMilestones:
    """One project's milestones with planned and actual spans, and their Gantt long form."""
    steps = milestones(scope, [project_id], today)
    return ProjectMilestones(milestones=steps, timeline=timeline(steps))
