"""The dashboards' shared widgets: one filter bar, one table, one export helper, one empty
state, one chart helper."""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable, Hashable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

import plotly.graph_objects as go
import polars as pl
import streamlit as st
import xlsxwriter

from portal import access_log, saved_views
from portal.context import current_principal
from portal.store import utc_now
from portal.users import Principal, principal_for
from warehouse import catalogue, clock
from warehouse.filters import Filters
from warehouse.queries.common import products
from warehouse.scope import Scope

SHARED_FILTERS = "_shared_filters"  # the products and period a user chose, for every page
URL_APPLIED = "_filters_url_applied"  # the query string whose filters were last applied


FILTER_PARAMS = ("products", "from", "to")  # the URL's names for the shared filters


def _query(values: Any) -> str:
    """The filters part of a query string, to tell whether a link was applied already."""
    return "&".join(f"{k}={values[k]}" for k in FILTER_PARAMS if k in values)


def _shared() -> dict[str, Any]:
    return st.session_state.setdefault(SHARED_FILTERS, {})


def _period_from_url(params: Any) -> tuple[date, date] | None:
    """The URL's period (from=YYYY-MM-DD&to=YYYY-MM-DD); a broken or reversed one is refused
    with a message, and the page keeps its period."""
    if "from" not in params and "to" not in params:
        return None
    try:
        start, end = date.fromisoformat(params["from"]), date.fromisoformat(params["to"])
    except (KeyError, ValueError):
        st.sidebar.warning("The link's period is not a pair of dates (from=YYYY-MM-DD and "
                           "to=YYYY-MM-DD): the period below is the page's own.")  # fmt: skip
        return None
    if end < start:
        st.sidebar.warning(f"The link's period ends ({end}) before it starts ({start}): the "
                           "period below is the page's own.")  # fmt: skip
        return None
    return start, end


def _apply_url(names: dict[str, str]) -> None:
    """A link's filters (?products=P1,P2&from=...&to=...) become the session's, once per link.
    Products outside this user's scope are dropped unseen: a link applies within one's own
    scope only."""
    params = st.query_params
    query = _query(params)
    if not query or st.session_state.get(URL_APPLIED) == query:
        return
    st.session_state[URL_APPLIED] = query
    shared = _shared()
    if "products" in params:
        shared["products"] = [p for p in params["products"].split(",") if p in names]
    if period := _period_from_url(params):
        shared["period"] = period


def _write_url(picked: list[str], start: date, end: date) -> None:
    """The URL names the view, so a copied link reopens it."""
    wanted = {"from": start.isoformat(), "to": end.isoformat()}
    if picked:
        wanted["products"] = ",".join(picked)
    for key in FILTER_PARAMS:
        if key in wanted and st.query_params.get(key) != wanted[key]:
            st.query_params[key] = wanted[key]
        elif key not in wanted and key in st.query_params:
            del st.query_params[key]
    st.session_state[URL_APPLIED] = _query(wanted)


def dashboard_filters(scope: Scope, page: str, *, default_days: int = 365) -> Filters:
    """Product and date-range filters with the user's saved views, in the sidebar.

    One set for the whole portal: products and a period chosen on one page (or by a saved
    view, or a link) follow the user to the next page, and the URL names them. A page whose
    period the user never chose shows its own default."""
    principal = current_principal()
    options = products(scope)
    names = dict(zip(options["product_id"], options["name"], strict=True))
    product_key, range_key = f"{page}:products", f"{page}:range"
    today = clock.today()
    _apply_url(names)
    shared = _shared()

    saved = saved_views.views(principal.username)
    chosen = st.sidebar.selectbox("Saved view", ["—", *saved], key=f"{page}:view")
    if chosen != "—" and st.session_state.get(f"{page}:applied") != chosen:
        view = saved[chosen]
        shared["products"] = list(view.get("products", []))
        days = int(view.get("days", default_days))
        shared["period"] = (today - timedelta(days=days), today)
        st.session_state[f"{page}:applied"] = chosen
    # The session's choices, set before the widgets are drawn; a page never chosen keeps its
    # default. A value from outside the option list (another sponsor's product) is dropped.
    if "products" in shared:
        st.session_state[product_key] = list(shared["products"])
    if "period" in shared:
        st.session_state[range_key] = tuple(shared["period"])
    elif range_key not in st.session_state:
        st.session_state[range_key] = (today - timedelta(days=default_days), today)
    if product_key in st.session_state:
        st.session_state[product_key] = [p for p in st.session_state[product_key] if p in names]

    def keep(what: str, key: str) -> None:
        value = st.session_state[key]
        if what == "period" and not (isinstance(value, tuple) and len(value) == 2):
            return  # a range half picked: the period is chosen once both ends are
        shared[what] = list(value) if what == "products" else tuple(value)

    picked = st.sidebar.multiselect(
        "Products", list(names), format_func=names.get, key=product_key,
        placeholder="All products", on_change=keep, args=("products", product_key),
    )  # fmt: skip
    period = st.sidebar.date_input(
        "Period", key=range_key, on_change=keep, args=("period", range_key)
    )
    start, end = (period[0], period[-1]) if isinstance(period, tuple) and period else (today, today)
    _write_url(picked, start, end)

    with st.sidebar.expander("Save this view"):
        name = st.text_input("Name", key=f"{page}:view-name", max_chars=60)
        if st.button("Save view", key=f"{page}:save-view", disabled=not name.strip()):
            saved_views.save(
                principal.username, page, name.strip(),
                {"products": picked, "days": (end - start).days},
            )  # fmt: skip
            st.toast(f"Saved view '{name.strip()}': it can be chosen on every page.")
    return Filters(start=start, end=end, products=tuple(picked))


