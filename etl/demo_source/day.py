"""One realistic day of change applied to an existing demo plant (placeholder)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path


@dataclass(frozen=True)
class DaySummary:
    day: date
    changed: dict[str, int]
    moved_batch_id: str
    from_sponsor: str
    to_sponsor: str


def simulate_day(db: Path, *, seed: int = 7, progress=None) -> DaySummary:
    raise NotImplementedError
