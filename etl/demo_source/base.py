"""What every domain of the demo plant shares: the site, time units and `PlantBase`.

`PlantBase` holds one plant's preset, seeded random stream, clock and rows, and the helpers through
which every domain adds rows. Each domain is a mixin on it (master_data.py, batches.py,
quality_events.py, change_controls.py, tech_transfer.py); plant.py joins them into `Plant`.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta

from etl.demo_source import presets as P

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
SITE_ID = "RDG"


def days(n: float) -> timedelta:
    return timedelta(days=n)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


class PlantBase:
    """One plant's preset, random stream, clock and rows, and the helpers that write rows."""

    # Master data that the other domains read: set by MasterData.build_master_data.
    sponsors: list[dict]
    profile: dict[str, P.Profile]
    deadline: dict[str, dict[str, int]]  # sponsor -> notifiable event -> hours
    obligation: dict[str, dict[str, str]]  # sponsor -> change type -> obligation
    qa: list[str]
    products: list[dict]
    made_products: list[dict]
    trains: list[dict]
    material_supplier: dict[str, dict]  # material name -> its approved supplier

    def __init__(self, preset: P.Preset, seed: int, as_of: date) -> None:
        self.preset = preset
        self.rng = random.Random(seed)
        self.now = datetime.combine(as_of, time())  # nothing is recorded on as_of itself
        self.start = self.now - days(365 * preset.years)
        self.rows: dict[str, list] = {}
        self.batches: list[dict] = []
        # Sponsors that answer change notices within days, so nothing of theirs lingers
        # pending apart from the change their story puts in front of them.
        self.prompt_sponsors: set[str] = set()

    # -- helpers -------------------------------------------------------------------------
    def add(self, table: str, **row) -> dict:
        self.rows.setdefault(table, []).append(row)
        return row

    def next_id(self, table: str, prefix: str) -> str:
        return f"{prefix}-{len(self.rows.get(table, ())) + 1:07d}"

    def between(self, lo: datetime, hi: datetime) -> datetime:
        """A whole-second instant uniformly in [lo, hi]."""
        span = max(0, int((hi - lo).total_seconds()))
        return lo + timedelta(seconds=self.rng.randint(0, span))

    def seen(self, *instants: datetime | date | None) -> datetime:
        """updated_at: the latest of the given instants that has happened by the clock."""
        known = [
            i if isinstance(i, datetime) else datetime.combine(i, time())
            for i in instants
            if i is not None
        ]
        return min(max(known), self.now - timedelta(seconds=1))

    def past(self, instant: datetime | None) -> datetime | None:
        return instant if instant is not None and instant < self.now else None
