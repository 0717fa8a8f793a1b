"""Queries shared by several dashboards (filter option lists)."""

from __future__ import annotations

import polars as pl

from warehouse.scope import Scope


def products(scope: Scope) -> pl.DataFrame:
    """Products of the scope, for filter option lists (product_id, name, modality)."""
    return scope.frame(
        "products",
        "SELECT DISTINCT product_id, name, modality FROM product ORDER BY name",
    )


SPONSOR_NAME_SQL = "SELECT name FROM sponsor"


def sponsor_name(scope: Scope) -> str:
    """The scope's sponsor as named in its registry row (its partition holds only that row);
    its id when the row is missing."""
    names = scope.frame("sponsor name", SPONSOR_NAME_SQL)["name"]
    return names[0] if names.len() else str(scope.sponsor_id)
