"""Today at the plant: the first sponsor's Monday (JOURNEYS.md, Priya) and every sponsor's work.

The clean history alone leaves the present to chance: a sponsor can have nothing in flight or
nothing open. This module pins a few batches and records so that, at the plant's clock, every
train has a batch in manufacturing, every sponsor has open deviations and CAPAs within due,
and the first sponsor sees exactly one of each story: two batches awaiting its release (one
for 9 days), one major deviation opened last Friday on its biologic, one change waiting on
its prior approval, and three data-integrity exceptions in the last 30 days. Stories that are
not anomalies go to the ground truth as informational entries.
"""

from __future__ import annotations

from datetime import date, datetime, time

from etl.demo_source import presets as P
from etl.demo_source.anomalies import Injector
from etl.demo_source.plant import MFG_DAYS, Pin, Plant, days, hours

# The phase each train's current batch is in at the clock, cycled over the trains.
ANCHOR_PHASES = ("IN_PROCESS", "DISPENSED", "MFG_COMPLETE")
OPEN_DEVIATIONS_PER_SPONSOR = 3
OPEN_CAPAS_PER_SPONSOR = 2
CHANGE_TYPES_TO_APPROVE = ("ANALYTICAL_METHOD", "PROCESS", "SUPPLIER", "SOP", "EQUIPMENT")
FRIDAY_DEVIATION_TITLE = "Bioreactor dissolved oxygen below limit during feed"


def friday_before(day: date) -> date:
    """The last Friday strictly before `day`."""
    return day - days((day.weekday() - 4) % 7 or 7)


