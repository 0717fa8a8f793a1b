"""The catalogue: one meaning for every column and every number users read (DESIGN.md,
Catalogue).

- `dataset(name)`: rows a page, export or audit pack shows, the query producing them and
  their columns (label, description, format, words for codes, key columns);
- `measure(key)`: a KPI or a count, with its formula in words, source, target, completeness
  rule and the one function that computes it.

It imports only the snapshot contract, so every layer (kpis, queries, pages, audit pack) can
read it. Nothing outside it defines a column label or a measure.
"""

from warehouse.catalogue.columns import FORMATS, Column
from warehouse.catalogue.datasets import (
    DATASETS,
    SPONSOR_API_DATASETS,
    CatalogueError,
    Dataset,
    dataset,
)
from warehouse.catalogue.measures import (
    MEASURES,
    Measure,
    Target,
    capa_age_days,
    capa_open,
    capa_overdue,
)


def measure(key: str) -> Measure:
    """The catalogue's measure `key`."""
    try:
        return MEASURES[key]
    except KeyError:
        raise CatalogueError(f"no measure {key!r} in the catalogue") from None


__all__ = [
    "DATASETS",
    "FORMATS",
    "MEASURES",
    "SPONSOR_API_DATASETS",
    "CatalogueError",
    "Column",
    "Dataset",
    "Measure",
    "Target",
    "capa_age_days",
    "capa_open",
    "capa_overdue",
    "dataset",
    "measure",
]
