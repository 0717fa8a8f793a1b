"""Management cockpit: the site's KPIs beside each sponsor's, monthly trends, sponsor health."""

import plotly.express as px
import polars as pl
import streamlit as st
from streamlit.errors import StreamlitAPIException

from portal.context import site_scope
from portal.decision_panel import obligations_section
from portal.widgets import chart, export_buttons
from warehouse import catalogue, clock
from warehouse.filters import Filters
from warehouse.queries import cockpit

PICKED_SPONSOR = "_picked_sponsor"  # read by portal.context for CMO roles
STATE_COLOURS = {"met": "#d4edda", "missed": "#f8d7da", "unreliable": "#fff3cd", "none": ""}


st.title("Management cockpit")
scope = site_scope()
today = clock.today()
period = st.sidebar.date_input("Period", value=cockpit.default_period(today), key="cockpit:range")
start, end = (period[0], period[-1]) if isinstance(period, tuple) and period else (today, today)
filters = Filters(start=start, end=end)

with st.sidebar.expander("Targets and reliability"):
    threshold = st.slider(
        "Reliable from completeness (%)", 0, 100, cockpit.DEFAULT_THRESHOLD,
        key="cockpit:threshold",
    )  # fmt: skip
    targets = {}
    for key, default in cockpit.DEFAULT_TARGETS.items():
        measure = catalogue.measure(key)
        rate = measure.unit == "rate"
        label = f"{measure.name} {'at least' if default.at_least else 'at most'}"
        shown = st.number_input(
            label + (" (%)" if rate else ""), value=float(default.value * (100 if rate else 1)),
            min_value=0.0, step=1.0, key=f"cockpit:target:{key}",
        )  # fmt: skip
        targets[key] = catalogue.Target(shown / 100 if rate else shown, default.at_least)

with st.spinner("Reading every sponsor's records…"):
    model = cockpit.page_model(scope, start, end, today, threshold, targets)
st.caption(
    f"{start:%d %b %Y} – {end:%d %b %Y}; open deviations, overdue CAPAs and pending approvals "
    f"as of today. A KPI under {threshold} % data completeness shows as not reliable."
)

st.header("Sponsor health")
if model.health.is_empty():
    st.info("No sponsor has published records yet.")
else:
    every = st.segmented_control(
        "Columns", ["At a glance", "Every measure"], default="At a glance",
        key="cockpit:health-view",
        help="At a glance: which measures need attention; every measure: each value.",
    ) == "Every measure"  # fmt: skip
    health_dataset = catalogue.dataset("sponsor_health" if every else "sponsor_health_glance")
    rows, states = (model.health, model.health_states) if every else (
        model.glance, model.glance_states)  # fmt: skip
    colours = (
        health_dataset.for_export(states)
        .to_pandas()
        .replace(STATE_COLOURS)
        .map(lambda c: f"background-color: {c}" if c else "")
    )
    # Sponsors by name, with the id the sidebar and exports use.
    named = rows.with_columns(
        pl.col("sponsor_id").replace({s: f"{n} ({s})" for s, n in model.sponsor_names.items()})
    )
    shown = health_dataset.for_export(named).to_pandas().style.apply(lambda _: colours, axis=None)
    if every:
        st.dataframe(
            shown,
            hide_index=True,
            key="cockpit:health",
            column_config={
                col.label: st.column_config.Column(help=col.description, pinned=col.key or None)
                for col in health_dataset.columns
            },  # fmt: skip
        )
    else:
        # A static table wraps its text: every sponsor's facts at full length, no scrolling.
        st.table(shown.hide(axis="index"))
    st.caption(
        "Green: meets its target (every measure does); red: misses it; amber: not reliable "
        "(too little of the data it needs is complete; the cell says why). Each measure's "
        'definition is under "Definitions and sources" below. '
        "Lot acceptance rate (FDA 2016) divides lots released by lots started in the period, "
        "so it can exceed 100 % when fewer lots start than are released; the ISPE pilot "
        "reading divides them by lots finally dispositioned."
    )
    export_buttons(model.health, "cockpit", filters, scope, dataset="sponsor_health")

    left, right = st.columns([3, 1])
    drill = left.selectbox("Open a sponsor's dashboards", model.health["sponsor_id"].to_list(),
                           format_func=lambda s: f"{model.sponsor_names.get(s, s)} ({s})",
                           key="cockpit:drill")  # fmt: skip
    if right.button("Open overview", key="cockpit:open"):
        st.session_state[PICKED_SPONSOR] = drill
        try:
            st.switch_page("pages/sponsor/overview.py")
        except StreamlitAPIException:
            st.caption("Open the Overview page to see this sponsor.")

st.header("Sponsor obligations on changes")
obligations_section(scope, filters, "cockpit", site_wide=True)

st.header("KPIs side by side")
comparison = catalogue.dataset("kpi_comparison")
view = st.segmented_control(
    "Show", ["Values", "Data completeness"], default="Values", key="cockpit:kpi-view",
    help="Each KPI's value, or the share of the records it needs that are complete.",
) or "Values"  # fmt: skip
grid = model.values if view == "Values" else model.completeness
# Populations by name: the site, then each sponsor. Up to a handful of sponsors, a static table
# whose headers wrap keeps every column on screen; more scroll, the KPI column pinned.
grid = grid.rename({"kpi": comparison.column("kpi").label} | model.sponsor_names)
if len(model.sponsor_names) <= 6:
    st.table(grid.to_pandas().style.hide(axis="index"))
else:
    st.dataframe(grid, hide_index=True, height=35 * (grid.height + 1) + 3, key="cockpit:kpis",
                 column_config={grid.columns[0]: st.column_config.Column(pinned=True)})  # fmt: skip
with st.expander("Definitions and sources"):
    for key in cockpit.in_domain_order(cockpit.COCKPIT_KPIS):
        measure = catalogue.measure(key)
        st.markdown(f"**{cockpit.kpi_label(key)}** — {measure.formula} "
                    f"*Source: {measure.source}.*")  # fmt: skip
export_buttons(model.comparison, "cockpit-kpis", filters, scope, dataset="kpi_comparison")

st.header("Trend by month")
trended = cockpit.trended_kpis()
chosen = st.selectbox(
    "KPI", trended, format_func=lambda k: catalogue.measure(k).name, key="cockpit:trend"
)
definition = catalogue.measure(chosen)
st.caption(f"{definition.formula} Source: {definition.source}. Months under the completeness "
           "threshold are left blank.")  # fmt: skip
# A second call for the second view: the monthly trend of the KPI picked above.
trend = cockpit.trend_model(scope, model.inputs, chosen, start, end, today, threshold)
trend_dataset = catalogue.dataset("kpi_trend")
axis = definition.name + (" (%)" if definition.unit == "rate" else "")
trend = trend.with_columns(pl.col("population").replace(model.sponsor_names))
chart(scope, "cockpit:trend", trend, lambda data: px.line(
    data, x="month", y="value", color="population", markers=True,
    labels={"value": axis, "population": trend_dataset.column("population").label,
            "month": trend_dataset.column("month").label}),
    extra=axis, key="cockpit:trend-chart")  # fmt: skip
