"""Audit-pack baseline: the bare export of one sponsor's records, no pack around them.

`python -m bench.bare_export WAREHOUSE SPONSOR OUT.zip` reads every table of the sponsor's
partitions through its confined scope and writes each as CSV into a ZIP: the floor of getting
a sponsor's data out, without sections, filtering by period, PDF, watermark or signature.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

from warehouse.contract import TABLES
from warehouse.scope import open_sponsor_scope


def bare_export(warehouse: Path, sponsor: str, out: Path) -> int:
    """Write every table of `sponsor` as CSV into the ZIP `out`; returns the rows written."""
    scope = open_sponsor_scope(warehouse, sponsor)
    rows = 0
    try:
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for table in TABLES:
                frame = scope.frame(table.name, f"SELECT * FROM {table.name}")
                rows += frame.height
                archive.writestr(f"{table.name}.csv", frame.write_csv())
    finally:
        scope.close()
    return rows


if __name__ == "__main__":
    print(bare_export(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])))
