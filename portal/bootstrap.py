"""First start on a fresh data root: build the demo plant, its warehouse and the demo users."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from portal import decisions
from portal.users import ensure_demo_users, list_users
from warehouse import layout

LOCK_FILE = ".bootstrap.lock"

Progress = Callable[[float, str], None]


def needs_bootstrap(mode: str) -> bool:
    """Cheap check on every rerun: is anything of the first-start setup missing?

    PORTAL_BOOTSTRAP=off leaves the data root to the operator (e.g. a production host that
    builds the demo plant with the nightly job).
    """
    if os.environ.get("PORTAL_BOOTSTRAP", "on") == "off":
        return False
    if not layout.demo_source().exists():
        return True
    if layout.current_snapshot(layout.demo_warehouse()) is None:
        return True
    return mode == "demo" and not list_users()


@contextmanager
def _exclusive() -> Iterator[None]:
    """Two sessions opening a fresh portal at once build it once: the second waits."""
    path = layout.data_root() / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def bootstrap(mode: str, progress: Progress) -> None:
    """Build what is missing; demo users (fixed passwords) only in demo mode."""
    # Imported here: the ETL is heavy and only a fresh data root needs it.
    from etl import demo_source, run

    with _exclusive():
        source, warehouse = layout.demo_source(), layout.demo_warehouse()
        if not source.exists():
            progress(0.1, "Generating the demo plant (five fictional sponsors)…")
            demo_source.generate(source)
        if layout.current_snapshot(warehouse) is None:
            progress(0.4, "Publishing the demo warehouse…")
            run.run_etl(source, warehouse, full=True)
        if mode == "demo":
            progress(0.9, "Creating demo users…")
            ensure_demo_users()
            decisions.ensure_demo_signers()
        progress(1.0, "Ready.")