def empty_state(what: str) -> None:
    """Say what would appear here, rather than show an empty table."""
    st.info(f"Nothing to show for these filters. {what}")


# How dates and moments read in a table (Streamlit's moment.js patterns).
MOMENT_FORMATS = {"date": "YYYY-MM-DD", "datetime": "YYYY-MM-DD HH:mm"}
# Catalogue formats whose fractional values read to one decimal.
ONE_DECIMAL = ("days", "weeks", "hours")


HIGHLIGHT = "background-color: #fde2e1"


def table(
    frame: pl.DataFrame,
    dataset: str,
    *,
    key: str | None = None,
    flag: pl.Expr | None = None,
    first: tuple[str, ...] = (),
) -> None:
    """Rows of the catalogue's `dataset` as users read them: its labels and formats, key
    columns pinned first, codes in words, empty cells blank; rows where `flag` (over the
    frame's codes) holds are tinted red.

    `first`: the columns this table is read for, right after the key columns; then only they
    are shown until the reader turns on "More columns" (the facts fit the screen, the rest is
    one click away)."""
    model = catalogue.dataset(dataset)
    shown = model.in_words(frame)
    order = None
    if first:
        keys = [col.name for col in model.shown(frame) if col.key]
        wanted = keys + [name for name in first if name in frame.columns and name not in keys]
        rest = [col.name for col in model.shown(frame) if col.name not in wanted]
        more = bool(rest) and st.toggle(
            "More columns", key=f"{key or dataset}:more",
            help="Show every column of this table: " + ", ".join(
                model.column(name).label for name in rest) + ".",
        )  # fmt: skip
        order = wanted + rest if more else wanted
    if flag is None:
        # An Arrow table Streamlit serialises as it is; a Polars frame it would turn into
        # pandas and back into Arrow on every run (a quarter of a busy server's GIL time).
        data: Any = shown.to_arrow()
    else:
        flagged = frame.select(flag.fill_null(False)).to_series().to_list()
        data = shown.to_pandas().style.apply(
            lambda row: [HIGHLIGHT if flagged[row.name] else ""] * len(row), axis=1
        )
    st.dataframe(
        data, hide_index=True, column_config=column_config(model, shown), placeholder="",
        key=key, column_order=order,
    )  # fmt: skip


def column_config(model: catalogue.Dataset, frame: pl.DataFrame) -> dict[str, Any]:
    """Streamlit's settings for each column of `frame` (rows of `model`), from the catalogue."""
    return {col.name: _column(col, frame.schema[col.name]) for col in model.shown(frame)}


def _column(col: catalogue.Column, dtype: pl.DataType) -> Any:
    common = {"label": col.label, "help": col.description, "pinned": True if col.key else None}
    if dtype == pl.Date:
        return st.column_config.DateColumn(format=MOMENT_FORMATS["date"], **common)
    if isinstance(dtype, pl.Datetime):
        moment = MOMENT_FORMATS.get(col.format, MOMENT_FORMATS["datetime"])
        return st.column_config.DatetimeColumn(format=moment, **common)
    if dtype == pl.Boolean:
        return st.column_config.CheckboxColumn(**common)
    if dtype.is_integer():
        return st.column_config.NumberColumn(format="%d", **common)
    if dtype.is_numeric():
        decimals = "%.1f" if col.format in ONE_DECIMAL else None
        return st.column_config.NumberColumn(format=decimals, **common)
    return st.column_config.TextColumn(**common)


