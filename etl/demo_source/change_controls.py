"""The demo plant's change controls: changes with their sponsor impacts and markets.

Product, equipment and site changes; each affected sponsor is notified or asked for approval
as its quality agreement obliges (master_data.py), and the change's status follows from those
answers at the clock.
"""

from __future__ import annotations

from datetime import datetime

from etl.demo_source.base import DAY, SITE_ID, PlantBase, days


class ChangeControls(PlantBase):
    """Change controls, their impacts per sponsor and product, and the markets they touch."""

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
