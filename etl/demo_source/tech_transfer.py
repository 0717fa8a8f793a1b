"""The demo plant's technology transfers and the master batch records they produce.

One completed transfer project for each product in production and active ones at every phase
for products not made yet, with their milestones; and each product's master batch record
versions (the newest approved or in draft, older ones superseded).
"""

from __future__ import annotations

from datetime import datetime, time

from etl.demo_source.base import PlantBase, days
from warehouse.contract import TECH_TRANSFER_MILESTONES


class TechTransfer(PlantBase):
    """Bringing products into the plant: transfer projects and master batch records."""

    def tech_transfers(self) -> None:
        """A completed transfer for each made product; active ones at every phase."""
        rng = self.rng
        first: dict[str, datetime] = {}
        for b in self.batches:
            first.setdefault(b["product_id"], b["_start"])
        weeks = (0, 2, 4, 7, 9, 11, 13, 15, 18, 22, 26, 40)
        in_transfer = [p for p in self.products if p["product_id"] not in first]
        for n, product in enumerate(self.products):
            pid = product["product_id"]
            if pid in first:
                signed = first[pid] - days(7 * 22 + rng.randint(0, 30))
                status, reached = "COMPLETED", len(weeks)
            else:
                k = in_transfer.index(product)
                reached = 1 + (k * 2) % (len(weeks) - 1)
                signed = self.now - days(7 * weeks[reached] + rng.randint(3, 10))
                status = "ON_HOLD" if k == 2 else "ACTIVE"
            project_id = f"TT-{n + 1:04d}"
            last = datetime.combine(signed.date(), time())
            for seq, (milestone, week) in enumerate(
                zip(TECH_TRANSFER_MILESTONES, weeks, strict=True)
            ):
                planned = (signed + days(7 * week)).date()
                actual = planned + days(rng.randint(-3, 14)) if seq < reached else None
                if actual is not None and actual >= self.now.date():
                    actual = None
                if actual is not None:
                    last = max(last, datetime.combine(actual, time()))
                self.add(
                    "tt_milestone",
                    milestone_id=f"{project_id}-{seq + 1:02d}",
                    project_id=project_id,
                    milestone=milestone,
                    seq=seq,
                    planned_at=planned,
                    actual_at=actual,
                    updated_at=self.seen(signed, actual),
                )
            self.add(
                "tech_transfer",
                project_id=project_id,
                product_id=pid,
                contract_signed_at=signed.date(),
                status=status,
                updated_at=self.seen(last),
            )

    def master_batch_records(self) -> None:
        rng = self.rng
        for product in self.products:
            versions = rng.randint(1, 3)
            approved = self.start - days(rng.randint(60, 200))
            for v in range(1, versions + 1):
                newest = v == versions
                draft = newest and v > 1 and rng.random() < 0.3
                status = "DRAFT" if draft else "APPROVED" if newest else "SUPERSEDED"
                self.add(
                    "master_batch_record",
                    mbr_id=f"MBR-{product['_code']}-{v}",
                    product_id=product["product_id"],
                    version=v,
                    status=status,
                    approved_at=None if draft else approved,
                    updated_at=self.seen(approved),
                )
                approved += days(rng.randint(150, 300 * self.preset.years // 3))
                approved = min(approved, self.now - days(5))
