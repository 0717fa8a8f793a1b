"""The role -> pages matrix as README.md states it ("Page by page"), parsed: the independent
statement the portal's navigation and page gates are checked against. It is never derived
from portal.navigation, so a registry that opens every page to every role fails the tests
instead of shrinking them."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
ROLES = ("sponsor_qa", "auditor", "cmo_quality", "cmo_management", "bd_demo", "admin")


def readme_matrix() -> dict[str, dict]:
    """page title -> {"url": path without "/", "roles": frozenset of roles with a tick}."""
    lines = README.read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| page | address |"))
    columns = [cell.strip() for cell in lines[header].strip("|").split("|")]
    assert tuple(columns[2:]) == ROLES, columns
    matrix = {}
    for line in lines[header + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        title, url, ticks = cells[0], cells[1].lstrip("/"), cells[2:]
        roles = frozenset(role for role, tick in zip(ROLES, ticks, strict=True) if tick == "✓")
        matrix[title] = {"url": url, "roles": roles}
    assert len(matrix) >= 16, "README's page-by-page table is missing or cut short"
    return matrix


MATRIX = readme_matrix()


def allowed(role: str) -> set[str]:
    """URL paths README says the role may open."""
    return {page["url"] for page in MATRIX.values() if role in page["roles"]}


def forbidden(role: str) -> set[str]:
    """URL paths README says the role may not open."""
    return {page["url"] for page in MATRIX.values()} - allowed(role)


def first_page(role: str) -> str:
    """The title of the role's first page in README's order: where it lands by default."""
    return next(title for title, page in MATRIX.items() if role in page["roles"])
