"""Page latency: server-side time of a full script run under AppTest, warm, per page and role.

A page is run once to warm the caches (scope, its memo, cache_data), then timed `runs` times
with the same session, as a user's reruns are. The baselines run the same way. With
`memo=False` the scopes keep nothing, so every run queries DuckDB (the isolation figure).
"""

from __future__ import annotations

import random
import statistics
import threading
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


def concurrent_p95(
    script: str,
    warehouse: Path,
    sponsor: str,
    sessions: int,
    runs: int,
    think: tuple[float, float] | None = None,
) -> tuple[float, float]:
    """p95 and median of page runs while `sessions` sessions rerun the page at once.

    With `think` (seconds, low and high), each session waits a random time in that range
    before each rerun, as a reader does between clicks; without it, reruns are back to back.
    """
    apps = [page_app(script, "sponsor_qa", warehouse, sponsor) for _ in range(sessions)]
    for app in apps:
        app.run()  # warm every session before the clock starts
    samples: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(sessions)

    def session(number: int, app: AppTest) -> None:
        pause = random.Random(number)  # seeded: the same click pattern every run
        start.wait()
        mine = []
        for _ in range(runs):
            if think:
                time.sleep(pause.uniform(*think))
            mine.append(_timed_run(app))
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=session, args=pair) for pair in enumerate(apps)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return p95(samples), statistics.median(samples)
