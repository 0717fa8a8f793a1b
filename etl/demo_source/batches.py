"""The demo plant's batches: the schedule of every train, and each batch's history.

Campaigns and their batches (with the pins that stories.py puts on the schedule), QC and
decision timelines, the status and visible fields at the clock, equipment usage with changeover
cleaning, material lots and their consumption, and in-process, release and stability results.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime, timedelta

from etl.demo_source import presets as P
from etl.demo_source.base import HOUR, SITE_ID, PlantBase, days, hours

# Manufacturing duration in days per modality (low, high).
MFG_DAYS = {"OSD": (1.5, 3.0), "BIOLOGIC": (5.0, 9.0), "STERILE_FILL_FINISH": (2.0, 4.0)}
DISPENSING_HOURS = 2  # the first manufacturing step follows dispensing (events.py)
RECENT_DAYS = 35  # campaigns rotate over sponsors from here on
PLANNED_DAYS = 7  # how far ahead batches are planned


@dataclass(frozen=True)
class Pin:
    """A batch that must start at `start` on its train (a story batch or today's anchor)."""

    start: datetime
    length: timedelta
    product: dict | None  # None: the train's least-served sponsor, as any recent batch
    story: str


class Batches(PlantBase):
    """Production on the trains from master_data.py, and what QC and QA record of it."""

    def schedule_batches(self, pins: dict[str, list[Pin]] | None = None) -> None:
        """Campaigns on each train back to back; a changeover between every two batches.

        In the last RECENT_DAYS and the week ahead campaigns are single batches of the train's
        least-served sponsor, so every sponsor has work in flight. A pinned batch takes its
        slot whenever the next batch would run into it (the train idles until then).
        """
        rng = self.rng
        horizon = self.now + days(PLANNED_DAYS)
        window = self.now - days(RECENT_DAYS)
        recent: dict[str, int] = {}
        serial: dict[str, int] = {}
        for train in self.trains:
            waiting = sorted((pins or {}).get(train["train_id"], []), key=lambda pin: pin.start)
            at = self.start + days(rng.uniform(0, 3))
            previous = None
            campaign = 0
            while at < horizon:
                choices = [p for p in train["products"] if p is not previous] or train["products"]
                if at >= window:
                    ranked = [(recent.get(p["sponsor_id"], 0), rng.random(), p) for p in choices]
                    product, size = min(ranked, key=lambda r: r[:2])[2], 1
                else:
                    weights = [self.profile[p["sponsor_id"]].volume for p in choices]
                    product = rng.choices(choices, weights)[0]
                    size = rng.randint(1, 4)
                previous = product
                campaign += 1
                for _ in range(size):
                    start = at.replace(minute=0, second=0, microsecond=0) + HOUR
                    length = days(rng.uniform(*MFG_DAYS[train["modality"]]))
                    story = None
                    if waiting and start + length + days(0.5) > waiting[0].start:
                        pin = waiting.pop(0)
                        start, length, story = pin.start, pin.length, pin.story
                        if pin.product is not None and pin.product is not product:
                            product = previous = pin.product
                            campaign += 1
                    end = (start + length).replace(microsecond=0)
                    code = product["_code"]
                    serial[code] = serial.get(code, 0) + 1
                    if start >= window:
                        recent[product["sponsor_id"]] = recent.get(product["sponsor_id"], 0) + 1
                    self.batches.append(
                        {
                            "batch_id": f"B-{len(self.batches) + 1:06d}",
                            "batch_number": f"{code}-{start:%y}{serial[code]:04d}",
                            "sponsor_id": product["sponsor_id"],
                            "product_id": product["product_id"],
                            "site_id": SITE_ID,
                            "campaign": f"{train['train_id']}-C{campaign:04d}",
                            "equipment_train": train["train_id"],
                            "reworked": 0,
                            "_product": product,
                            "_train": train,
                            "_start": start,
                            "_end": end,
                            "_devs": [],
                            "_oos_until": None,
                            "_story": story,
                        }
                    )
                    at = end + days(rng.uniform(0.5, 4.0))
                    if at >= horizon or story is not None:
                        break

    def qc_timelines(self) -> None:
        rng = self.rng
        low, high = self.preset.events_per_batch
        for b in self.batches:
            b["_qc_done"] = b["_end"] + days(rng.uniform(3, 8))
            b["_n_events"] = rng.randint(low, high)

    def decision_timelines(self) -> None:
        """Review, CMO and sponsor decisions; disposition waits for linked deviations and OOS."""
        rng = self.rng
        for b in self.batches:
            base = b["_qc_done"] + days(rng.uniform(1, 4))
            closes = [d["_closed"] for d in b["_devs"]] + [b["_oos_until"] or base]
            b["_cmo"] = max([base] + [c + hours(rng.uniform(6, 24)) for c in closes]).replace(
                microsecond=0
            )
            b["_review"] = b["_cmo"] - hours(rng.uniform(2, 20))
            b["_sponsor"] = b["_cmo"] + days(rng.uniform(1, 8) * self.profile[b["sponsor_id"]].pace)
            b["_decision"] = "RELEASED"
            b["_cmo_by"] = rng.choice(self.qa)

    def finalize_batches(self) -> None:
        """Status and visible fields from the timeline as seen at the clock."""
        rng, now = self.rng, self.now
        units = {
            "OSD": (150_000, 500_000),
            "BIOLOGIC": (2_000, 9_000),
            "STERILE_FILL_FINISH": (10_000, 50_000),
        }
        for b in self.batches:
            s, e = b["_start"], b["_end"]
            hold = b.get("_hold", False)
            if s > now:
                status = "PLANNED"
            elif now < s + hours(DISPENSING_HOURS):
                status = "DISPENSED"
            elif now < e:
                status = "IN_PROCESS"
            elif now < e + hours(12):
                status = "MFG_COMPLETE"
            elif now < b["_qc_done"]:
                status = "QC_TESTING"
            elif hold:
                status = "ON_HOLD"
            elif now < b["_cmo"]:
                status = "BR_REVIEW"
            elif b["_decision"] == "REJECTED":
                status = "REJECTED"
            elif b["_sponsor"] is None or now < b["_sponsor"]:
                status = "CMO_DISPOSITIONED"
            else:
                status = "SPONSOR_RELEASED"
            decided = status in ("CMO_DISPOSITIONED", "SPONSOR_RELEASED", "REJECTED")
            released = status == "SPONSOR_RELEASED"
            produced = rng.randint(*units[b["_product"]["modality"]]) if now >= e else None
            b.update(
                status=status,
                mfg_start=self.past(s),
                mfg_end=self.past(e),
                cmo_decision=b["_decision"] if decided else None,
                cmo_decided_by=b["_cmo_by"] if decided else None,
                cmo_decided_at=b["_cmo"] if decided else None,
                sponsor_decision="APPROVED" if released else None,
                sponsor_decided_at=b["_sponsor"] if released else None,
                coa_issued_at=b["_cmo"] + hours(3)
                if decided and b["_decision"] == "RELEASED" and b["_cmo"] + hours(3) < now
                else None,
                units_produced=produced,
                units_distributed=int(produced * rng.uniform(0.8, 1.0)) if released else None,
            )
            if status == "PLANNED":
                b["updated_at"] = min(s - days(21), now - hours(1))
            else:
                b["updated_at"] = self.seen(
                    s,
                    e if e < now else None,
                    b["cmo_decided_at"],
                    b["sponsor_decided_at"],
                    b["coa_issued_at"],
                )
            self.rows.setdefault("batch", []).append(b)

    def equipment_usage(self) -> None:
        """Each batch passes through its train's equipment; changeover cleaning before each use."""
        rng = self.rng
        self.usages: list[dict] = []
        for b in self.batches:
            if b["_start"] > self.now:
                continue
            pieces = b["_train"]["equipment"]
            span = (b["_end"] - b["_start"]) / len(pieces)
            for k, eq in enumerate(pieces):
                started = (b["_start"] + span * k).replace(microsecond=0)
                if started >= self.now:
                    break
                ended = self.past((b["_start"] + span * (k + 1) - HOUR).replace(microsecond=0))
                cleaned = started - hours(rng.uniform(1, 6))
                cleaned = cleaned.replace(microsecond=0)
                self.usages.append(
                    self.add(
                        "equipment_usage",
                        usage_id=f"EU-{len(self.usages) + 1:07d}",
                        equipment_id=eq["equipment_id"],
                        batch_id=b["batch_id"],
                        started_at=started,
                        ended_at=ended,
                        cleaning_verified_at=cleaned,
                        cleaning_verified_by=rng.choice(b["_train"]["team"]),
                        cleaning_result="PASS",
                        updated_at=self.seen(started, ended),
                        _batch=b,
                    )
                )

    def materials(self) -> None:
        """Lots received monthly per material; each batch consumes the newest released lot."""
        rng = self.rng
        lots: dict[str, list[tuple[datetime, str]]] = {}
        n = 0
        for material, supplier in self.material_supplier.items():
            at = self.start - days(rng.randint(60, 90))
            received = []
            while at < self.now:
                n += 1
                lot_id = f"LOT-{n:06d}"
                rejected = rng.random() < 0.02
                status = (
                    "REJECTED"
                    if rejected
                    else ("RELEASED" if at < self.now - days(10) else "QUARANTINE")
                )
                self.add(
                    "material_lot",
                    lot_id=lot_id,
                    supplier_id=supplier["supplier_id"],
                    material_name=material,
                    received_at=at,
                    release_status=status,
                    coa_received=1,
                    updated_at=self.seen(at + days(7)),
                )
                if not rejected:
                    received.append((at, lot_id))
                at += days(rng.uniform(20, 40))
            lots[material] = received
        received_at = {m: [at for at, _ in received] for m, received in lots.items()}
        self.lot_supplier = {r["lot_id"]: r["supplier_id"] for r in self.rows["material_lot"]}
        self.consumptions: list[dict] = []
        for b in self.batches:
            if b["_start"] > self.now:
                continue
            for material, qty, unit in b["_product"]["_bom"]:
                # newest lot received at least 10 days (its release testing) before use
                k = bisect.bisect_right(received_at[material], b["_start"] - days(10))
                if k == 0:
                    continue
                self.consumptions.append(
                    self.add(
                        "material_consumption",
                        consumption_id=f"MC-{len(self.consumptions) + 1:07d}",
                        batch_id=b["batch_id"],
                        lot_id=lots[material][k - 1][1],
                        quantity=round(qty * rng.uniform(0.98, 1.02), 3),
                        unit=unit,
                        updated_at=b["_start"],
                    )
                )

    def test_results(self) -> None:
        rng = self.rng
        self.tests: list[dict] = []
        for b in self.batches:
            modality = b["_product"]["modality"]
            plan = []
            for name, unit, lo, hi in P.IPC_TESTS[modality]:
                plan.append(("IPC", name, unit, lo, hi, self.between(b["_start"], b["_end"])))
            for name, unit, lo, hi in P.RELEASE_TESTS[modality]:
                at = self.between(b["_end"] + hours(6), b["_qc_done"] - hours(2))
                plan.append(("RELEASE", name, unit, lo, hi, at))
            if rng.random() < 0.1:
                for months in (3, 6, 12):
                    name, unit, lo, hi = P.RELEASE_TESTS[modality][0]
                    at = b["_end"] + days(30.4 * months)
                    plan.append(("LT_STABILITY", f"{name} ({months} M)", unit, lo, hi, at))
            for ttype, name, unit, lo, hi, at in plan:
                if at >= self.now:
                    continue
                self.add_test(b, ttype, name, unit, lo, hi, at, self.in_spec(lo, hi))

    def in_spec(self, lo: float | None, hi: float | None) -> float:
        low = lo if lo is not None else 0.0
        high = hi if hi is not None else (lo or 1.0) * 1.1
        return round(low + (high - low) * self.rng.uniform(0.15, 0.85), 3)

    def add_test(
        self,
        b: dict,
        ttype: str,
        name: str,
        unit: str,
        lo: float | None,
        hi: float | None,
        at: datetime,
        value: float,
        oos: int = 0,
    ) -> dict:
        return self.add(
            "test_result",
            test_id=self.next_id("test_result", "T"),
            batch_id=b["batch_id"],
            test_type=ttype,
            test_name=name,
            result_value=value,
            spec_low=lo,
            spec_high=hi,
            unit=unit,
            tested_at=at,
            is_oos=oos,
            updated_at=self.seen(at + hours(1)),
        )
