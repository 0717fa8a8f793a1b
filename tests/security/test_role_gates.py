"""Role gates held to README's page-by-page table (tests/role_matrix.py), not to the code
under test: the router registers exactly what README states, and each page script run
directly - as a stale tab or a registry mistake would run it - refuses, by itself, a role
that README does not give it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from portal.navigation import PAGES, pages_for
from tests.browser_support import leaks
from tests.ownership import ownership
from tests.page_harness import principal, run_page, shown_text
from tests.role_matrix import MATRIX, ROLES, allowed

SPONSOR = "NWT"
SCRIPTS = {spec.url_path: Path(spec.script).name for spec in PAGES}


def _who(role: str):
    return principal(role, SPONSOR if role in ("sponsor_qa", "auditor") else None)


@pytest.fixture(scope="module")
def data_root(demo_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root whose demo warehouse is the published demo plant, so that an unguarded
    demo tour would find data to show."""
    root = tmp_path_factory.mktemp("role-gates")
    (root / "demo").mkdir()
    (root / "demo" / "warehouse").symlink_to(demo_warehouse)
    return root


@pytest.fixture
def run_as(data_root: Path, demo_warehouse: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PORTAL_DATA_DIR", str(data_root))

    def run(url: str, role: str):
        return run_page(SCRIPTS[url], _who(role), demo_warehouse, picked_sponsor="CTB")

    return run


def test_readme_states_every_registered_page() -> None:
    registered = {(spec.title, spec.url_path) for spec in PAGES}
    assert registered == {(title, page["url"]) for title, page in MATRIX.items()}


@pytest.mark.parametrize("role", ROLES)
def test_navigation_registers_exactly_what_readme_states(role: str) -> None:
    assert {spec.url_path for spec in pages_for(role)} == allowed(role)


FORBIDDEN = [(url, role) for role in ROLES for url in sorted(set(SCRIPTS) - allowed(role))]


@pytest.mark.parametrize(("url", "role"), FORBIDDEN, ids=[f"{r}-{u}" for u, r in FORBIDDEN])
def test_a_page_run_directly_refuses_a_role_readme_does_not_give_it(
    run_as, demo_plant, url: str, role: str
) -> None:
    app = run_as(url, role)
    assert not app.exception
    shown = {
        "tables": len(app.dataframe), "metrics": len(app.metric),
        "charts": len(app.get("plotly_chart")), "downloads": len(app.get("download_button")),
    }  # fmt: skip
    assert shown == {"tables": 0, "metrics": 0, "charts": 0, "downloads": 0}
    own = SPONSOR if role in ("sponsor_qa", "auditor") else None
    oracle = ownership(demo_plant.path)
    forbidden = set().union(*(oracle.own(s) for s in oracle.sponsors() if s != own))
    assert leaks(shown_text(app), forbidden - (oracle.own(own) if own else set())) == []
    assert app.error, "a refused role is told why"


ALLOWED_CROSS_SPONSOR = [
    (page["url"], role)
    for page in MATRIX.values()
    if "sponsor_qa" not in page["roles"] and page["url"] != "users"
    for role in sorted(page["roles"])
]


@pytest.mark.parametrize(
    ("url", "role"), ALLOWED_CROSS_SPONSOR, ids=[f"{r}-{u}" for u, r in ALLOWED_CROSS_SPONSOR]
)
def test_the_same_run_shows_data_to_a_role_readme_gives_it(run_as, url: str, role: str) -> None:
    """Positive control: the direct run above is a real run that shows data when allowed."""
    app = run_as(url, role)
    assert not app.exception and not app.error
    assert len(app.dataframe) + len(app.metric) + len(app.get("plotly_chart")) > 0


def test_the_suite_day_reaches_the_pages() -> None:
    assert os.environ["PORTAL_TODAY"]
