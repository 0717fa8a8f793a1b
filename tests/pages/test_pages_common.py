"""What every sponsor dashboard owes every role: it renders, and shows only its own sponsor.

One parametrized table over the page registry, so a new page is covered by adding it there.
Page-specific numbers and anomalies are in tests/pages/test_page_<page>.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.navigation import PAGES
from tests.page_b_checks import ROLES, SPONSORS, leaked, render_as, render_per_sponsor
from tests.role_matrix import allowed

DASHBOARDS = [spec for spec in PAGES if Path(spec.script).parent.name == "sponsor"]


# Each dashboard for each role README gives it; the refusals are tests/security/test_role_gates.
GIVEN = [(spec, role) for spec in DASHBOARDS for role in ROLES if spec.url_path in allowed(role)]


@pytest.mark.parametrize(("spec", "role"), GIVEN, ids=[f"{s.url_path}-{r}" for s, r in GIVEN])
def test_renders_for_every_role(spec, role, demo_warehouse, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    app = render_as(role, Path(spec.script).name, demo_warehouse)
    assert not app.exception, [e.value for e in app.exception]
    assert app.title[0].value == spec.title


@pytest.mark.parametrize("spec", DASHBOARDS, ids=lambda spec: spec.url_path)
def test_shows_nothing_of_another_sponsor(spec, demo_warehouse, tmp_path) -> None:
    page = Path(spec.script).stem
    shown = render_per_sponsor(Path(spec.script).name, page, demo_warehouse, tmp_path)
    for sponsor in SPONSORS:
        assert leaked(demo_warehouse, sponsor, shown[sponsor][1]) == [], sponsor
