"""The demo plant's quality events: deviations, CAPAs, complaints, reviews and self-inspections.

Batch and facility deviations with their sponsor links and notifications, CAPAs (from
deviations, complaints, self-inspection findings and sponsor audits) and their effectiveness
checks, complaints on released batches, annual product reviews, and self-inspections with
their findings.
"""

from __future__ import annotations

from datetime import date, datetime

from etl.demo_source import presets as P
from etl.demo_source.base import DAY, SITE_ID, PlantBase, days, hours
from warehouse.contract import ROOT_CAUSES, SIX_SYSTEMS


class QualityEvents(PlantBase):
    """What the QMS records about the batches from batches.py and about the site."""

    def batch_deviations(self) -> None:
        """About 0.3 deviations per batch, mostly minor, closed before the batch's disposition."""
        rng = self.rng
        self.deviations: list[dict] = []
        self.last_deviation: dict[str, dict] = {}  # per root cause, for recurrence_of
        for b in self.batches:
            if b["_start"] > self.now - days(3) or b["_story"] not in (None, "anchor"):
                continue  # story batches get only the deviations their story tells
            for _ in range(self._poisson(0.27 * self.profile[b["sponsor_id"]].deviations)):
                aware = self.between(b["_start"], min(b["_end"], self.now - days(3)))
                cause = rng.choice(ROOT_CAUSES)
                d = self._deviation(aware, cause, self.profile[b["sponsor_id"]].closure)
                d["title"] = P.DEVIATION_TITLES[cause]
                d["_links"] = [(b["sponsor_id"], b["product_id"], b, None)]
                b["_devs"].append(d)

    def facility_deviations(self) -> None:
        """Facility/equipment deviations touch every sponsor whose batches used the train."""
        rng = self.rng
        by_train: dict[str, list[dict]] = {}
        for b in self.batches:
            by_train.setdefault(b["equipment_train"], []).append(b)
        for _ in range(max(4, len(self.batches) // 40)):
            train = rng.choice(self.trains)
            aware = self.between(self.start + days(20), self.now - days(5))
            nearby = [
                b for b in by_train[train["train_id"]] if abs((b["_start"] - aware).days) <= 12
            ]
            if not nearby:
                continue
            eq = rng.choice(train["equipment"])
            d = self._deviation(aware, rng.choice(("EQUIPMENT", "ENVIRONMENT")))
            d["title"] = rng.choice(P.FACILITY_DEVIATION_TITLES)
            sponsors: dict[str, str] = {}
            for b in nearby:
                sponsors.setdefault(b["sponsor_id"], b["product_id"])
            d["_links"] = [(sid, pid, None, eq["equipment_id"]) for sid, pid in sponsors.items()]

    def _poisson(self, lam: float) -> int:
        n, p, threshold = 0, 1.0, 2.718281828459045 ** (-lam)
        while True:
            p *= self.rng.random()
            if p <= threshold:
                return n
            n += 1

    def _deviation(self, aware: datetime, cause: str, closure: float = 1.0) -> dict:
        rng = self.rng
        r = rng.random()
        classification = "CRITICAL" if r < 0.03 else "MAJOR" if r < 0.25 else "MINOR"
        original = (aware + days(30)).date()
        extended = rng.random() < 0.08
        if rng.random() < 0.02:
            closed, status = aware + days(rng.uniform(1, 3)), "CANCELLED"
        else:
            late = extended and rng.random() < 0.7
            closed = aware + days((rng.uniform(31, 55) if late else rng.uniform(4, 29)) * closure)
            status = "CLOSED"
        prior = self.last_deviation.get(cause)
        d = {
            "deviation_id": f"DEV-{len(self.deviations) + 1:06d}",
            "deviation_number": f"DEV-{aware:%Y}-{len(self.deviations) + 1:05d}",
            "site_id": SITE_ID,
            "title": "",
            "classification": classification,
            "status": status,
            "awareness_at": aware,
            "original_due": original,
            "current_due": original + days(30) if extended else original,
            "extension_count": 1 if extended else 0,
            "root_cause_category": cause,
            "recurrence_of": prior["deviation_id"] if prior and rng.random() < 0.1 else None,
            "_closed": closed.replace(microsecond=0),
        }
        self.deviations.append(d)
        self.last_deviation[cause] = d
        return d

    def finalize_deviations(self) -> None:
        """Status at the clock, and one link per affected sponsor notified within its deadline."""
        rng = self.rng
        self.links: list[dict] = []
        for d in self.deviations:
            closed = self.past(d["_closed"])
            if closed is None:
                age = self.now - d["awareness_at"]
                d["status"] = (
                    "OPEN"
                    if age < days(4)
                    else "ASSESSMENT"
                    if age < days(8)
                    else "INVESTIGATION"
                    if age < days(20)
                    else "PENDING_QA"
                )
                d["root_cause_category"] = d["root_cause_category"] if age > days(8) else None
            d["closed_at"] = closed
            for sponsor_id, product_id, b, equipment_id in d["_links"]:
                hours_allowed = self.deadline[sponsor_id][f"DEVIATION_{d['classification']}"]
                notified = d["awareness_at"] + hours(min(hours_allowed, 48) * rng.uniform(0.1, 0.7))
                notified = self.past(notified.replace(microsecond=0))
                self.links.append(
                    self.add(
                        "deviation_link",
                        link_id=f"DL-{len(self.links) + 1:06d}",
                        deviation_id=d["deviation_id"],
                        sponsor_id=sponsor_id,
                        product_id=product_id,
                        batch_id=b["batch_id"] if b else None,
                        equipment_id=equipment_id,
                        notified_at=notified,
                        updated_at=self.seen(d["awareness_at"], notified),
                        _deviation=d,
                    )
                )
            d["updated_at"] = self.seen(d["awareness_at"], closed)
            self.rows.setdefault("deviation", []).append(d)

    def capa(
        self,
        source: str,
        opened: datetime,
        title: str,
        refs: dict,
        sponsors: list[str],
        close_fraction: float | None = None,
    ) -> dict:
        """A CAPA closed by its original due, or still open with its due ahead of the clock."""
        rng = self.rng
        opened = opened.replace(microsecond=0)
        due = opened + days(rng.randint(45, 120))
        closed = opened + (due - opened) * (close_fraction or rng.uniform(0.3, 0.9))
        closed = self.past(closed.replace(microsecond=0))
        if closed is None:
            due = max(due, self.now + days(rng.randint(10, 40)))
            progress = (self.now - opened) / (due - opened)
            status = (
                "PLAN"
                if progress < 0.3
                else "IMPLEMENTING"
                if progress < 0.8
                else "PENDING_EFFECTIVENESS"
            )
        else:
            status = "CLOSED"
        n = len(self.rows.get("capa", [])) + 1
        row = self.add(
            "capa",
            capa_id=f"CAPA-{n:06d}",
            capa_number=f"CAPA-{opened:%Y}-{n:05d}",
            source_type=source,
            deviation_id=refs.get("deviation_id"),
            oos_id=refs.get("oos_id"),
            complaint_id=refs.get("complaint_id"),
            finding_id=refs.get("finding_id"),
            title=title,
            status=status,
            opened_at=opened,
            original_due=due.date(),
            current_due=due.date(),
            closed_at=closed,
            updated_at=self.seen(opened, closed),
            _sponsors=sponsors,
        )
        if closed is not None and rng.random() < 0.6:
            checked = closed - days(rng.uniform(1, 5))
            row["_check"] = self.add(
                "capa_effectiveness",
                check_id=f"CE-{n:06d}",
                capa_id=row["capa_id"],
                checked_at=max(checked, opened + DAY).replace(microsecond=0),
                result="EFFECTIVE",
                updated_at=max(checked, opened + DAY).replace(microsecond=0),
            )
        return row

    def deviation_capas(self) -> None:
        rng = self.rng
        rate = {"CRITICAL": 1.0, "MAJOR": 0.6, "MINOR": 0.08}
        for d in self.deviations:
            if d["status"] == "CANCELLED" or rng.random() >= rate[d["classification"]]:
                continue
            opened = d["awareness_at"] + days(rng.uniform(3, 10))
            if opened >= self.now - DAY:
                continue
            sponsors = sorted({link[0] for link in d["_links"]})
            self.capa(
                "DEVIATION",
                opened,
                f"Prevent recurrence: {d['title'].lower()}",
                {"deviation_id": d["deviation_id"]},
                sponsors,
            )

    def complaints(self) -> None:
        rng = self.rng
        released = [b for b in self.batches if b["status"] == "SPONSOR_RELEASED"]
        for b in released:
            if rng.random() >= 0.04:
                continue
            received = b["sponsor_decided_at"] + days(rng.uniform(20, 300))
            if received >= self.now - DAY:
                continue
            critical = rng.random() < 0.08
            deadline = self.deadline[b["sponsor_id"]]["COMPLAINT_CRITICAL"]
            notified = received + hours(
                deadline * rng.uniform(0.1, 0.8) if critical else rng.uniform(24, 120)
            )
            closed = self.past(received + days(rng.uniform(10, 60)))
            n = len(self.rows.get("complaint", [])) + 1
            row = self.add(
                "complaint",
                complaint_id=f"CMP-{n:05d}",
                complaint_number=f"QC-{received:%Y}-{n:04d}",
                product_id=b["product_id"],
                batch_id=b["batch_id"],
                received_at=received.replace(microsecond=0),
                is_critical=int(critical),
                confirmed=int(rng.random() < 0.4),
                closed_at=closed.replace(microsecond=0) if closed else None,
                notified_at=self.past(notified.replace(microsecond=0)),
            )
            row["updated_at"] = self.seen(row["received_at"], row["closed_at"], row["notified_at"])
            if row["confirmed"] and (critical or rng.random() < 0.3):
                self.capa(
                    "COMPLAINT",
                    row["received_at"] + days(5),
                    "Address complaint root cause",
                    {"complaint_id": row["complaint_id"]},
                    [b["sponsor_id"]],
                )

    def product_reviews(self) -> None:
        rng = self.rng
        years: dict[str, set[int]] = {}
        for b in self.batches:
            if b["mfg_start"] is not None:
                years.setdefault(b["product_id"], set()).add(b["mfg_start"].year)
        for product_id, made in years.items():
            for year in sorted(made):
                if year >= self.now.year:
                    continue
                due = date(year + 1, 3, 31)
                done = due - days(rng.randint(-45, 40))
                completed = done if done < self.now.date() else None
                self.add(
                    "product_review",
                    review_id=f"APR-{product_id}-{year}",
                    product_id=product_id,
                    review_year=year,
                    original_due=due,
                    completed_at=completed,
                    updated_at=self.seen(datetime(year + 1, 1, 5), completed),
                )

    def self_inspections(self) -> None:
        rng = self.rng
        at = self.start + days(20)
        n = 0
        auditors = ("Helena Marsh", "Tomas Lind", "Priya Raman")
        while at < self.now + days(90):
            area = SIX_SYSTEMS[n % len(SIX_SYSTEMS)]
            n += 1
            performed = at + days(rng.randint(0, 7))
            performed = performed if performed < self.now else None
            inspection_id = f"SI-{n:04d}"
            self.add(
                "self_inspection",
                inspection_id=inspection_id,
                site_id=SITE_ID,
                area=area,
                scheduled_at=at.date(),
                performed_at=performed.date() if performed else None,
                lead_auditor=auditors[n % 3],
                updated_at=self.seen(at - days(60), performed),
            )
            if performed is not None:
                for k in range(rng.randint(0, 4)):
                    product = rng.choice(self.made_products) if rng.random() < 0.5 else None
                    major = rng.random() < 0.2
                    status = "CLOSED" if performed < self.now - days(90) else "OPEN"
                    finding = self.add(
                        "inspection_finding",
                        finding_id=f"{inspection_id}-F{k + 1}",
                        inspection_id=inspection_id,
                        product_id=product["product_id"] if product else None,
                        classification="MAJOR" if major else "MINOR",
                        description=f"{area.replace('_', ' ').title()} observation {k + 1}",
                        status=status,
                        updated_at=self.seen(performed + days(2)),
                    )
                    if major and performed < self.now - days(3):
                        sponsors = [product["sponsor_id"]] if product else []
                        self.capa(
                            "SELF_INSPECTION",
                            performed + days(2),
                            f"Self-inspection finding {finding['finding_id']}",
                            {"finding_id": finding["finding_id"]},
                            sponsors,
                        )
            at += days(61)
        for k in range(2 * self.preset.years):
            opened = self.start + days(180 * k + rng.randint(0, 60))
            if opened < self.now - days(3):
                self.capa("AUDIT", opened, "Sponsor audit observation", {}, [])
