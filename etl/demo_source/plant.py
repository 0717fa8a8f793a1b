"""The clean demo plant: master data and the operational history up to the plant's clock.

Everything here obeys the clean-baseline rules (contemporaneous, verified, trained, calibrated,
approved suppliers, timely notifications, CAPAs on time); `anomalies.py` then breaks chosen
records on purpose. Rows are dicts keyed by contract column names; keys starting with "_"
carry generation state and are never written.
"""

from __future__ import annotations

from datetime import datetime, time

from etl.demo_source.base import DAY, SITE_ID, days, hours
from etl.demo_source.batches import MFG_DAYS, Batches, Pin
from etl.demo_source.master_data import MasterData
from etl.demo_source.quality_events import QualityEvents
from warehouse.contract import (
    TECH_TRANSFER_MILESTONES,
)

# What stories.py and anomalies.py import from here.
__all__ = ["DAY", "MFG_DAYS", "Pin", "Plant", "days", "hours"]


class Plant(MasterData, Batches, QualityEvents):
    """Builds every table's rows for one preset, seed and clock."""

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

    def change_controls(self) -> None:
        """Product changes (one impact) and site changes impacting every sponsor on site."""
        rng = self.rng
        per_year = 20 * max(1, self.preset.sponsors // 10)
        weights = {
            "SOP": 3,
            "EQUIPMENT": 2,
            "PROCESS": 3,
            "SUPPLIER": 1,
            "ANALYTICAL_METHOD": 2,
            "FACILITY": 1,
        }
        kinds = [k for k, w in weights.items() for _ in range(w)]
        for _ in range(per_year * self.preset.years):
            ctype = rng.choice(kinds)
            opened = self.between(self.start, self.now - days(2))
            if ctype == "FACILITY":
                targets = [(s["sponsor_id"], None) for s in self.sponsors]
                title = "Facility: HVAC upgrade in grade C corridor"
            elif ctype == "EQUIPMENT":
                train = rng.choice(self.trains)
                targets = [(p["sponsor_id"], p["product_id"]) for p in train["products"]]
                title = f"Replace control system of train {train['train_id']}"
            else:
                product = rng.choice(self.made_products)
                targets = [(product["sponsor_id"], product["product_id"])]
                title = f"{ctype.replace('_', ' ').title()} change for {product['name']}"
            self.change_control(ctype, opened, title, targets)

    def change_control(
        self,
        ctype: str,
        opened: datetime,
        title: str,
        targets: list[tuple[str, str | None]],
        reject: bool = True,
    ) -> tuple[dict, list[dict]]:
        rng = self.rng
        products = {p["product_id"]: p for p in self.products}
        n = len(self.rows.get("change_control", [])) + 1
        change_id = f"CC-{n:05d}"
        planned = opened + days(rng.randint(30, 120))
        # Only a sponsor whose approval is needed can reject: the first such impact does.
        approvers = [
            k for k, (s, _) in enumerate(targets) if self.obligation[s][ctype] == "PRIOR_APPROVAL"
        ]
        rejecter = approvers[0] if approvers else None
        rejected = rng.random() < 0.03 and reject and rejecter is not None
        ready = planned
        impacts = []
        for k, (sponsor_id, product_id) in enumerate(targets):
            obligation = self.obligation[sponsor_id][ctype]
            notified = opened + days(rng.uniform(3, 10)) if obligation != "NONE" else None
            decided = (
                notified + days(rng.uniform(3, 20)) if obligation == "PRIOR_APPROVAL" else None
            )
            if sponsor_id in self.prompt_sponsors and notified is not None:
                notified = opened + days(rng.uniform(0.2, 1))  # changes open >= 2 days ago
                if decided is not None:
                    decided = notified + min(days(rng.uniform(0.5, 2)), (self.now - notified) * 0.7)
            decision = None
            if obligation == "PRIOR_APPROVAL":
                decision = "REJECTED" if rejected and k == rejecter else "APPROVED"
            for instant in (notified, decided):
                if instant is not None:
                    ready = max(ready, instant + DAY)
            impacts.append(
                {
                    "impact_id": f"{change_id}-I{k + 1:03d}",
                    "change_id": change_id,
                    "sponsor_id": sponsor_id,
                    "product_id": product_id,
                    "obligation": obligation,
                    "notified_at": notified,
                    "decision": decision,
                    "decided_at": decided,
                }
            )
        effective = None if rejected else (ready + days(rng.randint(0, 10))).date()
        for imp in impacts:
            imp["notified_at"] = self.past(
                imp["notified_at"] and imp["notified_at"].replace(microsecond=0)
            )
            imp["decided_at"] = self.past(
                imp["decided_at"] and imp["decided_at"].replace(microsecond=0)
            )
            if imp["obligation"] == "PRIOR_APPROVAL" and imp["decided_at"] is None:
                imp["decision"] = "PENDING"
        now_d = self.now.date()
        if rejected:
            status = "REJECTED" if impacts[rejecter]["decided_at"] else "SPONSOR_REVIEW"
        elif effective is not None and effective < now_d:
            age = (now_d - effective).days
            status = "CLOSED" if age > 60 else "EFFECTIVENESS" if age > 20 else "IMPLEMENTED"
        elif all(i["decision"] in (None, "APPROVED") for i in impacts) and (
            any(i["notified_at"] for i in impacts)
            or all(i["obligation"] == "NONE" for i in impacts)
        ):
            status = "APPROVED"
        elif any(i["notified_at"] for i in impacts):
            status = "SPONSOR_REVIEW"
        else:
            status = "ASSESSMENT" if self.now - opened > days(2) else "DRAFT"
        if effective is not None and effective >= now_d:
            effective = None
        change = self.add(
            "change_control",
            change_id=change_id,
            change_number=f"CC-{opened:%Y}-{n:04d}",
            site_id=SITE_ID,
            title=title,
            change_type=ctype,
            risk_class=rng.choice(("HIGH", "MEDIUM", "MEDIUM", "LOW", "LOW")),
            status=status,
            opened_at=opened.replace(microsecond=0),
            planned_effective=planned.date(),
            actual_effective=effective,
            updated_at=None,
        )
        category = {
            "PRIOR_APPROVAL": "PRIOR_APPROVAL",
            "NOTIFY": "NOTIFICATION",
            "NONE": "RECORDED",
        }
        latest = [change["opened_at"], effective]
        impact_rows = []
        for imp in impacts:
            imp["updated_at"] = self.seen(
                change["opened_at"], imp["notified_at"], imp["decided_at"]
            )
            latest.append(imp["updated_at"])
            impact_rows.append(self.add("change_impact", **imp))
            if imp["product_id"]:
                markets = products[imp["product_id"]]["markets"].split(";")
            else:
                markets = ["US", "EU"]
            for m in markets:
                self.add(
                    "change_market",
                    change_market_id=f"{imp['impact_id']}-{m}",
                    impact_id=imp["impact_id"],
                    market=m,
                    reporting_category=category[imp["obligation"]],
                    updated_at=imp["updated_at"],
                )
        change["updated_at"] = self.seen(*latest)
        return change, impact_rows