REFUSED_EXPORT = b"Export refused: your access to this portal has ended.\n"


def export_frame(frame: pl.DataFrame, dataset: str | None) -> pl.DataFrame:
    """The rows as exported: headed by the catalogue's labels, codes in words (and raw codes
    where the catalogue keeps them); `frame` as it is for a page not yet in the catalogue."""
    return catalogue.dataset(dataset).for_export(frame) if dataset else frame


def export_buttons(
    frame: pl.DataFrame, page: str, filters: Filters, scope: Scope, *, dataset: str | None = None
) -> None:
    """CSV and XLSX of exactly the rows shown, stamped with who, when and which snapshot,
    headed as the catalogue's `dataset` labels them.

    Files are built when clicked, not on every page run, and only while the registry still
    lets the user in: a button left on screen past an auditor's window exports nothing.
    """
    principal = current_principal()
    # Logged as of the sponsor whose rows these are: CMO staff's exports reach its QA's log.
    logged = replace(principal, sponsor_id=scope.sponsor_id or principal.sponsor_id)
    stamped_exports(lambda: export_frame(frame, dataset), page, filters.describe(),
                    scope.label, scope.snapshot.run_id, logged)  # fmt: skip


def stamped_exports(
    exported: Callable[[], pl.DataFrame], page: str, described: dict[str, Any], about: str,
    snapshot: str, logged: Principal,
) -> None:  # fmt: skip
    """The CSV and XLSX buttons of the rows `exported` gives, as they are to be read: stamped
    with who, when, what they are `about` (a sponsor, or every sponsor), from which `snapshot`
    and with which filters; built at fetch time through deliver() (the rows too: a page run
    that nobody exports from pays nothing); logged as `logged` when handed out."""
    principal = current_principal()
    rows = cache(exported)

    def stamp() -> dict[str, str]:
        return export_stamp(rows(), principal, page, described, about, snapshot)

    def log(fmt: str) -> Callable[[], None]:
        return lambda: access_log.record(
            "EXPORT", logged, page=page, filters=described,
            row_count=rows().height, content_hash=content_hash(rows()), detail=fmt,
        )  # fmt: skip

    left, right = st.columns(2)
    filename = f"{page}-{about}-{clock.today().isoformat()}".replace(" ", "-")
    left.download_button(
        "Export CSV", deliver(principal, lambda: export_csv(rows(), stamp()), log("csv")),
        file_name=f"{filename}.csv", mime="text/csv", on_click="ignore", key=f"{page}:csv",
    )  # fmt: skip
    right.download_button(
        "Export XLSX", deliver(principal, lambda: export_xlsx(rows(), stamp()), log("xlsx")),
        file_name=f"{filename}.xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        on_click="ignore", key=f"{page}:xlsx",
    )  # fmt: skip


def still_allowed(principal: Principal) -> bool:
    """The registry still lets this user in (not disabled, inside the validity window)."""
    return principal_for(principal.username, utc_now()) is not None


def deliver(
    principal: Principal, build: Callable[[], bytes], record: Callable[[], None]
) -> Callable[[], bytes]:
    """The file, built when the browser fetches it, or a refusal once the user's access has
    ended; `record` logs each file delivered (a refusal is not an export and is not logged).

    Its button is drawn with on_click="ignore": a click then only fetches the file. A click
    that also reran the page would race the fetch -- the rerun re-registers the button's file
    under a new id and Streamlit drops the old one, so a click on a busy server could deliver
    nothing at all."""

    def fetched() -> bytes:
        if not still_allowed(principal):
            return REFUSED_EXPORT
        content = build()
        record()
        return content

    return fetched


def content_hash(frame: pl.DataFrame) -> str:
    return hashlib.sha256(frame.write_csv().encode()).hexdigest()


def export_stamp(
    frame: pl.DataFrame, principal: Principal, page: str, filters: Filters | dict[str, Any],
    sponsor: str, snapshot: str,
) -> dict[str, str]:  # fmt: skip
    """Who exported what, when, from which snapshot, and the hash of the rows."""
    fields = {
        "export": page,
        "sponsor": sponsor,
        "exported_by": principal.username,
        "role": principal.role,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data_snapshot": snapshot,
        "filters": str(filters.describe() if isinstance(filters, Filters) else filters),
        "content_sha256": content_hash(frame),
    }
    if principal.role == "auditor":
        fields["auditor_access_valid_until"] = str(principal.valid_until)
    return fields


