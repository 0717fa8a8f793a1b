"""Page latency: server-side time of a full script run under AppTest, warm, per page and role.

A page is run once to warm the caches (scope, its memo, cache_data), then timed `runs` times
with the same session, as a user's reruns are. The baselines run the same way. With
`memo=False` the scopes keep nothing, so every run queries DuckDB (the isolation figure).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from streamlit.testing.v1 import AppTest

from portal.navigation import PAGES
from portal.users import SPONSOR_ROLES
from tests.page_harness import principal
from warehouse import scope as scope_module

ROOT = Path(__file__).resolve().parents[1]
MINIMAL = "bench/pages/minimal.py"
TUTORIAL = "bench/pages/tutorial.py"
COCKPIT = "pages/cmo/cockpit.py"
TIMEOUT = 600  # generous: other engineers share the 2 cores


@dataclass(frozen=True)
class Timing:
    script: str
    role: str
    median: float
    p95: float
    runs: int
    first: float  # the warm-up run: a session's first visit to the page
    error: str = ""


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def page_app(script: str, role: str, warehouse: Path, sponsor: str) -> AppTest:
    """An AppTest of `script` signed in as `role` (sponsor roles bound, others picking)."""
    app = AppTest.from_file(str(ROOT / script), default_timeout=TIMEOUT)
    bound = sponsor if role in SPONSOR_ROLES else None
    app.session_state["_principal"] = principal(role, bound)
    app.session_state["_warehouse_root"] = str(warehouse)
    app.session_state["_picked_sponsor"] = sponsor
    return app


def _timed_run(app: AppTest) -> float:
    started = time.perf_counter()
    app.run()
    return time.perf_counter() - started


@contextmanager
def _memo(enabled: bool) -> Iterator[None]:
    """With `enabled` False, scopes remember nothing while the block runs."""
    kept = scope_module.MEMO_ENTRIES
    scope_module.MEMO_ENTRIES = kept if enabled else 0
    try:
        yield
    finally:
        scope_module.MEMO_ENTRIES = kept


def time_page(
    script: str, role: str, warehouse: Path, sponsor: str, runs: int, *, memo: bool = True
) -> Timing:
    """Median and p95 of `runs` full script runs after one warm-up run."""
    app = page_app(script, role, warehouse, sponsor)
    with _memo(memo):
        first = _timed_run(app)
        samples = [_timed_run(app) for _ in range(runs)]
    # st.error is page content (e.g. a training warning); only an exception is a failure.
    failed = [e.value for e in app.exception]
    return Timing(script, role, statistics.median(samples), p95(samples), runs, first,
                  "; ".join(map(str, failed))[:200])  # fmt: skip


def page_roles() -> list[tuple[str, str]]:
    """Every registered page with every role that may open it, plus the cockpit if present."""
    combos = [(spec.script, role) for spec in PAGES for role in sorted(spec.roles)]
    if (ROOT / COCKPIT).is_file() and COCKPIT not in {spec.script for spec in PAGES}:
        combos += [(COCKPIT, role) for role in ("cmo_quality", "cmo_management")]
    return combos
