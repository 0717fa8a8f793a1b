"""Injected problems: each breaks one clean-baseline rule on chosen records, spread across
sponsors, and is recorded in the ground truth that tests and demos check the portal against.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import TYPE_CHECKING

from etl.demo_source import presets as P
from etl.demo_source.events import DISPENSING, TAIL_LEN, Tamper, mfg_step
from etl.demo_source.plant import DAY, Plant, days, hours

if TYPE_CHECKING:  # stories.py imports this module
    from etl.demo_source.stories import Stories

# Injected count per kind at anomaly_scale 1 (the demo preset).
COUNTS = {
    "LATE_ENTRY": 12,
    "MISSING_VERIFIER": 6,
    "SELF_VERIFICATION": 6,
    "OUT_OF_ORDER": 5,
    "TRAINING_GAP": 5,
    "DISPOSITION_WITH_OPEN_DEVIATION": 5,
    "CAPA_OVERDUE": 5,
    "CAPA_EXTENDED": 5,
    "CAPA_NOT_EFFECTIVE": 5,
    "SITE_SOP_CHANGES": 2,
    "CHANGE_EFFECTIVE_BEFORE_APPROVAL": 5,
    "CALIBRATION_OVERDUE_IN_USE": 5,
    "CALIBRATION_FAILED_IN_USE": 5,
    "CHANGE_OBLIGATION_BELOW_AGREEMENT": 5,
    "OUT_OF_SEQUENCE": 5,
    "OUTSIDE_BATCH_WINDOW": 5,
    "SUPPLIER_CONDITIONAL": 1,
    "SUPPLIER_DISQUALIFIED": 1,
    "OOS_INVALIDATED": 5,
    "OOS_CONFIRMED": 3,
    "NOTIFICATION_LATE": 6,
}
# Each of these already reaches many sponsors at once, so larger plants do not get more.
UNSCALED = ("SITE_SOP_CHANGES", "SUPPLIER_CONDITIONAL", "SUPPLIER_DISQUALIFIED")
EVENT_KINDS = (
    "LATE_ENTRY",
    "MISSING_VERIFIER",
    "SELF_VERIFICATION",
    "OUT_OF_ORDER",
    "TRAINING_GAP",
    "OUT_OF_SEQUENCE",
    "OUTSIDE_BATCH_WINDOW",
)


class Injector:
    """Chooses targets with the plant's own random stream and logs every injected problem."""

    def __init__(self, plant: Plant) -> None:
        self.plant = plant
        self.rng = plant.rng
        self.found: list[dict] = []
        self.used_batches: set[str] = set()
        self.sponsor_order = [s["sponsor_id"] for s in plant.sponsors]
        # One round of `spread`: each sponsor as many turns as its profile's problems, its turns
        # interleaved with the others' (a struggling sponsor gets more, an excellent one none).
        turns = {s: plant.profile[s].problems for s in self.sponsor_order}
        self.rounds = [
            s for k in range(max(turns.values())) for s in self.sponsor_order if turns[s] > k
        ]
        self.turn = 0

    def count(self, kind: str) -> int:
        if kind in UNSCALED:
            return COUNTS[kind]
        return COUNTS[kind] * self.plant.preset.anomaly_scale

    def record(
        self, kind: str, sponsor_id: str, table: str, key: str, detail: str, **extra
    ) -> None:
        self.found.append(
            {
                "kind": kind,
                "sponsor_id": sponsor_id,
                "table": table,
                "key": key,
                **extra,
                "detail": detail,
            }
        )

    def spread(self, candidates: list, sponsor_of, count: int) -> list:
        """Up to `count` candidates taken round-robin over sponsors, each kind from a new start."""
        groups: dict[str, list] = {s: [] for s in self.sponsor_order}
        for c in candidates:
            groups[sponsor_of(c)].append(c)
        for g in groups.values():
            self.rng.shuffle(g)
        at = self.turn % len(self.rounds)
        order = self.rounds[at:] + self.rounds[:at]
        self.turn += 1
        picked: list = []
        while len(picked) < count and any(groups[s] for s in order):
            for s in order:
                if groups[s] and len(picked) < count:
                    picked.append(groups[s].pop())
        return picked

    # -- batch level, before dispositions are decided -----------------------------------
    def plan_oos(self) -> None:
        """OOS results closed before disposition; a confirmed one rejects its batch."""
        p = self.plant
        old = [b for b in p.batches if b["_end"] < p.now - days(120) and not b["_devs"]]
        for kind, outcome in (
            ("OOS_CONFIRMED", "CONFIRMED"),
            ("OOS_INVALIDATED", "INVALIDATED_LAB_ERROR"),
        ):
            pool = [b for b in old if b["batch_id"] not in self.used_batches]
            told = sum(b.get("_oos", {}).get("kind") == kind for b in p.batches)  # by a story
            for b in self.spread(pool, lambda b: b["sponsor_id"], self.count(kind) - told):
                self.used_batches.add(b["batch_id"])
                tested = p.between(b["_end"] + hours(6), b["_qc_done"] - DAY)
                opened = tested + hours(2)
                closed = opened + days(
                    self.rng.uniform(5, 15) if outcome == "CONFIRMED" else self.rng.uniform(1, 3)
                )
                b["_oos"] = {
                    "kind": kind,
                    "outcome": outcome,
                    "tested": tested,
                    "opened": opened,
                    "closed": closed.replace(microsecond=0),
                }
                b["_oos_until"] = b["_oos"]["closed"]

    def batch_outcomes(self) -> None:
        """Rejections of confirmed OOS and a few others; one batch on hold."""
        p = self.plant
        for b in p.batches:
            if b.get("_oos", {}).get("outcome") == "CONFIRMED":
                b["_decision"] = "REJECTED"
        old = [
            b
            for b in p.batches
            if b["_cmo"] < p.now - days(60) and b["batch_id"] not in self.used_batches
        ]
        for b in self.rng.sample(old, max(2, len(old) // 80)):
            b["_decision"] = "REJECTED"
            self.used_batches.add(b["batch_id"])
        waiting = [b for b in p.batches if b["_qc_done"] < p.now < b["_cmo"]]
        held = [b for b in waiting if any(d["_closed"] >= p.now for d in b["_devs"])] or waiting
        for b in held[: max(1, p.preset.anomaly_scale)]:
            b["_hold"] = True

    def disposition_with_open_deviation(self) -> None:
        p = self.plant
        pool = [
            b
            for b in p.batches
            if b["_devs"]
            and b["_cmo"] < p.now - days(30)
            and b["batch_id"] not in self.used_batches
            and any(d["status"] == "CLOSED" for d in b["_devs"])
        ]
        for b in self.spread(
            pool, lambda b: b["sponsor_id"], self.count("DISPOSITION_WITH_OPEN_DEVIATION")
        ):
            self.used_batches.add(b["batch_id"])
            d = next(d for d in b["_devs"] if d["status"] == "CLOSED")
            d["_closed"] = (b["_cmo"] + days(self.rng.uniform(1, 10))).replace(microsecond=0)
            self.record(
                "DISPOSITION_WITH_OPEN_DEVIATION",
                b["sponsor_id"],
                "batch",
                b["batch_id"],
                f"CMO disposition while {d['deviation_id']} was open "
                f"(closed {(d['_closed'] - b['_cmo']).days} d later)",
                batch_id=b["batch_id"],
                deviation_id=d["deviation_id"],
            )

    # -- records after the clean history is built ---------------------------------------
    def oos_records(self) -> None:
        p = self.plant
        for b in p.batches:
            oos = b.get("_oos")
            if not oos:
                continue
            name, unit, lo, hi = P.RELEASE_TESTS[b["_product"]["modality"]][0]
            bad = (lo - 3.1) if lo is not None else hi * 1.4
            test = p.add_test(b, "RELEASE", name, unit, lo, hi, oos["tested"], round(bad, 3), 1)
            confirmed = oos["outcome"] == "CONFIRMED"
            deadline = p.deadline[b["sponsor_id"]]["OOS_CONFIRMED"]
            notified = oos["opened"] + hours(deadline * self.rng.uniform(0.2, 0.7))
            oos_id = f"OOS-{len(p.rows.get('oos_investigation', [])) + 1:05d}"
            p.add(
                "oos_investigation",
                oos_id=oos_id,
                test_id=test["test_id"],
                batch_id=b["batch_id"],
                phase="II" if confirmed else "I",
                outcome=oos["outcome"],
                opened_at=oos["opened"],
                closed_at=oos["closed"],
                notified_at=notified.replace(microsecond=0) if confirmed else None,
                summary="Confirmed product failure"
                if confirmed
                else "Analyst pipetting error; retest within specification",
                updated_at=oos["closed"],
            )
            if confirmed:
                p.capa(
                    "OOS",
                    oos["closed"] - DAY,
                    f"Root cause of confirmed OOS {oos_id}",
                    {"oos_id": oos_id},
                    [b["sponsor_id"]],
                )
            else:
                p.add_test(
                    b,
                    "RELEASE",
                    f"{name} (retest)",
                    unit,
                    lo,
                    hi,
                    oos["closed"] - hours(2),
                    p.in_spec(lo, hi),
                )
            self.record(
                oos["kind"],
                b["sponsor_id"],
                "oos_investigation",
                oos_id,
                f"{name} {bad:.3g} {unit} outside specification; "
                f"{oos['outcome'].lower().replace('_', ' ')}",
                batch_id=b["batch_id"],
            )

    def notification_late(self) -> None:
        p = self.plant
        pool = [
            link
            for link in p.links
            if link["_deviation"]["status"] == "CLOSED"
            and link["_deviation"]["awareness_at"] < p.now - days(30)
        ]
        for link in self.spread(pool, lambda x: x["sponsor_id"], self.count("NOTIFICATION_LATE")):
            d = link["_deviation"]
            allowed = p.deadline[link["sponsor_id"]][f"DEVIATION_{d['classification']}"]
            late_by = self.rng.randint(3, 60)
            link["notified_at"] = d["awareness_at"] + hours(allowed + late_by)
            link["updated_at"] = p.seen(link["notified_at"])
            self.record(
                "NOTIFICATION_LATE",
                link["sponsor_id"],
                "deviation_link",
                link["link_id"],
                f"{d['classification'].lower()} deviation "
                f"{d['deviation_id']} notified {late_by} h after the {allowed} h deadline",
                batch_id=link["batch_id"],
                deviation_id=d["deviation_id"],
            )

    def capas(self) -> None:
        p = self.plant
        single = [c for c in p.rows["capa"] if len(c["_sponsors"]) == 1 and c["status"] == "CLOSED"]
        sponsor = lambda c: c["_sponsors"][0]  # noqa: E731
        taken: set[str] = set()

        def pool(cond) -> list[dict]:
            return [c for c in single if c["capa_id"] not in taken and cond(c)]

        aged = pool(lambda c: p.now - days(400) < c["opened_at"] < p.now - days(130))
        for c in self.spread(aged, sponsor, self.count("CAPA_OVERDUE")):
            taken.add(c["capa_id"])
            c.update(status="IMPLEMENTING", closed_at=None, updated_at=p.seen(c["opened_at"]))
            if "_check" in c:
                p.rows["capa_effectiveness"].remove(c.pop("_check"))
            late = (p.now.date() - c["current_due"]).days
            self.record(
                "CAPA_OVERDUE",
                sponsor(c),
                "capa",
                c["capa_id"],
                f"open, due {c['current_due']} ({late} d overdue)",
            )
        extendable = pool(lambda c: c["opened_at"] < p.now - days(200))
        for c in self.spread(extendable, sponsor, self.count("CAPA_EXTENDED")):
            taken.add(c["capa_id"])
            original = c["original_due"]
            new_due = original + days(self.rng.randint(30, 60))
            closed = datetime.combine(original, time(11)) + days(self.rng.randint(3, 25))
            approved = datetime.combine(original, time(15)) - days(self.rng.randint(2, 10))
            c.update(current_due=new_due, closed_at=closed, updated_at=closed)
            if "_check" in c:
                c["_check"].update(checked_at=closed - days(1), updated_at=closed - days(1))
            p.add(
                "capa_extension",
                extension_id=f"CX-{c['capa_id'][5:]}",
                capa_id=c["capa_id"],
                previous_due=original,
                new_due=new_due,
                reason="Supplier lead time for replacement part",
                approved_at=approved,
                updated_at=approved,
            )
            self.record(
                "CAPA_EXTENDED",
                sponsor(c),
                "capa",
                c["capa_id"],
                f"due extended {original} -> {new_due}",
            )
        checked = pool(lambda c: "_check" in c)
        for c in self.spread(checked, sponsor, self.count("CAPA_NOT_EFFECTIVE")):
            taken.add(c["capa_id"])
            c["_check"]["result"] = "NOT_EFFECTIVE"
            self.record(
                "CAPA_NOT_EFFECTIVE",
                sponsor(c),
                "capa",
                c["capa_id"],
                f"effectiveness check {c['_check']['check_id']} not effective",
            )

    def changes(self) -> None:
        p = self.plant
        for k in range(self.count("SITE_SOP_CHANGES")):
            opened = p.now - days(120 + 90 * k + self.rng.randint(0, 30))
            title = f"Site SOP revision: {P.SITE_SOPS[k % len(P.SITE_SOPS)].lower()}"
            change, impacts = p.change_control(
                "SOP", opened, title, [(s, None) for s in self.sponsor_order], reject=False
            )
            for imp in impacts:
                self.record(
                    "CHANGE_OBLIGATION_DIFFERS",
                    imp["sponsor_id"],
                    "change_impact",
                    imp["impact_id"],
                    f"site SOP change {change['change_id']}: "
                    f"{imp['obligation']} here, other sponsors differ",
                    change_id=change["change_id"],
                )
        by_change: dict[str, list[dict]] = {}
        for imp in p.rows["change_impact"]:
            by_change.setdefault(imp["change_id"], []).append(imp)
        pool = [
            (c, by_change[c["change_id"]][0])
            for c in p.rows["change_control"]
            if c["change_type"] in ("PROCESS", "ANALYTICAL_METHOD")
            and len(by_change[c["change_id"]]) == 1
            and by_change[c["change_id"]][0]["decision"] == "APPROVED"
            and c["actual_effective"] is not None
            and c["actual_effective"] < (p.now - days(20)).date()
        ]
        picked = self.spread(
            pool, lambda ci: ci[1]["sponsor_id"], self.count("CHANGE_EFFECTIVE_BEFORE_APPROVAL")
        )
        for n, (change, imp) in enumerate(picked):
            effective = datetime.combine(change["actual_effective"], time(10))
            # Still pending after go-live; not for the first sponsor, whose only pending
            # approval is its story's (stories.py).
            if n % 3 == 2 and imp["sponsor_id"] != self.sponsor_order[0]:
                imp.update(decision="PENDING", decided_at=None)
                detail = f"effective {change['actual_effective']}; sponsor approval still pending"
            else:
                imp["decided_at"] = effective + days(self.rng.randint(2, 15))
                detail = (
                    f"effective {change['actual_effective']}; approved {imp['decided_at']:%Y-%m-%d}"
                )
            imp["updated_at"] = p.seen(imp["notified_at"], imp["decided_at"])
            change["updated_at"] = p.seen(change["updated_at"], imp["updated_at"])
            self.record(
                "CHANGE_EFFECTIVE_BEFORE_APPROVAL",
                imp["sponsor_id"],
                "change_impact",
                imp["impact_id"],
                detail,
                change_id=change["change_id"],
            )
        self.obligation_below_agreement(by_change, {change["change_id"] for change, _ in picked})

    def obligation_below_agreement(self, by_change: dict[str, list[dict]], taken: set[str]) -> None:
        """Impacts assessed as NOTIFY where the sponsor's agreement requires prior approval;
        notified before going effective, so only the obligation itself is wrong."""
        p = self.plant
        pool = [
            (c, by_change[c["change_id"]][0])
            for c in p.rows["change_control"]
            if c["change_id"] not in taken
            and len(by_change[c["change_id"]]) == 1
            and by_change[c["change_id"]][0]["obligation"] == "PRIOR_APPROVAL"
            and by_change[c["change_id"]][0]["decision"] == "APPROVED"
            and c["actual_effective"] is not None
            and c["actual_effective"] < (p.now - days(20)).date()
        ]
        picked = self.spread(
            pool, lambda ci: ci[1]["sponsor_id"], self.count("CHANGE_OBLIGATION_BELOW_AGREEMENT")
        )
        for change, imp in picked:
            imp.update(obligation="NOTIFY", decision=None, decided_at=None)
            imp["updated_at"] = p.seen(change["opened_at"], imp["notified_at"])
            self.record(
                "CHANGE_OBLIGATION_BELOW_AGREEMENT",
                imp["sponsor_id"],
                "change_impact",
                imp["impact_id"],
                f"{change['change_type'].lower().replace('_', ' ')} change recorded as notify "
                "only; the quality agreement requires prior approval",
                change_id=change["change_id"],
            )

    def calibration(self) -> None:
        """A calibration allowed to lapse just before one use; recalibrated right after it."""
        p = self.plant
        calibrations: dict[str, list[dict]] = {}
        for e in p.rows["equipment_event"]:
            if e["event_type"] == "CALIBRATION":
                calibrations.setdefault(e["equipment_id"], []).append(e)
        candidates, seen_eq = [], set()
        for u in p.usages:
            if u["ended_at"] is None or u["started_at"] > p.now - days(30):
                continue
            before = [
                e for e in calibrations[u["equipment_id"]] if e["performed_at"] < u["started_at"]
            ]
            last = before[-1] if before else None
            if last and last["performed_at"].date() < u["started_at"].date() - days(5):
                candidates.append((u, last))
        self.rng.shuffle(candidates)
        unique = []
        for u, last in candidates:
            if u["equipment_id"] not in seen_eq:
                seen_eq.add(u["equipment_id"])
                unique.append((u, last))
        picked = self.spread(
            unique,
            lambda ul: ul[0]["_batch"]["sponsor_id"],
            self.count("CALIBRATION_OVERDUE_IN_USE"),
        )
        for u, last in picked:
            last["next_due"] = u["started_at"].date() - DAY
            redo = u["ended_at"] + hours(1)
            p.add(
                "equipment_event",
                equipment_event_id=p.next_id("equipment_event", "EE"),
                equipment_id=u["equipment_id"],
                event_type="CALIBRATION",
                performed_at=redo,
                next_due=(redo + days(182)).date(),
                result="PASS",
                updated_at=redo,
            )
            b = u["_batch"]
            self.record(
                "CALIBRATION_OVERDUE_IN_USE",
                b["sponsor_id"],
                "equipment_usage",
                u["usage_id"],
                f"calibration due {last['next_due']} lapsed before use "
                f"on {u['started_at']:%Y-%m-%d}",
                equipment_id=u["equipment_id"],
                batch_id=b["batch_id"],
            )

    def failed_calibration(self) -> None:
        """A calibration that FAILED during the changeover before one use; the passing one
        came only after that use. Not on equipment whose calibration lapsed (calibration())."""
        p = self.plant
        overdue = "CALIBRATION_OVERDUE_IN_USE"
        lapsed = {a["equipment_id"] for a in self.found if a["kind"] == overdue}
        calibrated: dict[str, list[datetime]] = {}
        for e in p.rows["equipment_event"]:
            if e["event_type"] == "CALIBRATION":
                calibrated.setdefault(e["equipment_id"], []).append(e["performed_at"])
        uses: dict[str, list[dict]] = {}
        for u in p.usages:
            uses.setdefault(u["equipment_id"], []).append(u)
        candidates = []
        for equipment_id in sorted(uses):
            if equipment_id in lapsed:
                continue
            ordered = sorted(uses[equipment_id], key=lambda u: (u["started_at"], u["usage_id"]))
            for before, u in zip(ordered, ordered[1:], strict=False):
                if u["ended_at"] is None or u["started_at"] > p.now - days(30):
                    continue
                failed = (u["started_at"] - hours(self.rng.uniform(1, 12))).replace(microsecond=0)
                last = max((t for t in calibrated[equipment_id] if t <= u["started_at"]),
                           default=failed)  # fmt: skip
                if before["ended_at"] and before["ended_at"] < failed and last < failed:
                    candidates.append((u, failed))
        self.rng.shuffle(candidates)
        unique: dict[str, tuple[dict, datetime]] = {}
        for u, failed in candidates:
            unique.setdefault(u["equipment_id"], (u, failed))
        picked = self.spread(
            list(unique.values()),
            lambda uf: uf[0]["_batch"]["sponsor_id"],
            self.count("CALIBRATION_FAILED_IN_USE"),
        )
        for u, failed in picked:
            redo = u["ended_at"] + hours(1)
            for at, result, due in ((failed, "FAIL", None), (redo, "PASS", redo + days(182))):
                p.add(
                    "equipment_event",
                    equipment_event_id=p.next_id("equipment_event", "EE"),
                    equipment_id=u["equipment_id"],
                    event_type="CALIBRATION",
                    performed_at=at,
                    next_due=due.date() if due else None,
                    result=result,
                    updated_at=at,
                )
            b = u["_batch"]
            self.record(
                "CALIBRATION_FAILED_IN_USE",
                b["sponsor_id"],
                "equipment_usage",
                u["usage_id"],
                f"calibration failed {failed:%Y-%m-%d %H:%M}; used from "
                f"{u['started_at']:%Y-%m-%d %H:%M} before it passed again",
                equipment_id=u["equipment_id"],
                batch_id=b["batch_id"],
            )

    def suppliers(self) -> None:
        p = self.plant
        batches = {b["batch_id"]: b for b in p.batches}
        sponsors: dict[str, set[str]] = {}
        uses: dict[str, int] = {}
        for c in p.consumptions:
            supplier_id = p.lot_supplier[c["lot_id"]]
            sponsors.setdefault(supplier_id, set()).add(batches[c["batch_id"]]["sponsor_id"])
            uses[supplier_id] = uses.get(supplier_id, 0) + 1
        # The least used suppliers that still reach three sponsors: most batches stay clean.
        reach = min(3, len(self.sponsor_order))
        ranked = sorted(
            (s for s in sponsors if len(sponsors[s]) >= reach), key=lambda s: (uses[s], s)
        )
        kinds = ["CONDITIONAL"] * self.count("SUPPLIER_CONDITIONAL") + [
            "DISQUALIFIED"
        ] * self.count("SUPPLIER_DISQUALIFIED")
        rows = {s["supplier_id"]: s for s in p.suppliers}
        for status, supplier_id in zip(kinds, ranked, strict=False):
            supplier = rows[supplier_id]
            supplier.update(status=status, updated_at=p.now - days(self.rng.randint(5, 60)))
            for sponsor_id in sorted(sponsors[supplier_id]):
                self.record(
                    f"SUPPLIER_{status}",
                    sponsor_id,
                    "supplier",
                    supplier_id,
                    f"{supplier['name']} is {status.lower()}; its lots were used in "
                    "this sponsor's batches",
                    supplier_id=supplier_id,
                )

    # -- batch record entries -----------------------------------------------------------
    def plan_events(self, told_by: Stories) -> dict[tuple[int, int], Tamper]:
        """Entries to tamper with, keyed by (batch position, seq); agency staff for gaps.

        The stories' entries come first: the late pH entry at step 7 of the batch awaiting
        release for 9 days, and the first sponsor's other exceptions of this month.
        """
        p = self.plant
        done = [
            i
            for i, b in enumerate(p.batches)
            if b["_cmo"] < p.now - days(30) and b["_start"] < p.now
        ]
        # An entry moved past disposition stays out of the last 30 days (the stories' month).
        settled = [i for i in done if p.batches[i]["_cmo"] < p.now - days(32)]
        plan: dict[tuple[int, int], Tamper] = {}

        def pick_seq(i: int, verified_only: bool) -> int | None:
            b = p.batches[i]
            for _ in range(20):
                seq = self.rng.randint(DISPENSING, b["_n_events"] - TAIL_LEN - 1)
                etype = mfg_step(b["_product"]["modality"], seq)[1]
                if (not verified_only or etype in ("STEP", "IPC")) and ((i, seq) not in plan):
                    return seq
            return None

        position = {id(b): i for i, b in enumerate(p.batches)}
        journey = position[id(told_by.batch("release_9d"))]
        plan[(journey, 7)] = Tamper("LATE_ENTRY", 220, P.LATE_ENTRY_REASONS[0])
        self.story_batch = p.batches[journey]["batch_id"]
        told = {"LATE_ENTRY": 1}
        for kind, b in told_by.recent_di:
            seq = pick_seq(position[id(b)], True)
            if seq is not None:
                plan[(position[id(b)], seq)] = Tamper(kind)
                told[kind] = told.get(kind, 0) + 1
        for kind in EVENT_KINDS:
            wanted = self.count(kind) - told.get(kind, 0)
            pool = settled if kind == "OUTSIDE_BATCH_WINDOW" else done
            for n, i in enumerate(self.spread(pool, lambda i: p.batches[i]["sponsor_id"], wanted)):
                if kind == "OUTSIDE_BATCH_WINDOW":  # the first entry early, or the last late
                    seq = 0 if n % 2 == 0 else p.batches[i]["_n_events"] - 1
                    seq = None if (i, seq) in plan else seq
                else:
                    verified = ("MISSING_VERIFIER", "SELF_VERIFICATION", "OUT_OF_ORDER")
                    seq = pick_seq(i, kind in verified)
                if seq is None:
                    continue
                tamper = Tamper(kind)
                if kind == "LATE_ENTRY":
                    tamper.minutes = self.rng.randint(75, 480)
                    if self.rng.random() < 0.5:
                        tamper.reason = self.rng.choice(P.LATE_ENTRY_REASONS)
                elif kind in ("OUT_OF_ORDER", "OUT_OF_SEQUENCE"):
                    tamper.minutes = self.rng.randint(5, 45)
                elif kind == "OUTSIDE_BATCH_WINDOW":
                    tamper.minutes = self.rng.randint(10, 90)
                elif kind == "TRAINING_GAP":
                    tamper.operator = p.operator("Production operator (agency)")
                plan[(i, seq)] = tamper
        return plan

    def record_events(self, plan: dict[tuple[int, int], Tamper], written: dict) -> None:
        """Ground truth for tampered entries; agency staff get trained only after their entry."""
        p = self.plant
        for (i, seq), tamper in sorted(plan.items()):
            b, ev = p.batches[i], written[(i, seq)]
            detail = _event_detail(tamper, ev)
            if tamper.kind == "TRAINING_GAP":
                performed = datetime.fromisoformat(ev["performed_at"])
                product_sops = b["_product"]["_sops"]
                missing = product_sops[0]
                for sop in p.site_sops + product_sops:
                    first = performed + days(3) if sop is missing else p.start - days(60)
                    p.train_operator(tamper.operator, sop, first)
                detail = (
                    f"{tamper.operator} not trained on {missing['sop_id']} at {performed:%Y-%m-%d}"
                )
            self.record(
                tamper.kind,
                b["sponsor_id"],
                "batch_event",
                ev["event_id"],
                detail,
                batch_id=b["batch_id"],
            )


def _event_detail(tamper: Tamper, event: dict) -> str:
    if tamper.kind == "LATE_ENTRY":
        h, m = divmod(tamper.minutes, 60)
        reason = f"reason: {tamper.reason}" if tamper.reason else "no reason given"
        return f"recorded {h} h {m} min after performed; {reason}"
    if tamper.kind == "MISSING_VERIFIER":
        return f"{event['step_name']} has no verifier"
    if tamper.kind == "SELF_VERIFICATION":
        return f"{event['performed_by']} verified own entry"
    if tamper.kind == "OUT_OF_ORDER":
        return f"verified {tamper.minutes} min before performed"
    if tamper.kind == "OUT_OF_SEQUENCE":
        return f"performed before step {event['seq'] - 1}, which precedes it"
    if tamper.kind == "OUTSIDE_BATCH_WINDOW":
        if event["seq"] == 0:
            return f"performed {tamper.minutes} min before the batch started"
        return f"performed {tamper.minutes} min after the CMO disposition"
    return ""
