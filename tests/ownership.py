"""Who may see what, decided from the source of record, never from published files.

The segregation checks must not trust the ETL they check: if the job wrote one sponsor's
deviations into every partition, ownership read back from the partitions would call them
"own". This oracle reads the system of record (the demo plant's SQLite database) with plain
SQL and applies the contract's routing rules as DESIGN.md states them: a batch, product or
complaint belongs to its sponsor; a deviation to the sponsors of its links; a change control
to the sponsors of its impact rows; a CAPA to the sponsors of its source record.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

FICTIONAL = " (fictional)"

# A CAPA goes to the sponsors of its source record: (capa_id, capa_number, sponsor_id).
_CAPA_SPONSORS = """
        SELECT c.capa_id, c.capa_number, l.sponsor_id FROM capa c
          JOIN deviation_link l ON c.source_type = 'DEVIATION' AND l.deviation_id = c.deviation_id
        UNION
        SELECT c.capa_id, c.capa_number, b.sponsor_id FROM capa c
          JOIN oos_investigation o ON c.source_type = 'OOS' AND o.oos_id = c.oos_id
          JOIN batch b ON b.batch_id = o.batch_id
        UNION
        SELECT c.capa_id, c.capa_number, p.sponsor_id FROM capa c
          JOIN complaint k ON c.source_type = 'COMPLAINT' AND k.complaint_id = c.complaint_id
          JOIN product p ON p.product_id = k.product_id
        UNION
        SELECT c.capa_id, c.capa_number, p.sponsor_id FROM capa c
          JOIN inspection_finding f
            ON c.source_type = 'SELF_INSPECTION' AND f.finding_id = c.finding_id
          JOIN product p ON p.product_id = f.product_id"""

# record kind -> SQL giving (identifier, sponsor_id): the sponsors that may see the record.
_VISIBLE = {
    "sponsor name": "SELECT name, sponsor_id FROM sponsor",
    "sponsor id": "SELECT sponsor_id, sponsor_id FROM sponsor",
    "product name": "SELECT name, sponsor_id FROM product",
    "batch number": "SELECT batch_number, sponsor_id FROM batch",
    "complaint number": """SELECT c.complaint_number, p.sponsor_id
                           FROM complaint c JOIN product p USING (product_id)""",
    "deviation number": """SELECT DISTINCT d.deviation_number, l.sponsor_id
                           FROM deviation d JOIN deviation_link l USING (deviation_id)""",
    "change number": """SELECT DISTINCT c.change_number, i.sponsor_id
                        FROM change_control c JOIN change_impact i USING (change_id)""",
    "CAPA number": f"SELECT DISTINCT capa_number, sponsor_id FROM ({_CAPA_SPONSORS})",
}


@dataclass(frozen=True)
class Ownership:
    """identifier -> the sponsors that may see what it names, per kind of identifier."""

    visible: dict[str, dict[str, frozenset[str]]]

    def sponsors(self) -> list[str]:
        return sorted({s for seen in self.visible["sponsor id"].values() for s in seen})

    def own(self, sponsor: str, *kinds: str) -> set[str]:
        """Identifiers of records the sponsor may see (all kinds unless named)."""
        return {
            name
            for kind, names in self.visible.items()
            if not kinds or kind in kinds
            for name, seen in names.items()
            if sponsor in seen
        }

    def foreign(self, sponsor: str, *kinds: str) -> set[str]:
        """Identifiers of records the sponsor may not see: none may reach its screen or files."""
        return {
            name
            for kind, names in self.visible.items()
            if not kinds or kind in kinds
            for name, seen in names.items()
            if sponsor not in seen
        } - self.own(sponsor)


def ownership(source: Path) -> Ownership:
    """The oracle for one source database (a SQLite file of the contract's schema)."""
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as db:
        visible: dict[str, dict[str, frozenset[str]]] = {}
        for kind, sql in _VISIBLE.items():
            pairs: dict[str, set[str]] = {}
            for identifier, sponsor in db.execute(sql):
                if identifier is None or sponsor is None:
                    continue
                forms = {identifier, identifier.removesuffix(FICTIONAL)}
                for form in forms:
                    pairs.setdefault(form, set()).add(sponsor)
            visible[kind] = {name: frozenset(seen) for name, seen in pairs.items()}
    return Ownership(visible)


# Which sponsors may see each record, table by table, by DESIGN.md's routing rules applied to
# the source with plain SQL: (key, sponsor_id) pairs. Tables left out are the CMO's master
# data (site, operators, equipment, suppliers, SOPs, lots, training, self-inspections), which
# name no sponsor's record; tables routed by a parent are checked through that parent.
_RECORD_SPONSORS = {
    "sponsor": "SELECT sponsor_id, sponsor_id FROM sponsor",
    "quality_agreement": "SELECT agreement_id, sponsor_id FROM quality_agreement",
    "product": "SELECT product_id, sponsor_id FROM product",
    "batch": "SELECT batch_id, sponsor_id FROM batch",
    "oos_investigation": """SELECT o.oos_id, b.sponsor_id
                            FROM oos_investigation o JOIN batch b USING (batch_id)""",
    "deviation": "SELECT DISTINCT deviation_id, sponsor_id FROM deviation_link",
    "deviation_link": "SELECT link_id, sponsor_id FROM deviation_link",
    "change_control": "SELECT DISTINCT change_id, sponsor_id FROM change_impact",
    "change_impact": "SELECT impact_id, sponsor_id FROM change_impact",
    "inspection_finding": """SELECT f.finding_id, p.sponsor_id
                             FROM inspection_finding f JOIN product p USING (product_id)""",
    "capa": f"SELECT DISTINCT capa_id, sponsor_id FROM ({_CAPA_SPONSORS})",
}


# Records that go where the record they belong to goes: table -> (its key, the column naming
# that record, that record's table), in an order where each parent comes first.
_FOLLOWS = (
    ("agreement_term", "term_id", "agreement_id", "quality_agreement"),
    ("master_batch_record", "mbr_id", "product_id", "product"),
    ("product_sop", "product_sop_id", "product_id", "product"),
    ("bom_item", "bom_item_id", "product_id", "product"),
    ("product_review", "review_id", "product_id", "product"),
    ("tech_transfer", "project_id", "product_id", "product"),
    ("tt_milestone", "milestone_id", "project_id", "tech_transfer"),
    ("complaint", "complaint_id", "product_id", "product"),
    ("batch_event", "event_id", "batch_id", "batch"),
    ("test_result", "test_id", "batch_id", "batch"),
    ("material_consumption", "consumption_id", "batch_id", "batch"),
    ("equipment_usage", "usage_id", "batch_id", "batch"),
    ("change_market", "change_market_id", "impact_id", "change_impact"),
    # A decision receipt (the QMS's record of a portal signature) goes to its impact's sponsor.
    ("decision_receipt", "decision_id", "impact_id", "change_impact"),
    ("capa_extension", "extension_id", "capa_id", "capa"),
    ("capa_effectiveness", "check_id", "capa_id", "capa"),
)


# Tables whose records belong to sponsors (the rest is the CMO's master data).
OWNED_TABLES = frozenset(_RECORD_SPONSORS) | {table for table, *_ in _FOLLOWS}


def record_sponsors(source: Path) -> dict[str, dict[str, frozenset[str]]]:
    """table -> key -> the sponsors that may see that record (from the source only)."""
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as db:
        found: dict[str, dict[str, frozenset[str]]] = {}
        for table, sql in _RECORD_SPONSORS.items():
            pairs: dict[str, set[str]] = {}
            for key, sponsor in db.execute(sql):
                pairs.setdefault(key, set()).add(sponsor)
            found[table] = {key: frozenset(seen) for key, seen in pairs.items()}
        for table, key, column, parent in _FOLLOWS:
            rows = db.execute(f"SELECT {key}, {column} FROM {table}")
            found[table] = {k: found[parent].get(ref, frozenset()) for k, ref in rows}
    return found