class Stories:
    """Pins the present of the plant; call its steps at the points `generate` shows."""

    def __init__(self, plant: Plant, inject: Injector) -> None:
        self.plant = plant
        self.inject = inject
        self.rng = plant.rng
        self.first = plant.sponsors[0]["sponsor_id"]
        plant.prompt_sponsors.add(self.first)
        own = [p for p in plant.made_products if p["sponsor_id"] == self.first]
        self.biologic = next(p for p in own if p["modality"] == "BIOLOGIC")
        self.other = next(p for p in own if p["modality"] != "BIOLOGIC")
        self.today = plant.now.date()
        self.friday = friday_before(self.today)
        self.pins = self._pins()
        self.recent_di: list[tuple[str, dict]] = []  # (kind, batch) for plan_events

    def _at(self, day: date, hour: int, minute: int = 0) -> datetime:
        return datetime.combine(day, time(hour, minute))

    def _pins(self) -> dict[str, list[Pin]]:
        """Story batches of the first sponsor, and on every train the batch running today."""
        p, now = self.plant, self.plant.now
        story_train = self.biologic["_trains"][0]
        other_train = self.other["_trains"][0]
        # Waiting 9 days: made ~3 weeks ago, QC done 2 days before the CMO's disposition.
        pins = {
            story_train["train_id"]: [
                Pin(self._at(self.today - days(24), 8), days(7), self.biologic, "release_9d")
            ],
            other_train["train_id"]: [
                Pin(self._at(self.today - days(11), 8), days(2), self.other, "release_recent")
            ],
        }
        # The biologic batch in process since before last Friday, when its deviation opened.
        start = self._at(self.friday - days(1), 7)
        length = max(days(self.rng.uniform(*MFG_DAYS["BIOLOGIC"])), now - start + days(1.5))
        pins[story_train["train_id"]].append(Pin(start, length, self.biologic, "friday_major"))
        others = [t for t in p.trains if t is not story_train]
        for n, train in enumerate(others):
            length = days(self.rng.uniform(*MFG_DAYS[train["modality"]]))
            phase = ANCHOR_PHASES[n % len(ANCHOR_PHASES)]
            if phase == "DISPENSED":  # all three dispensing entries made, no step yet
                start = now - hours(1.5)
            elif phase == "IN_PROCESS":
                start = (now - length * self.rng.uniform(0.3, 0.7)).replace(minute=0, second=0)
            else:  # finished five to six hours ago, QC sampling not yet recorded
                start = (now - length - hours(5)).replace(minute=0, second=0, microsecond=0)
            pins.setdefault(train["train_id"], []).append(Pin(start, length, None, "anchor"))
        return pins

    def batch(self, story: str) -> dict:
        return next(b for b in self.plant.batches if b["_story"] == story)

    # -- after qc_timelines ---------------------------------------------------------------
    def qc(self) -> None:
        """QC finishes two days before each awaited disposition; one OOS on the 9-day batch."""
        journey = self.batch("release_9d")
        journey["_cmo_at"] = self._at(self.today - days(9), 14, 20)
        journey["_qc_done"] = journey["_cmo_at"] - days(2)
        recent = self.batch("release_recent")
        recent["_cmo_at"] = self._at(self.today - days(3), 11, 40)
        recent["_qc_done"] = recent["_end"] + days(4)
        tested = self.plant.between(journey["_end"] + hours(6), journey["_end"] + days(2))
        opened = tested + hours(2)
        journey["_oos"] = {
            "kind": "OOS_INVALIDATED",
            "outcome": "INVALIDATED_LAB_ERROR",
            "tested": tested,
            "opened": opened,
            "closed": (opened + days(self.rng.uniform(1, 3))).replace(microsecond=0),
        }
        journey["_oos_until"] = journey["_oos"]["closed"]
        self.inject.used_batches.update({journey["batch_id"], recent["batch_id"]})

    # -- after facility_deviations --------------------------------------------------------
    def deviations(self) -> None:
        """Last Friday's major deviation; open deviations for every sponsor, the first's minor."""
        p, now = self.plant, self.plant.now
        batch = self.batch("friday_major")
        aware = self._at(self.friday, 9) + hours(self.rng.randint(0, 360) / 60)
        d = p._deviation(aware, "PROCESS")
        d.update(title=FRIDAY_DEVIATION_TITLE, classification="MAJOR", status="OPEN",
                 current_due=d["original_due"], extension_count=0, recurrence_of=None,
                 _closed=now + days(25))  # fmt: skip
        d["_links"] = [(self.first, batch["product_id"], batch, None)]
        batch["_devs"].append(d)
        self.friday_deviation = d

        def sponsors(dev: dict) -> set[str]:
            return {link[0] for link in dev["_links"]}

        open_now = [x for x in p.deviations if x["_closed"] >= now]
        for x in open_now:  # the first sponsor's only major is Friday's
            if x is not d and self.first in sponsors(x):
                x["classification"] = "MINOR"
        recent: dict[str, list[dict]] = {}
        for b in p.batches:
            made_lately = now - days(12) <= b["_end"] and b["_start"] <= now - days(1)
            if made_lately and b["_story"] in (None, "anchor"):
                recent.setdefault(b["sponsor_id"], []).append(b)
        for i, sponsor_id in enumerate(self.inject.sponsor_order):
            mine = [x for x in open_now if sponsor_id in sponsors(x)]
            severe = any(x["classification"] != "MINOR" for x in mine)
            candidates = sorted(recent.get(sponsor_id, []), key=lambda b: b["_start"])
            for k in range(OPEN_DEVIATIONS_PER_SPONSOR - len(mine)):
                if not candidates:
                    break
                b = candidates[-1 - k % len(candidates)]
                found = p.between(max(b["_start"], now - days(18)), min(b["_end"], now - days(1)))
                cause = self.rng.choice(tuple(P.DEVIATION_TITLES))
                x = p._deviation(found, cause)
                major = k == 0 and i % 2 == 1 and not severe
                closes = max(x["_closed"], now + days(self.rng.uniform(2, 15)))
                x.update(title=P.DEVIATION_TITLES[cause], status="OPEN", _closed=closes,
                         classification="MAJOR" if major else "MINOR",
                         current_due=x["original_due"], extension_count=0)  # fmt: skip
                x["_links"] = [(sponsor_id, b["product_id"], b, None)]
                b["_devs"].append(x)

    # -- after decision_timelines ---------------------------------------------------------
    def dispositions(self) -> None:
        """The two batches awaiting the first sponsor; its other dispositions do not wait."""
        p, now = self.plant, self.plant.now
        for story in ("release_9d", "release_recent"):
            b = self.batch(story)
            b["_cmo"] = b["_cmo_at"]
            b["_review"] = b["_cmo"] - hours(self.rng.uniform(3, 8))
            b["_sponsor"] = None
            waited = (self.today - b["_cmo"].date()).days
            self.inject.record(
                "BATCH_AWAITING_RELEASE",
                self.first,
                "batch",
                b["batch_id"],
                f"waiting {waited} days",
                batch_id=b["batch_id"],
                informational=True,
            )
        for b in p.batches:
            if b["sponsor_id"] != self.first or b["_story"] in ("release_9d", "release_recent"):
                continue
            if b["_cmo"] < now <= b["_sponsor"]:
                if now - b["_cmo"] > hours(8):
                    b["_sponsor"] = p.between(b["_cmo"] + hours(4), now - hours(2))
                else:  # QA signs later today instead
                    later = now + hours(3) - b["_cmo"]
                    b["_cmo"] += later
                    b["_review"] += later
                    b["_sponsor"] += later

    # -- after finalize_deviations --------------------------------------------------------
    def friday_status(self) -> None:
        p, d = self.plant, self.friday_deviation
        d["status"] = "OPEN" if p.now - d["awareness_at"] < days(3) else "INVESTIGATION"
        for link in p.links:
            if link["_deviation"] is d:
                link["notified_at"] = (d["awareness_at"] + hours(self.rng.uniform(2, 6))).replace(
                    microsecond=0
                )
                link["updated_at"] = p.seen(d["awareness_at"], link["notified_at"])
        self.inject.record(
            "MAJOR_DEVIATION_OPEN",
            self.first,
            "deviation",
            d["deviation_id"],
            f"major deviation opened {self.friday:%A %Y-%m-%d}, {d['status'].lower()}",
            batch_id=self.batch("friday_major")["batch_id"],
            informational=True,
        )

    # -- after the CAPAs of the clean history ---------------------------------------------
    def open_capas(self) -> None:
        """CAPAs opened lately on each sponsor's deviations, all within their due date."""
        p, now = self.plant, self.plant.now
        open_count: dict[str, int] = {}
        with_capa = set()
        for c in p.rows["capa"]:
            with_capa.add(c["deviation_id"])
            # On a deviation and within its due date: an overdue CAPA, or one on a complaint,
            # is open work too, but not the deviation follow-up in due that each sponsor has.
            if (
                c["status"] not in ("CLOSED", "CANCELLED")
                and c["deviation_id"]
                and c["current_due"] >= now.date()
            ):
                for s in c["_sponsors"]:
                    open_count[s] = open_count.get(s, 0) + 1
        # Each sponsor's own deviations first; one shared with other sponsors (its CAPA is
        # theirs too) only when a sponsor had none of its own lately.
        own: dict[str, list[dict]] = {}
        shared: dict[str, list[dict]] = {}
        for d in p.deviations:
            sponsors = sorted({link[0] for link in d["_links"]})
            if (
                d["status"] != "CANCELLED"
                and d["deviation_id"] not in with_capa
                and now - days(38) <= d["awareness_at"] <= now - days(6)
            ):
                for s in sponsors:
                    (own if len(sponsors) == 1 else shared).setdefault(s, []).append(d)
        for sponsor_id in self.inject.sponsor_order:
            pool = sorted(own.get(sponsor_id, []), key=lambda d: d["awareness_at"])
            pool = pool or sorted(shared.get(sponsor_id, []), key=lambda d: d["awareness_at"])
            for _ in range(OPEN_CAPAS_PER_SPONSOR - open_count.get(sponsor_id, 0)):
                pool = [d for d in pool if d["deviation_id"] not in with_capa]
                if not pool:
                    break
                d = pool.pop()
                with_capa.add(d["deviation_id"])
                sponsors = sorted({link[0] for link in d["_links"]})
                opened = d["awareness_at"] + days(self.rng.uniform(2, 5))
                title = f"Prevent recurrence: {d['title'].lower()}"
                refs = {"deviation_id": d["deviation_id"]}
                # Closing at 97 % of at least 45 days keeps a CAPA opened < 38 days ago open.
                p.capa("DEVIATION", opened, title, refs, sponsors, close_fraction=0.97)
                for s in sponsors:
                    open_count[s] = open_count.get(s, 0) + (s != sponsor_id)

    # -- after change_controls ------------------------------------------------------------
    def change_awaiting_approval(self) -> None:
        """A change that needs the first sponsor's prior approval, another sponsor notified."""
        p = self.plant
        for ctype in CHANGE_TYPES_TO_APPROVE:
            notified = [
                s
                for s in self.inject.sponsor_order[1:]
                if p.obligation[s][ctype] == "NOTIFY"
                and any(x["sponsor_id"] == s for x in p.made_products)
            ]
            if p.obligation[self.first][ctype] == "PRIOR_APPROVAL" and notified:
                break
        else:
            raise LookupError("no change type needs approval here and only notice elsewhere")
        other = next(x for x in p.made_products if x["sponsor_id"] == notified[0])
        opened = self._at(self.today - days(12), 10)
        month = self.today.month % 12 + 1
        planned = date(self.today.year + (month == 1), month, 14)
        title = f"{ctype.replace('_', ' ').title()} change shared by {self.biologic['name']}"
        targets = [(self.first, self.biologic["product_id"]), (notified[0], other["product_id"])]
        change, impacts = p.change_control(ctype, opened, title, targets, reject=False)
        change.update(status="SPONSOR_REVIEW", planned_effective=planned, actual_effective=None)
        stamps = {}
        for imp in impacts:
            imp["notified_at"] = opened + days(2) + hours(self.rng.uniform(0, 6))
            imp["notified_at"] = imp["notified_at"].replace(microsecond=0)
            if imp["sponsor_id"] == self.first:
                imp.update(decision="PENDING", decided_at=None)
            imp["updated_at"] = stamps[imp["impact_id"]] = p.seen(opened, imp["notified_at"])
        for market in p.rows["change_market"]:
            if market["impact_id"] in stamps:
                market["updated_at"] = stamps[market["impact_id"]]
        change["updated_at"] = p.seen(opened, *stamps.values())
        mine = impacts[0]
        self.inject.record(
            "CHANGE_AWAITING_APPROVAL",
            self.first,
            "change_impact",
            mine["impact_id"],
            f"prior approval pending; planned effective {planned}",
            change_id=change["change_id"],
            informational=True,
        )

    # -- before plan_events ---------------------------------------------------------------
    def recent_exceptions(self) -> None:
        """Besides the late pH entry: a missing verifier and a self-verification this month."""
        now = self.plant.now
        recent = self.batch("release_recent")
        others = [
            b
            for b in self.plant.batches
            if b["sponsor_id"] == self.first
            and b["_story"] in (None, "anchor")
            and now - days(27) <= b["_start"]
            and b["_end"] < now - days(1)
        ]
        self.recent_di = [
            ("MISSING_VERIFIER", recent),
            ("SELF_VERIFICATION", others[-1] if others else recent),
        ]
