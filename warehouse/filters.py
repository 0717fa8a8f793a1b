"""The filters every dashboard query takes: products and a date range."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from warehouse import clock


@dataclass(frozen=True)
class Filters:
    start: date
    end: date
    products: tuple[str, ...] = ()  # empty: every product of the scope

    @classmethod
    def last_days(cls, days: int, today: date | None = None) -> Filters:
        end = today or clock.today()
        return cls(start=end - timedelta(days=days), end=end)

    def params(self) -> dict[str, object]:
        """Bound parameters shared by the named queries: $start, $end, $products."""
        return {"start": self.start, "end": self.end, "products": list(self.products)}

    def describe(self) -> dict[str, object]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(),
                "products": list(self.products)}  # fmt: skip
