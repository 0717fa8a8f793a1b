"""Tech transfer: this sponsor's projects, milestones planned vs actual, weeks to engineering."""

import plotly.express as px
import plotly.graph_objects as go
import polars as pl
import streamlit as st

from portal.context import sponsor_scope
from portal.widgets import chart, dashboard_filters, empty_state, export_buttons, table
from warehouse import catalogue
from warehouse.queries.tech_transfer import (
    ENGINEERING_BATCH_BENCHMARK_WEEKS,
    milestones,
    projects,
    timeline,
)

LOW, HIGH = ENGINEERING_BATCH_BENCHMARK_WEEKS

st.title("Tech transfer")
scope = sponsor_scope()
filters = dashboard_filters(scope, "tech_transfer", default_days=3 * 365)
found = projects(scope, filters)

if found.is_empty():
    empty_state("Technology-transfer projects of this sponsor's products appear here with "
                "their milestones.")  # fmt: skip
    st.stop()

found = found.with_columns((pl.col("weeks_to_engineering_batch") <= HIGH).alias("within_benchmark"))
cols = st.columns(3)
cols[0].metric("Projects", found.height)
cols[1].metric("Active", found.filter(pl.col("status") == "ACTIVE").height)
late = catalogue.measure("milestones_late")
cols[2].metric(late.name, int(found["milestones_late"].sum()), help=late.help)

weeks = found.select(
    "project_id", "product",
    pl.coalesce("weeks_to_engineering_batch", "planned_weeks_to_engineering_batch").alias("weeks"),
    pl.when(pl.col("weeks_to_engineering_batch").is_null()).then(pl.lit("planned"))
    .otherwise(pl.lit("actual")).alias("basis"),
).drop_nulls("weeks")  # fmt: skip


def weeks_chart(data: pl.DataFrame) -> go.Figure:
    figure = px.bar(
        data,
        x="weeks",
        y="project_id",
        color="basis",
        orientation="h",
        hover_data=["product"],
        title="Weeks from contract to engineering batch",
    )
    figure.add_vrect(
        x0=LOW,
        x1=HIGH,
        fillcolor="green",
        opacity=0.15,
        line_width=0,
        annotation_text=f"{LOW}–{HIGH} week benchmark (good platform)",
    )
    return figure  # fmt: skip


if not weeks.is_empty():
    chart(scope, "tech_transfer:weeks", weeks, weeks_chart, dataset="tech_transfer_projects",
          labels={"weeks": "Weeks", "basis": ""})  # fmt: skip

table(found, "tech_transfer_projects")
export_buttons(found, "tech_transfer", filters, scope, dataset="tech_transfer_projects")

st.header("Milestones")
project = st.selectbox("Project", found["project_id"].to_list(), key="tech_transfer:project")
steps = milestones(scope, [project])


def milestones_chart(data: pl.DataFrame) -> go.Figure:
    figure = px.timeline(
        data,
        x_start="start",
        x_end="finish",
        y="milestone",
        color="track",
        title=f"{project}: milestones planned vs actual",
    )
    figure.update_layout(barmode="group")
    return figure.update_yaxes(autorange="reversed")  # fmt: skip


chart(scope, "tech_transfer:milestones", timeline(steps), milestones_chart, extra=project,
      dataset="tech_transfer_milestones", labels={"track": "", "start": "Start",
                                                  "finish": "Finish"})  # fmt: skip
table(steps, "tech_transfer_milestones")
export_buttons(
    steps, "tech_transfer-milestones", filters, scope, dataset="tech_transfer_milestones"
)
