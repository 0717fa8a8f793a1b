"""Batches of one sponsor: the list with both dispositions and the status funnel (the cycle-time
trend is KPI 13 in warehouse.kpis)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from warehouse import kpis
from warehouse.catalogue.columns import BATCH_STATUS_WORDS
from warehouse.contract import BATCH_STATUSES
from warehouse.filters import Filters
from warehouse.scope import Scope

BATCH_LIST_SQL = """
SELECT b.batch_id, b.batch_number, p.name AS product, b.status,
       b.mfg_start, b.mfg_end,
       b.cmo_decision, b.cmo_decided_at, b.sponsor_decision, b.sponsor_decided_at,
       b.cycle_time_days,
       CASE WHEN b.awaiting_sponsor_release
            THEN date_diff('day', b.cmo_decided_at::DATE, $today::DATE) END
           AS awaiting_release_days
FROM batch AS b
JOIN product AS p USING (product_id)
WHERE b.mfg_start::DATE BETWEEN $start AND $end
  AND (len($products::VARCHAR[]) = 0 OR list_contains($products::VARCHAR[], b.product_id))
ORDER BY b.mfg_start DESC, b.batch_number
"""

# The catalogue's words for the lifecycle codes, for headings and pickers.
STATUS_WORDS = BATCH_STATUS_WORDS


def batch_list(scope: Scope, filters: Filters, today: date) -> pl.DataFrame:
    """Batches whose manufacture started in the period, newest first."""
    return scope.frame("batch list", BATCH_LIST_SQL, {**filters.params(), "today": today})


def status_funnel(batches: pl.DataFrame) -> pl.DataFrame:
    """Batches per status in lifecycle order (DOMAIN.md, Batch lifecycle); zeros omitted."""
    order = pl.DataFrame({"status": BATCH_STATUSES}).with_row_index("stage")
    counts = batches.group_by("status").agg(pl.len().alias("batches"))
    return counts.join(order, on="status").sort("stage").drop("stage")


@dataclass(frozen=True)
class BatchesPage:
    """Everything the batches page shows, from one call: the list, funnel, trend and picker."""

    batches: pl.DataFrame  # dataset "batches"
    funnel: pl.DataFrame  # status, batches in lifecycle order (dataset "batch_status")
    cycle_time: pl.DataFrame  # month, median_days, batches (KPI 13)
    batch_numbers: dict[str, str]  # batch_id -> batch_number: the batch-record picker's options


def page_model(scope: Scope, filters: Filters, today: date) -> BatchesPage:
    """The batches page's model: batches started in the period, their status funnel, the
    monthly disposition cycle time and the batch-record picker's options."""
    batches = batch_list(scope, filters, today)
    return BatchesPage(
        batches=batches,
        funnel=status_funnel(batches),
        cycle_time=kpis.cycle_time_trend(batches),
        batch_numbers=dict(zip(batches["batch_id"], batches["batch_number"], strict=True)),
    )