def export_csv(frame: pl.DataFrame, stamp: dict[str, str]) -> bytes:
    """The rows as CSV behind '# field: value' stamp lines (read with comment prefix '#')."""
    header = "".join(f"# {k}: {v}\n" for k, v in stamp.items())
    return (header + frame.write_csv()).encode()


def export_xlsx(frame: pl.DataFrame, stamp: dict[str, str]) -> bytes:
    """The rows on sheet 'data' and the stamp on sheet 'about'."""
    buffer = io.BytesIO()
    with xlsxwriter.Workbook(buffer, {"remove_timezone": True}) as workbook:
        frame.write_excel(workbook, worksheet="data")
        about = pl.DataFrame({"field": list(stamp), "value": list(stamp.values())})
        about.write_excel(workbook, worksheet="about")
    return buffer.getvalue()


def fingerprint(frame: pl.DataFrame) -> str:
    """Digest of a frame's schema and rows, in order: equal digests mean the same chart data."""
    digest = hashlib.blake2b(repr(frame.schema).encode(), digest_size=16)
    if frame.height:
        digest.update(frame.hash_rows().to_numpy().tobytes())
    return digest.hexdigest()


def chart(
    scope: Scope,
    name: str,
    data: pl.DataFrame,
    build: Callable[[pl.DataFrame], go.Figure],
    *,
    dataset: str | None = None,
    labels: dict[str, str] | None = None,
    extra: Hashable = (),
    key: str | None = None,
) -> None:
    """Show `build(data)` as a Plotly chart, built once per scope and data.

    With `dataset`, the chart reads as its table does: codes in the columns the catalogue's
    dataset declares become their words before `build` sees the data (bars, legend entries and
    hover read words; give category orders in words, `Column.ordered_words`), and axis, legend
    and hover titles become the columns' labels. `labels` titles the columns a chart derives
    itself (a count per group). Nothing shows a column's name.

    Building a Plotly figure costs more than the page's queries; the figure is kept in the
    scope's memo (one sponsor, one snapshot), keyed by `name`, the data's fingerprint and
    `extra` (anything else `build` reads, such as a title's project id).
    """

    def draw() -> go.Figure:
        shown, titles = catalogue.dataset(dataset).for_chart(data) if dataset else (data, {})
        return integer_ticks(toned(titled(build(shown), titles | (labels or {}))))

    words = tuple(sorted((labels or {}).items()))
    figure = scope.memo(("figure", name, fingerprint(data), dataset, words, extra), draw)
    only = single_bar(figure)
    if only is not None:  # one bar says no more than a number: show the number
        st.metric(*only)
        return
    st.plotly_chart(figure, key=key)


def single_bar(figure: go.Figure) -> tuple[str, Any] | None:
    """(what, how many) when `figure` is a bar chart of exactly one non-zero bar, else None."""
    bars = [trace for trace in figure.data if trace.type == "bar"]
    if not bars or len(bars) != len(figure.data):
        return None
    shown = []
    for trace in bars:
        across, along = (trace.y, trace.x) if trace.orientation == "h" else (trace.x, trace.y)
        if across is None or along is None:
            return None
        shown += [(trace.name, c, v) for c, v in zip(list(across), list(along), strict=False) if v]
    if len(shown) != 1:
        return None
    group, category, value = shown[0]
    title = figure.layout.title.text or ""
    what = ", ".join(str(w) for w in (category, group) if w not in (None, ""))
    return (f"{title}: {what}" if title else what), value


# One colour meaning across the portal: red needs attention, amber soon will, green is good;
# everything else (a product, a sponsor, a status that is only a step) in blues and greys.
# Red is never a colour a chart picks by position.
ATTENTION, CAUTION, GOOD = "#d62728", "#ff8700", "#2ca02c"
NEUTRAL = ("#0068c9", "#83c9ff", "#6d3fc0", "#7f7f7f", "#004280", "#b8a9e8", "#c4c4c4",
           "#1f9eb8", "#9ecae1", "#3d3d3d")  # fmt: skip
TONES = {
    ATTENTION: ("Critical", "Overdue", "Late", "Not notified", "Confirmed", "Rejected", "Missed",
                "Requalification overdue", "Out of service", "Not trained"),
    CAUTION: ("Major", "Due soon", "Requalification due", "On hold", "Sponsor review",
              "Inconclusive"),
    GOOD: ("On time", "Kept", "Current", "Released by sponsor"),
}  # fmt: skip
TONE = {word: colour for colour, words in TONES.items() for word in words}
# The colours Plotly and Streamlit hand out by position; a chart that chose its own keeps them.
BY_POSITION = {c.lower() for c in (
    "#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3", "#FF6692", "#B6E880",
    "#FF97FF", "#FECB52", "#0068c9", "#83c9ff", "#ff2b2b", "#ffabab", "#29b09d", "#7defa1",
    "#ff8700", "#ffd16a", "#6d3fc0", "#d5dae5",
)}  # fmt: skip


