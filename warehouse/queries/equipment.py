"""Equipment that ran one sponsor's batches and suppliers of the lots they consumed.

Uses are this sponsor's own equipment_usage rows (another client's uses never reach the
partition); a use is in view when it started in the period on a batch of a chosen product.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from warehouse import clock
from warehouse.filters import Filters
from warehouse.scope import Scope

EQUIPMENT_STATUS_SQL = """
WITH uses AS (
    SELECT u.*
    FROM equipment_usage AS u
    JOIN batch AS b USING (batch_id)
    WHERE (len($products::VARCHAR[]) = 0 OR list_contains($products::VARCHAR[], b.product_id))
      AND u.started_at::DATE BETWEEN $start AND $end
),
history AS (
    SELECT
        equipment_id,
        max(performed_at) FILTER (WHERE event_type = 'QUALIFICATION' AND result = 'PASS')
            AS last_qualification,
        max(performed_at) FILTER (WHERE event_type = 'CALIBRATION' AND result = 'PASS')
            AS last_calibration
    FROM equipment_event
    GROUP BY equipment_id
)
SELECT
    q.name AS equipment,
    q.equipment_type,
    q.train,
    q.status,
    h.last_qualification,
    h.last_calibration,
    q.calibration_due,
    coalesce(q.calibration_due < $today::DATE, false) AS calibration_overdue,
    count(*) AS uses,
    count(*) FILTER (WHERE NOT (u.calibration_valid_at_use AND u.qualification_valid_at_use))
        AS uses_not_valid
FROM uses AS u
JOIN equipment AS q USING (equipment_id)
LEFT JOIN history AS h USING (equipment_id)
GROUP BY ALL
ORDER BY uses_not_valid DESC, q.name
"""


def equipment_status(scope: Scope, filters: Filters, today: date | None = None) -> pl.DataFrame:
    """Equipment used in view: current status, calibration due, uses and invalid uses."""
    params = {**filters.params(), "today": today or clock.today()}
    return scope.frame("equipment status", EQUIPMENT_STATUS_SQL, params)


INVALID_USES_SQL = """
SELECT
    q.name AS equipment,
    b.batch_number,
    p.name AS product,
    u.started_at,
    u.calibration_valid_at_use,
    u.qualification_valid_at_use,
    u.usage_id
FROM equipment_usage AS u
JOIN batch AS b USING (batch_id)
JOIN product AS p ON p.product_id = b.product_id
JOIN equipment AS q ON q.equipment_id = u.equipment_id
WHERE NOT (u.calibration_valid_at_use AND u.qualification_valid_at_use)
  AND (len($products::VARCHAR[]) = 0 OR list_contains($products::VARCHAR[], b.product_id))
  AND u.started_at::DATE BETWEEN $start AND $end
ORDER BY u.started_at DESC, q.name
"""


def invalid_uses(scope: Scope, filters: Filters) -> pl.DataFrame:
    """Uses of equipment whose calibration or qualification was not valid when it started."""
    return scope.frame("equipment used out of calibration", INVALID_USES_SQL, filters.params())


SUPPLIER_LOTS_SQL = """
SELECT
    s.name AS supplier,
    s.status AS supplier_status,
    l.lot_id,
    l.material_name,
    l.received_at,
    l.release_status,
    l.coa_received,
    count(DISTINCT b.batch_id) AS batches,
    string_agg(DISTINCT b.batch_number, '; ' ORDER BY b.batch_number) AS batch_numbers
FROM material_consumption AS mc
JOIN batch AS b USING (batch_id)
JOIN material_lot AS l USING (lot_id)
JOIN supplier AS s ON s.supplier_id = l.supplier_id
WHERE (len($products::VARCHAR[]) = 0 OR list_contains($products::VARCHAR[], b.product_id))
  AND coalesce(b.mfg_start, l.received_at)::DATE BETWEEN $start AND $end
GROUP BY ALL
ORDER BY s.name, l.received_at DESC, l.lot_id
"""


def supplier_lots(scope: Scope, filters: Filters) -> pl.DataFrame:
    """Material lots consumed by this sponsor's batches in view, with their supplier."""
    return scope.frame("supplier lots", SUPPLIER_LOTS_SQL, filters.params())


def suppliers(lots: pl.DataFrame) -> pl.DataFrame:
    """Per supplier: qualification status, lots consumed and materials, worst status first."""
    order = {"DISQUALIFIED": 0, "CONDITIONAL": 1, "APPROVED": 2}
    return (
        lots.group_by("supplier", "supplier_status")
        .agg(
            pl.col("lot_id").n_unique().alias("lots_consumed"),
            pl.col("material_name").unique().sort().str.join("; ").alias("materials"),
        )
        .with_columns(pl.col("supplier_status").replace_strict(order, default=3).alias("_rank"))
        .sort("_rank", "supplier")
        .drop("_rank")
    )


def unfit_reason(use: dict, what: str) -> str | None:
    """Why a use's `what` ("calibration" or "qualification") was not valid, in words, from the
    ETL's latest_<what>_* columns of equipment_usage (the latest one before the use); None
    when it was valid or the row does not carry them."""
    if use.get(f"{what}_valid_at_use") is not False or f"latest_{what}_result" not in use:
        return None
    result, at, due = (use[f"latest_{what}_{part}"] for part in ("result", "at", "due"))
    if result is None:
        return f"no {what} before the use"
    if result != "PASS":
        return f"latest {what} on {at:%Y-%m-%d} failed"
    if due is None:
        return f"latest {what} on {at:%Y-%m-%d} set no due date"
    return f"{what} overdue since {due:%Y-%m-%d}"


@dataclass(frozen=True)
class EquipmentPage:
    """Everything the equipment & suppliers page shows, from one call: frames, counts, chart
    data."""

    equipment: pl.DataFrame  # dataset "equipment"
    calibration_overdue: int  # measure "calibration_overdue"
    invalid_uses: pl.DataFrame  # dataset "equipment_invalid_uses"
    status_chart: pl.DataFrame  # status, equipment (how many)
    lots: pl.DataFrame  # dataset "material_lots"
    suppliers: pl.DataFrame  # dataset "suppliers"
    unapproved_suppliers: list[tuple[str, str]]  # (supplier, supplier_status code), not APPROVED


def page_model(scope: Scope, filters: Filters, today: date) -> EquipmentPage:
    """The equipment & suppliers page's model: equipment used in view and its invalid uses,
    equipment per status, lots consumed and their suppliers, those not fully approved."""
    equipment = equipment_status(scope, filters, today)
    lots = supplier_lots(scope, filters)
    per_supplier = suppliers(lots)
    unapproved = per_supplier.filter(pl.col("supplier_status") != "APPROVED")
    return EquipmentPage(
        equipment=equipment,
        calibration_overdue=int(equipment["calibration_overdue"].sum()),
        invalid_uses=invalid_uses(scope, filters),
        status_chart=equipment.group_by("status").len("equipment").sort("status"),
        lots=lots,
        suppliers=per_supplier,
        unapproved_suppliers=unapproved.select("supplier", "supplier_status").rows(),
    )
