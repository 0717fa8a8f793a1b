"""The demo plant's master data: sponsors, operators, products, SOPs, suppliers and equipment.

The site and its sponsors with their quality agreements (notification deadlines and change
obligations), operators, products and the trains that make them, SOPs and training records,
suppliers and bills of materials, and equipment with its qualification, calibration and
maintenance history.
"""

from __future__ import annotations

from datetime import datetime, time

from etl.demo_source import presets as P
from etl.demo_source.base import DAY, SITE_ID, PlantBase, days, hours
from warehouse.contract import CHANGE_TYPES, NOTIFIABLE_EVENTS


class MasterData(PlantBase):
    """Who and what the plant works with; every later domain reads these rows."""

    def build_master_data(self) -> None:
        t0 = self.start - days(400)
        self.add(
            "site", site_id=SITE_ID, name="Ridgeway Plant (fictional)", country="IE", updated_at=t0
        )
        self.sponsors: list[dict] = []
        self.profile: dict[str, P.Profile] = {}
        for i in range(self.preset.sponsors):
            if i < len(P.DEMO_SPONSORS):
                sid, name, country, profile = P.DEMO_SPONSORS[i]
            else:
                sid, name, country, profile = (
                    f"S{i + 1:03d}",
                    f"Sponsor {i + 1:03d} Pharma (fictional)",
                    "US",
                    P.Profile(),
                )
            self.profile[sid] = profile
            self.sponsors.append(
                self.add(
                    "sponsor", sponsor_id=sid, name=name, country=country, updated_at=t0 + days(i)
                )
            )
        self._agreements()
        self._operators()
        self._products_and_trains()
        self._sops_and_training()
        self._suppliers_and_bom()
        self._equipment()

    def _agreements(self) -> None:
        """Quality agreements whose change obligations differ between sponsors."""
        self.deadline: dict[str, dict[str, int]] = {}
        self.obligation: dict[str, dict[str, str]] = {}
        for i, s in enumerate(self.sponsors):
            sid = s["sponsor_id"]
            agreement_id = f"QA-{sid}"
            effective = (self.start - days(200 + 10 * i)).date()
            self.add(
                "quality_agreement",
                agreement_id=agreement_id,
                sponsor_id=sid,
                version=1 + i % 3,
                effective_from=effective,
                updated_at=datetime.combine(effective, time()),
            )
            notify = {
                "DEVIATION_CRITICAL": 24,
                "DEVIATION_MAJOR": 48 if i % 2 == 0 else 72,
                "DEVIATION_MINOR": 336 if i % 3 == 0 else 720,
                "OOS_CONFIRMED": 48 if i % 2 else 72,
                "COMPLAINT_CRITICAL": 24,
            }
            # SOP changes: NOTIFY for most sponsors, PRIOR_APPROVAL for every third.
            change = {
                "SOP": "PRIOR_APPROVAL" if i % 3 == 1 else "NOTIFY",
                "EQUIPMENT": "NOTIFY",
                "FACILITY": "NOTIFY",
                "PROCESS": "PRIOR_APPROVAL",
                "ANALYTICAL_METHOD": "NOTIFY" if i % 4 == 3 else "PRIOR_APPROVAL",
                "SUPPLIER": "PRIOR_APPROVAL" if i % 3 == 1 else "NOTIFY",
            }
            self.deadline[sid], self.obligation[sid] = notify, change
            stamp = datetime.combine(effective, time())
            for event in NOTIFIABLE_EVENTS:
                self.add(
                    "agreement_term",
                    term_id=f"{agreement_id}-N-{event}",
                    agreement_id=agreement_id,
                    term_type="NOTIFICATION",
                    subject=event,
                    deadline_hours=notify[event],
                    obligation=None,
                    updated_at=stamp,
                )
            for ctype in CHANGE_TYPES:
                self.add(
                    "agreement_term",
                    term_id=f"{agreement_id}-C-{ctype}",
                    agreement_id=agreement_id,
                    term_type="CHANGE",
                    subject=ctype,
                    deadline_hours=None,
                    obligation=change[ctype],
                    updated_at=stamp,
                )

    def _operators(self) -> None:
        n_trains = self.preset.trains_per_modality * len(P.MODALITIES)
        team = 5
        self.qa = [self.operator("QA specialist") for _ in range(max(6, n_trains // 4))]
        self.qc = [self.operator("QC analyst") for _ in range(max(5, n_trains // 4))]
        self.teams = [
            [self.operator("Production operator") for _ in range(team)] for _ in range(n_trains)
        ]

    def operator(self, role: str) -> str:
        n = len(self.rows.get("operator", [])) + 1
        name = f"{P.FIRST_NAMES[n % 26]} {P.LAST_NAMES[(n * 7 + n // 26) % 25]}"
        op_id = f"OP-{n:04d}"
        self.add(
            "operator",
            operator_id=op_id,
            name=name,
            role=role,
            updated_at=self.start - days(300 - n % 200),
        )
        return op_id

    def _products_and_trains(self) -> None:
        rng = self.rng
        self.products: list[dict] = []
        by_modality: dict[str, list[dict]] = {m: [] for m in P.MODALITIES}
        counts = [
            self.preset.products_per_sponsor[i % len(self.preset.products_per_sponsor)]
            for i in range(len(self.sponsors))
        ]
        n = 0
        # Interleave sponsors so that every train hosts products of different sponsors.
        for k in range(max(counts)):
            for i, s in enumerate(self.sponsors):
                if k >= counts[i]:
                    continue
                own = self.profile[s["sponsor_id"]].modalities
                modality = own[k % len(own)] if own else P.MODALITIES[(i + k) % 3]
                product = self._product(s["sponsor_id"], modality, n)
                by_modality[modality].append(product)
                n += 1
        self.trains: list[dict] = []
        team_iter = iter(self.teams)
        for modality in P.MODALITIES:
            pool = by_modality[modality]
            for t in range(self.preset.trains_per_modality):
                train_id = f"{P.TRAIN_PREFIX[modality]}-{chr(65 + t) if t < 26 else t}"
                if self.preset.trains_per_modality > 26:
                    train_id = f"{P.TRAIN_PREFIX[modality]}-{t + 1:02d}"
                per_train = min(3, len(pool))
                hosted = [pool[(t * per_train + k) % len(pool)] for k in range(per_train)]
                train = {
                    "train_id": train_id,
                    "modality": modality,
                    "products": hosted,
                    "team": next(team_iter),
                    "equipment": [],
                }
                self.trains.append(train)
                for product in hosted:
                    product["_trains"].append(train)
        self.made_products = [p for p in self.products if p["_trains"]]
        # Products in technology transfer: contracted, not yet made.
        for k in range(self.preset.tech_transfer_projects):
            s = self.sponsors[k % len(self.sponsors)]
            own = self.profile[s["sponsor_id"]].modalities
            self._product(s["sponsor_id"], own[k % len(own)] if own else P.MODALITIES[k % 3], n + k)
        rng.shuffle(self.qa)  # reviewers are not assigned by seniority

    def _product(self, sponsor_id: str, modality: str, n: int) -> dict:
        stem = P.PRODUCT_STEMS[n % len(P.PRODUCT_STEMS)]
        suffix = "" if n < len(P.PRODUCT_STEMS) else f" {n // len(P.PRODUCT_STEMS) + 1}"
        product = self.add(
            "product",
            product_id=f"P-{sponsor_id}-{n + 1:03d}",
            sponsor_id=sponsor_id,
            site_id=SITE_ID,
            name=f"{stem}{suffix} (fictional)",
            modality=modality,
            dosage_form=P.DOSAGE_FORMS[modality][n % 2],
            markets=P.MARKETS[n % len(P.MARKETS)],
            updated_at=self.start - days(250 - n % 100),
            _code=f"{stem[:3].upper()}{n + 1:02d}",
            _trains=[],
            _sops=[],
        )
        self.products.append(product)
        return product

    def _sops_and_training(self) -> None:
        rng = self.rng
        site_sops = []
        for i, title in enumerate(P.SITE_SOPS):
            site_sops.append(self._sop(f"SOP-SITE-{i + 1:03d}", title, "SITE"))
        self.site_sops = site_sops
        for product in self.products:
            own = [
                self._sop(
                    f"SOP-{product['_code']}-{k + 1}", f"{product['name']}: {title}", "PRODUCT"
                )
                for k, title in enumerate(("manufacturing instructions", "in-process controls"))
            ]
            product["_sops"] = own + [site_sops[i] for i in P.PRODUCT_SITE_SOPS]
            for sop in product["_sops"]:
                self.add(
                    "product_sop",
                    product_sop_id=f"PS-{product['_code']}-{sop['sop_id']}",
                    product_id=product["product_id"],
                    sop_id=sop["sop_id"],
                    updated_at=product["updated_at"],
                )
        # Every operator is trained on what their work needs, refreshed yearly with overlap.
        all_sops = site_sops + [s for p in self.made_products for s in p["_sops"][:2]]
        need: list[tuple[str, list[dict]]] = [(op, all_sops) for op in self.qa + self.qc]
        for train in self.trains:
            sops = site_sops + [s for p in train["products"] for s in p["_sops"][:2]]
            need += [(op, sops) for op in train["team"]]
        for op, sops in need:
            for sop in sops:
                self.train_operator(op, sop, self.start - days(rng.randint(40, 90)))
        del rng

    def _sop(self, number: str, title: str, scope: str) -> dict:
        version = 1 + self.rng.randint(1, 4)
        effective = (self.now - days(self.rng.randint(30, 600))).date()
        return self.add(
            "sop",
            sop_id=number,
            sop_number=number,
            title=title,
            version=version,
            effective_from=effective,
            scope=scope,
            updated_at=datetime.combine(effective, time()),
        )

    def train_operator(self, op: str, sop: dict, first: datetime) -> None:
        """Yearly training records on one SOP from `first`, each valid 395 days."""
        trained = first
        while trained < self.now - DAY:
            due = trained + days(395)
            newest = trained + days(365) >= self.now - DAY
            effective = datetime.combine(sop["effective_from"], time())
            version = sop["version"] if trained >= effective else sop["version"] - 1
            status = "CURRENT" if not newest or due - self.now > days(30) else "DUE"
            self.add(
                "training_record",
                training_id=self.next_id("training_record", "TR"),
                operator_id=op,
                sop_id=sop["sop_id"],
                sop_version=version,
                status=status,
                trained_at=trained.date(),
                due_at=due.date(),
                updated_at=trained,
            )
            trained += days(365)

    def _suppliers_and_bom(self) -> None:
        rng = self.rng
        names = P.SUPPLIER_NAMES + P.API_SUPPLIER_NAMES
        self.suppliers = [
            self.add(
                "supplier",
                supplier_id=f"SUP-{i + 1:03d}",
                name=name,
                status="APPROVED",
                qualified_at=(self.start - days(500 + 20 * i)).date(),
                updated_at=self.start - days(480 + 20 * i),
            )
            for i, name in enumerate(names)
        ]
        api_suppliers = self.suppliers[len(P.SUPPLIER_NAMES) :]
        # material name -> supplier row; one approved source per material
        self.material_supplier: dict[str, dict] = {
            m: self.suppliers[spec[1]] for m, spec in P.MATERIALS.items()
        }
        for product in self.products:
            items = [
                (m, spec[2], spec[3])
                for m, spec in P.MATERIALS.items()
                if product["modality"] in spec[0]
            ]
            api = f"{product['name'].removesuffix(' (fictional)')} drug substance"
            supplier = api_suppliers[len(self.material_supplier) % len(api_suppliers)]
            self.material_supplier[api] = supplier
            items.insert(0, (api, round(rng.uniform(2, 40), 1), "kg"))
            product["_bom"] = []
            for k, (material, qty, unit) in enumerate(items):
                product["_bom"].append((material, qty, unit))
                self.add(
                    "bom_item",
                    bom_item_id=f"BOM-{product['_code']}-{k + 1:02d}",
                    product_id=product["product_id"],
                    material_name=material,
                    supplier_id=self.material_supplier[material]["supplier_id"],
                    quantity=qty,
                    unit=unit,
                    updated_at=product["updated_at"],
                )

    def _equipment(self) -> None:
        for train in self.trains:
            for code, name, etype in P.TRAIN_EQUIPMENT[train["modality"]]:
                eq = self.add(
                    "equipment",
                    equipment_id=f"{train['train_id']}-{code}",
                    site_id=SITE_ID,
                    name=f"{name} ({train['train_id']})",
                    equipment_type=etype,
                    train=train["train_id"],
                    status="QUALIFIED",
                    calibration_due=None,
                    updated_at=None,
                )
                train["equipment"].append(eq)
        for eq_id, name, etype in P.SITE_EQUIPMENT:
            self.add(
                "equipment",
                equipment_id=eq_id,
                site_id=SITE_ID,
                name=name,
                equipment_type=etype,
                train=None,
                status="QUALIFIED",
                calibration_due=None,
                updated_at=None,
            )

    def equipment_history(self) -> None:
        """Qualification yearly, calibration every 170 days (valid 182), maintenance quarterly."""
        rng = self.rng
        for eq in self.rows["equipment"]:
            eid = eq["equipment_id"]
            schedule = (
                ("QUALIFICATION", 365, 395),
                ("CALIBRATION", 170, 182),
                ("MAINTENANCE", 91, None),
            )
            last = None
            for kind, every, valid in schedule:
                at = self.start - days(rng.randint(every // 2, every)) + hours(rng.randint(7, 15))
                while at < self.now:
                    self.add(
                        "equipment_event",
                        equipment_event_id=self.next_id("equipment_event", "EE"),
                        equipment_id=eid,
                        event_type=kind,
                        performed_at=at,
                        next_due=(at + days(valid)).date() if valid else None,
                        result="PASS",
                        updated_at=at,
                    )
                    if kind == "CALIBRATION":
                        eq["calibration_due"] = (at + days(valid)).date()
                    last = max(last or at, at)
                    at += days(every)
            eq["updated_at"] = last
