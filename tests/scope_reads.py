"""What a sponsor's scope serves, and the segregation invariant checked on it.

`served` reads, through a scope, every column of the tables a sponsor's pages start from;
`leak_problems` checks that text against the source's ownership (tests/ownership.py): none of
another sponsor's identifiers as a whole word (tests.browser_support.leaks), and some of the
sponsor's own batch numbers, so that a read returning nothing cannot pass for a clean one.
"""

from __future__ import annotations

from tests.browser_support import leaks
from tests.ownership import Ownership
from warehouse.scope import Scope

SPONSOR_FACING = ("sponsor", "product", "batch", "deviation", "capa", "change_control")


def served(scope: Scope) -> str:
    """Every row and column of the sponsor-facing tables the scope serves, as CSV text."""
    return "\n".join(
        scope.frame(f"all of {table}", f"SELECT * FROM {table}").write_csv()
        for table in SPONSOR_FACING
    )


def leak_problems(sponsor: str, text: str, oracle: Ownership) -> list[str]:
    """What is wrong with `text` as something shown to `sponsor` (nothing, if it is clean)."""
    problems = []
    if found := leaks(text, oracle.foreign(sponsor)):
        problems.append(f"{sponsor}: served another sponsor's {found[:5]}")
    if not leaks(text, oracle.own(sponsor, "batch number")):
        problems.append(f"{sponsor}: served none of its own batches")
    return problems
