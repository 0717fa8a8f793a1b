"""Costly first views computed before anyone asks: when a snapshot goes live (or the day
turns), a thread of the server process puts the default views of the pages that read every
sponsor (cockpit, compliance, shared equipment) into the CMO scope's memo of each warehouse
root it serves, so CMO staff's first view after the nightly run reads them instead of
computing the KPIs of every sponsor (5-9 s for the cockpit on `large`).

Only the CMO scope is warmed: it is the one only CMO roles and the demo plant's BD staff
open, the memo lives inside it (warehouse.scope), and no sponsor's scope is touched. The
scope is the pages' own one (portal.context's cache, same key), so nothing is built twice.
PORTAL_WARM_SECONDS sets how often the thread looks for a new snapshot (default 30; 0: off).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from datetime import date
from pathlib import Path

from portal.context import open_cached_scope
from warehouse import clock
from warehouse.queries import cockpit, compliance, shared_equipment
from warehouse.scope import ScopeError, snapshot_info

WARM_SECONDS_ENV = "PORTAL_WARM_SECONDS"
DEFAULT_WARM_SECONDS = 30.0
_log = logging.getLogger(__name__)
_lock = threading.Lock()
_stop = threading.Event()
_watched: dict[str, threading.Thread] = {}
NAP_S = 0.25  # how soon a sleeping thread sees stop()
STOP_TIMEOUT_S = 30.0  # a warming pass in flight at exit (7 s on `large`) is let finish
# What each root was last warmed for: (snapshot run id, today).
warmed: dict[str, tuple[str, date]] = {}


def interval() -> float:
    try:
        return max(0.0, float(os.environ.get(WARM_SECONDS_ENV, DEFAULT_WARM_SECONDS)))
    except ValueError:
        return DEFAULT_WARM_SECONDS


def warm(root: Path) -> bool:
    """Warm `root`'s CMO scope for its current snapshot and today, unless already done.
    True when it computed something."""
    info = snapshot_info(root)
    today = clock.today()
    if info is None or warmed.get(str(root)) == (info.run_id, today):
        return False
    # Tried once per snapshot and day: a failure is logged once, and the page that needs the
    # view computes it (and shows its own error) as it would without warming.
    warmed[str(root)] = (info.run_id, today)
    scope = open_cached_scope(root, info.run_id, None)
    cockpit.warm_default_view(scope, today)
    compliance.warm_default_view(scope, today, clock.now())
    shared_equipment.warm_default_view(scope, today)
    return True


class _OwnThreadsQuiet(logging.Filter):
    """Drops Streamlit's "missing ScriptRunContext" warning for the warming threads: they run
    no page, by design, and would log it for every cached call of every pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.threadName.startswith(THREAD_PREFIX)
            and "ScriptRunContext" in record.getMessage()
        )


THREAD_PREFIX = "portal-warm "
logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(
    _OwnThreadsQuiet()
)


def _watch(root: Path, every: float) -> None:
    while not _stop.is_set():
        try:
            warm(root)
        except (ScopeError, OSError) as exc:  # a snapshot being replaced: the next look
            _log.info("warming %s skipped: %s", root, exc)
        except Exception:  # noqa: BLE001 - a page computes it again; the server goes on
            _log.exception("warming %s failed", root)
        _pause(every)


def _pause(seconds: float) -> None:
    """Sleep `seconds`, or until stop(), in short relative naps. Not Event.wait(timeout): its
    deadline is absolute, and a shifted clock (the suite runs under libfaketime too) can put
    it weeks away."""
    remaining = seconds
    while remaining > 0 and not _stop.is_set():
        nap = min(NAP_S, remaining)
        time.sleep(nap)
        remaining -= nap


def stop() -> None:
    """Stop every warming thread and wait for it: a thread killed at interpreter exit in the
    middle of a DuckDB query aborts the process."""
    _stop.set()
    with _lock:
        threads = list(_watched.values())
        _watched.clear()
    for thread in threads:
        thread.join(STOP_TIMEOUT_S)
    _stop.clear()


atexit.register(stop)


def keep_warm(root: Path) -> None:
    """Start, once per root and process, the thread that keeps `root`'s CMO scope warm."""
    every = interval()
    if every <= 0 or _stop.is_set() or str(root) in _watched:
        return
    with _lock:
        if str(root) in _watched:
            return
        thread = threading.Thread(
            target=_watch, args=(root, every), name=f"{THREAD_PREFIX}{root}", daemon=True
        )
        _watched[str(root)] = thread
        thread.start()
