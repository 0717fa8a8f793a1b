"""Many sessions at once, alternating between sponsors, share one process and its caches.

24 AppTest sessions run page scripts in threads as NWT or CTB (sponsor QA and auditor);
every page must render without error and show none of the other sponsor's identifiers.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from streamlit.runtime.scriptrunner import script_cache

from tests.page_checks import foreign_identifiers
from tests.page_harness import principal, run_page, shown_text

PAGES = ("overview.py", "batches.py", "batch_record.py", "deviations.py", "capa.py",
         "change_control.py", "training.py", "equipment.py")  # fmt: skip
SESSIONS = 24
OTHER = {"NWT": "CTB", "CTB": "NWT"}


@pytest.fixture(scope="module")
def compile_lock():
    """CPython 3.11's compile() is not thread-safe (AST recursion-depth SystemError), and
    every AppTest compiles its script: serialise compiling only, never running."""
    lock = threading.Lock()
    original = script_cache.ScriptCache.get_bytecode

    def locked(self, script_path: str):
        with lock:
            return original(self, script_path)

    script_cache.ScriptCache.get_bytecode = locked
    yield
    script_cache.ScriptCache.get_bytecode = original


def test_simultaneous_sessions_never_cross_talk(demo_warehouse: Path, compile_lock) -> None:
    foreign = {s: foreign_identifiers(demo_warehouse, s, OTHER[s]) for s in OTHER}
    for page in PAGES:  # import every module once, outside the race
        run_page(page, principal("sponsor_qa", "NWT"), demo_warehouse, timeout=180)

    def render(page: str, who):
        """AppTest keeps its mock runtime in a process global (Runtime._instance) that a
        finishing thread resets; a run that lost it is the harness's failure, not the
        portal's, and is run again (at most 3 times). Anything else counts."""
        for _ in range(3):
            try:
                app = run_page(page, who, demo_warehouse, timeout=300)
            except KeyError as lost:
                if "SCRIPT_RUN_WITHOUT_ERRORS" not in str(lost):
                    raise
                continue
            if not any("Runtime hasn't been created" in e.value for e in app.exception):
                return app
        raise AssertionError(f"{page}: the AppTest harness lost its runtime 3 times")

    def session(number: int) -> tuple[int, str, list[str]]:
        sponsor = ("NWT", "CTB")[number % 2]
        role = ("sponsor_qa", "auditor")[(number // 2) % 2]
        who = principal(role, sponsor, username=f"user-{number}")
        problems = []
        for page in (PAGES[number % len(PAGES)], PAGES[(number + 3) % len(PAGES)]):
            app = render(page, who)
            text = shown_text(app)
            problems += [f"{page}: {e.value}" for e in app.exception]
            problems += [f"{page}: shows {n}" for n in foreign[sponsor] if n in text]
            if not app.title or len(text) < 50:
                problems.append(f"{page}: rendered nothing")
        return number, sponsor, problems

    with ThreadPoolExecutor(max_workers=SESSIONS) as pool:
        results = list(pool.map(session, range(SESSIONS)))
    failures = [r for r in results if r[2]]
    assert not failures, failures[:3]
    assert len(results) == SESSIONS
