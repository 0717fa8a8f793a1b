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
