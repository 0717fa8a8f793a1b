"""Every Streamlit cache is keyed by the scope it serves (DESIGN.md), in the code and in use.

`st.cache_data` / `st.cache_resource` are shared by every session of the process, so a cached
function must take the sponsor (or principal) as a hashed argument, or be session-scoped.
Arguments whose names start with "_" are not hashed by Streamlit and do not count. The one
such cache, portal.context._scope, is also read through for every sponsor, missed and hit:
what it serves must hold none of another sponsor's identifiers (tests/ownership.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from portal.context import _scope
from tests.conftest import DemoPlant
from tests.ownership import ownership
from tests.scope_reads import leak_problems, served
from warehouse.scope import snapshot_info, sponsor_ids

ROOT = Path(__file__).resolve().parents[2]
SCOPE_ARGUMENTS = frozenset({"sponsor_id", "principal", "username"})
CACHE_DECORATORS = frozenset({"cache_data", "cache_resource"})


def _decorator_name(node: ast.expr) -> tuple[str | None, ast.Call | None]:
    call = node if isinstance(node, ast.Call) else None
    target = node.func if call else node
    if isinstance(target, ast.Attribute) and target.attr in CACHE_DECORATORS:
        return target.attr, call
    if isinstance(target, ast.Name) and target.id in CACHE_DECORATORS:
        return target.id, call
    return None, None


def unscoped_caches(source: str, filename: str = "<source>") -> list[str]:
    """Names of cached functions in `source` that are not keyed by a scope."""
    problems = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for decorator in node.decorator_list:
            kind, call = _decorator_name(decorator)
            if kind is None:
                continue
            keywords = call.keywords if call is not None else []
            session_scoped = any(
                k.arg == "scope"
                and isinstance(k.value, ast.Constant)
                and k.value.value == "session"
                for k in keywords
            )
            args = node.args
            names = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
            if not session_scoped and not names & SCOPE_ARGUMENTS:
                problems.append(f"{filename}:{node.lineno} {node.name}")
    return problems


def _project_sources() -> list[Path]:
    files = [ROOT / "portal_app.py"]
    for folder in ("pages", "portal", "warehouse"):
        files += sorted((ROOT / folder).rglob("*.py"))
    return [f for f in files if f.exists()]


def test_every_cache_in_the_project_is_keyed_by_scope() -> None:
    problems = []
    for path in _project_sources():
        problems += unscoped_caches(path.read_text(), str(path.relative_to(ROOT)))
    assert problems == [], "cached functions not keyed by sponsor/principal: " + ", ".join(problems)


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        ("@st.cache_data\ndef f(product_id): ...", True),
        ("@st.cache_data(ttl=60)\ndef f(_scope, product_id): ...", True),
        ("@st.cache_resource\ndef f(_sponsor_id): ...", True),
        ("@cache_data\ndef f(start, end): ...", True),
        ("@st.cache_data\ndef f(sponsor_id, product_id): ...", False),
        ("@st.cache_data(scope='session')\ndef f(product_id): ...", False),
        ("@st.cache_resource(max_entries=4)\ndef f(root, run_id, sponsor_id): ...", False),
        ("def f(product_id): ...", False),
    ],
)
def test_the_check_flags_unscoped_caches(source: str, flagged: bool) -> None:
    assert bool(unscoped_caches(source)) is flagged


def test_the_shared_scope_cache_serves_each_sponsor_only_its_own(
    demo_plant: DemoPlant, demo_warehouse: Path
) -> None:
    """Every sponsor through the process-wide scope cache, in one order and then the other:
    the first pass opens each scope, the second is served from the cache (and from each
    scope's memo of the same queries); both must hold only the sponsor's own records."""
    oracle = ownership(demo_plant.path)
    sponsors = sponsor_ids(demo_warehouse)
    assert sponsors == oracle.sponsors() and len(sponsors) > 1
    root, run_id = str(demo_warehouse), snapshot_info(demo_warehouse).run_id
    opened = {}
    for sponsor in [*sponsors, *reversed(sponsors)]:
        scope = _scope(root, run_id, sponsor)
        assert not leak_problems(sponsor, served(scope), oracle)
        assert scope.sponsor_id == sponsor
        assert opened.setdefault(sponsor, scope) is scope  # the second pass: a cache hit
