"""Audit pack in one click (issue 5): a sponsor's records for a period as a watermarked PDF,
CSV and Parquet data files and a manifest with hashes, read only through its confined scope.
"""

from warehouse.auditpack.pack import (
    AuditPack,
    PackError,
    PackRequest,
    build_pack,
    generate_pack,
)

__all__ = ["AuditPack", "PackError", "PackRequest", "build_pack", "generate_pack"]
