"""Run one page script under AppTest as a given principal, and read back all it showed."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from streamlit.testing.v1 import AppTest

from portal.users import Principal

ROOT = Path(__file__).resolve().parents[1]


def principal(role: str, sponsor_id: str | None = None, username: str | None = None) -> Principal:
    now = datetime.now()
    window = (
        (now - timedelta(days=1), now + timedelta(days=4)) if role == "auditor" else (None, None)
    )
    return Principal(username or f"{role}-{sponsor_id or 'site'}".lower(), f"Test {role}", role,
                     sponsor_id, *window)  # fmt: skip


def script_path(script: str) -> Path:
    """pages/<audience>/<script>: each page script sits in one audience folder of pages/."""
    (path,) = (ROOT / "pages").glob(f"*/{Path(script).name}")
    return path


def run_page(
    script: str,
    who: Principal,
    warehouse: Path,
    *,
    picked_sponsor: str | None = None,
    state: dict | None = None,
    query: dict | None = None,
    timeout: float = 60,
) -> AppTest:
    """Run the page script named `script` once, signed in as `who`, reading `warehouse`."""
    app = AppTest.from_file(str(script_path(script)), default_timeout=timeout)
    app.session_state["_principal"] = who
    app.session_state["_warehouse_root"] = str(warehouse)
    if picked_sponsor:
        app.session_state["_picked_sponsor"] = picked_sponsor
    for key, value in (state or {}).items():
        app.session_state[key] = value
    app.query_params.update(query or {})
    return app.run()


def shown_text(app: AppTest) -> str:
    """Everything a user could read on the page: text, tables, metrics, options, charts."""
    parts: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "text", "info",
                 "warning", "error", "success", "code", "latex"):  # fmt: skip
        parts += [str(e.value) for e in app.get(kind)]
    parts += [f"{m.label} {m.value} {m.delta}" for m in app.metric]
    for frame in app.dataframe:
        parts.append(frame.value.to_csv(index=False))
    for table in app.table:
        parts.append(table.value.to_csv(index=False))
    for widget in (*app.selectbox, *app.multiselect, *app.radio):
        parts += [widget.label, *map(str, widget.options)]
    for chart in app.get("plotly_chart"):
        parts.append(json.dumps(json.loads(chart.proto.spec)))
    for element in app.get("tabs") + app.get("expander"):
        parts.append(str(getattr(element, "label", "")))
    return "\n".join(parts)