def toned(figure: go.Figure) -> go.Figure:
    """`figure` in the portal's colours: a trace named by a word of TONES takes that word's
    colour; a trace coloured by position takes the next neutral colour (never red or green)."""
    neutral = iter(NEUTRAL * 10)
    for trace in figure.data:
        if trace.type not in ("bar", "scatter", "histogram") or not trace.name:
            continue
        given = trace.marker.color
        # Streamlit's theme marks its own palette by position as "#000001", "#000002", ...
        placeholder = isinstance(given, str) and re.fullmatch(r"#0000[0-9a-f]{2}", given.lower())
        chosen = isinstance(given, str) and given.lower() not in BY_POSITION and not placeholder
        if trace.name not in TONE and chosen:
            continue
        colour = TONE.get(trace.name) or next(neutral)
        if trace.type == "scatter" and "lines" in (trace.mode or ""):
            trace.line.color = colour
        trace.marker.color = colour
    return figure


SMALL_COUNT = 10  # up to this many, a count axis ticks every whole number


def integer_ticks(figure: go.Figure) -> go.Figure:
    """`figure` with whole-number ticks on every axis that counts: one whose bars or points are
    all whole numbers, or a histogram's count axis. Plotly's own ticks would read 0.5 of a batch
    on a small count. Dates, shares (a range up to 1) and axes with a format of their own are
    left alone."""
    stacked = figure.layout.barmode in (None, "stack", "relative")
    totals: dict[str, dict[Any, float]] = {}  # axis -> category -> what it reaches
    other: set[str] = set()
    for trace in figure.data:
        if trace.type not in ("bar", "scatter", "histogram"):
            continue
        horizontal = getattr(trace, "orientation", None) == "h"
        letter = "x" if horizontal else "y"
        axis = (getattr(trace, f"{letter}axis", None) or letter).replace(letter, f"{letter}axis")
        shown = totals.setdefault(axis, {})
        if trace.type == "histogram":  # counts per bin: at most the trace's records
            records = trace.y if horizontal else trace.x
            shown["histogram"] = shown.get("histogram", 0.0) + (
                0 if records is None else len(records)
            )
            continue
        values = _numbers(trace.x if horizontal else trace.y)
        if values is None or any(v != int(v) for v in values):
            other.add(axis)
            continue
        categories = trace.y if horizontal else trace.x
        categories = range(len(values)) if categories is None else list(categories)
        for category, value in zip(categories, values, strict=False):
            before = shown.get(category, 0.0)
            stack = stacked and trace.type == "bar"
            shown[category] = before + abs(value) if stack else max(before, abs(value))
    for axis, reached in totals.items():
        layout = figure.layout[axis]
        if axis in other or not reached or layout.type == "date" or layout.tickformat:
            continue
        if layout.range is not None and layout.range[1] is not None and layout.range[1] <= 1:
            continue
        if max(reached.values()) <= SMALL_COUNT:
            layout.update(tick0=0, dtick=1, tickformat="d")
        else:
            layout.update(tickformat=",d")
    return figure


def _numbers(values: Any) -> list[float] | None:
    """`values` as floats, or None when one is not a number (a date, a category)."""
    if values is None:
        return []
    try:
        numbers = [float(v) for v in values if v is not None]
    except (TypeError, ValueError):
        return None
    return None if any(v != v for v in numbers) else numbers  # NaN: not a count


def titled(figure: go.Figure, titles: dict[str, str]) -> go.Figure:
    """`figure` with every axis, legend, colour-scale and hover title that names a column
    replaced by that column's title in `titles`."""
    if not titles:
        return figure

    def retitle(axis: Any) -> None:
        text = axis.title.text
        if text in titles:
            axis.update(title_text=titles[text])

    figure.for_each_xaxis(retitle)
    figure.for_each_yaxis(retitle)
    retitle(figure.layout.legend)
    if figure.layout.coloraxis.colorbar.title.text in titles:
        colorbar = figure.layout.coloraxis.colorbar
        colorbar.title.text = titles[colorbar.title.text]
    for trace in figure.data:
        template = getattr(trace, "hovertemplate", None)
        if template:
            for column, title in titles.items():
                template = re.sub(rf"(^|<br>){re.escape(column)}=", rf"\g<1>{title}=", template)
            trace.hovertemplate = template
    return figure
