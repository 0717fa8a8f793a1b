"""Training of the operators who worked on one sponsor's batches, on its products' SOPs.

The partition already holds only operators who performed or verified this sponsor's batch
events (ETL redaction); the queries narrow that to the chosen products and period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from warehouse import clock
from warehouse.catalogue.columns import TRAINING_STATUSES
from warehouse.filters import Filters
from warehouse.scope import Scope

# Convention: a training falls "due" this many days before its due date.
DUE_SOON_DAYS = 30
OPERATOR_TRAINING_SQL = """
WITH events AS (
    SELECT e.performed_by, e.verified_by, b.product_id
    FROM batch_event AS e
    JOIN batch AS b USING (batch_id)
    WHERE (len($products::VARCHAR[]) = 0 OR list_contains($products::VARCHAR[], b.product_id))
      AND e.performed_at::DATE BETWEEN $start AND $end
),
worked AS (
    SELECT performed_by AS operator_id, product_id FROM events
    UNION
    SELECT verified_by, product_id FROM events WHERE verified_by IS NOT NULL
),
-- The SOPs each operator needs: those of the products whose batches they worked on.
needed AS (
    SELECT DISTINCT w.operator_id, s.sop_id, s.sop_number, s.title, s.version
    FROM worked AS w
    JOIN product_sop AS ps USING (product_id)
    JOIN sop AS s USING (sop_id)
),
latest AS (
    SELECT *
    FROM training_record
    QUALIFY row_number() OVER (
        PARTITION BY operator_id, sop_id ORDER BY trained_at DESC, training_id DESC) = 1
)
SELECT
    o.name AS operator,
    o.role,
    s.sop_number,
    s.title AS sop_title,
    s.version AS sop_version,
    t.sop_version AS trained_version,
    t.trained_at,
    t.due_at,
    CASE WHEN t.training_id IS NULL THEN 'MISSING'
         WHEN t.due_at < $today::DATE THEN 'OVERDUE'
         WHEN t.due_at < $today::DATE + to_days($due_soon_days::INTEGER) THEN 'DUE'
         ELSE 'CURRENT' END AS status
FROM needed AS s
JOIN operator AS o USING (operator_id)
LEFT JOIN latest AS t ON t.operator_id = s.operator_id AND t.sop_id = s.sop_id
ORDER BY o.name, s.sop_number
"""


def operator_training(scope: Scope, filters: Filters, today: date | None = None) -> pl.DataFrame:
    """Each operator who worked on the chosen batches × each SOP of the products they made."""
    params = {**filters.params(), "today": today or clock.today(), "due_soon_days": DUE_SOON_DAYS}
    return scope.frame("operator training", OPERATOR_TRAINING_SQL, params)


TRAINING_GAPS_SQL = """
SELECT
    b.batch_number,
    p.name AS product,
    e.seq,
    e.step_name,
    e.event_type,
    o.name AS operator,
    e.performed_at,
    e.event_id
FROM batch_event AS e
JOIN batch AS b USING (batch_id)
JOIN product AS p ON p.product_id = b.product_id
LEFT JOIN operator AS o ON o.operator_id = e.performed_by
WHERE e.training_gap
  AND (len($products::VARCHAR[]) = 0 OR list_contains($products::VARCHAR[], b.product_id))
  AND e.performed_at::DATE BETWEEN $start AND $end
ORDER BY e.performed_at DESC, b.batch_number, e.seq
"""


def training_gaps(scope: Scope, filters: Filters) -> pl.DataFrame:
    """Batch steps performed by an operator whose training was not current at the time."""
    return scope.frame("training gaps", TRAINING_GAPS_SQL, filters.params())


def status_counts(training: pl.DataFrame) -> dict[str, int]:
    """Operator × SOP pairs per training status, every status present (zero when none)."""
    counts = dict(training.group_by("status").len().iter_rows())
    return {status: int(counts.get(status, 0)) for status in TRAINING_STATUSES}


@dataclass(frozen=True)
class TrainingPage:
    """Everything the training page shows, from one call: frames, counts, chart data."""

    gaps: pl.DataFrame  # dataset "training_gaps"
    training: pl.DataFrame  # dataset "training_matrix"
    operators: int
    status_counts: dict[str, int]  # every status, in TRAINING_STATUSES order


def page_model(scope: Scope, filters: Filters, today: date) -> TrainingPage:
    """The training page's model: steps done untrained, the operator × SOP matrix, its
    operators and pairs per status."""
    training = operator_training(scope, filters, today)
    return TrainingPage(
        gaps=training_gaps(scope, filters),
        training=training,
        operators=training["operator"].n_unique(),
        status_counts=status_counts(training),
    )
