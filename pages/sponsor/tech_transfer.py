"""Tech transfer: this sponsor's projects, milestones planned vs actual, weeks to engineering."""

import plotly.express as px
import plotly.graph_objects as go
import polars as pl
import streamlit as st

from portal.context import sponsor_scope
from portal.widgets import chart, dashboard_filters, empty_state, export_buttons, table
from warehouse import catalogue, clock
from warehouse.queries import tech_transfer

LOW, HIGH = tech_transfer.ENGINEERING_BATCH_BENCHMARK_WEEKS

st.title("Tech transfer")
scope = sponsor_scope()
filters = dashboard_filters(scope, "tech_transfer", default_days=3 * 365)
today = clock.today()
model = tech_transfer.page_model(scope, filters, today)

if model.projects.is_empty():
    empty_state("Technology-transfer projects of this sponsor's products appear here with "
                "their milestones.")  # fmt: skip
    st.stop()

cols = st.columns(3)
cols[0].metric("Projects", model.projects.height)
cols[1].metric("Active", model.active)
late = catalogue.measure("milestones_late")
cols[2].metric(late.name, model.milestones_late, help=late.help)


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


if not model.weeks_chart.is_empty():
    chart(scope, "tech_transfer:weeks", model.weeks_chart, weeks_chart,
          dataset="tech_transfer_projects", labels={"weeks": "Weeks", "basis": ""})  # fmt: skip

table(model.projects, "tech_transfer_projects")
export_buttons(model.projects, "tech_transfer", filters, scope, dataset="tech_transfer_projects")

st.header("Milestones")
project = st.selectbox("Project", model.project_ids, key="tech_transfer:project")
# The picked project's milestones: the page's one call beyond its model, as the pick decides it.
picked = tech_transfer.project_milestones(scope, project, today)


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


chart(scope, "tech_transfer:milestones", picked.timeline, milestones_chart, extra=project,
      dataset="tech_transfer_milestones", labels={"track": "", "start": "Start",
                                                  "finish": "Finish"})  # fmt: skip
table(picked.milestones, "tech_transfer_milestones")
export_buttons(
    picked.milestones,
    "tech_transfer-milestones",
    filters,
    scope,
    dataset="tech_transfer_milestones",
)
