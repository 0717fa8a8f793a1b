"""The page registry: which page scripts exist and which roles may open them."""

from __future__ import annotations

from dataclasses import dataclass

from portal.users import CMO_ROLES


@dataclass(frozen=True)
class PageSpec:
    script: str
    title: str
    url_path: str
    roles: frozenset[str]
    icon: str = ""


# Streamlit also auto-registers every pages/*.py under its file stem (multipage v1) for the
# first run of a process, and for every AppTest run: a URL path equal to a stem would run that
# script without portal_app.py. Our URL paths therefore never equal a script's stem.

# Roles that look at quality data (everyone but the user administrator).
DATA_ROLES = frozenset({"sponsor_qa", "auditor", "bd_demo"}) | CMO_ROLES

PAGES: tuple[PageSpec, ...] = (
    # First for bd_demo, so it is the demo user's landing page.
    PageSpec(
        "pages/demo_tour.py", "Demo tour", "guided-tour", frozenset({"bd_demo"}), ":material/tour:"
    ),  # fmt: skip
    # First for CMO staff: Elena's monthly review starts here.
    PageSpec(
        "pages/cockpit.py",
        "Management cockpit",
        "management-cockpit",
        CMO_ROLES | {"bd_demo"},
        ":material/monitoring:",
    ),  # fmt: skip
    PageSpec("pages/overview.py", "Overview", "home", DATA_ROLES, ":material/dashboard:"),
    PageSpec("pages/batches.py", "Batches", "batch-list", DATA_ROLES, ":material/inventory_2:"),
    PageSpec(
        "pages/batch_record.py",
        "Batch record",
        "batch-record",
        DATA_ROLES,
        ":material/fact_check:",
    ),
    PageSpec(
        "pages/deviations.py",
        "Deviations & OOS",
        "deviations-oos",
        DATA_ROLES,
        ":material/report_problem:",
    ),
    PageSpec("pages/capa.py", "CAPA aging", "capa-aging", DATA_ROLES, ":material/build_circle:"),
    PageSpec(
        "pages/change_control.py",
        "Change control",
        "change-control",
        DATA_ROLES,
        ":material/published_with_changes:",
    ),
    PageSpec("pages/training.py", "Training", "training-status", DATA_ROLES, ":material/school:"),
    PageSpec(
        "pages/equipment.py",
        "Equipment & suppliers",
        "equipment-suppliers",
        DATA_ROLES,
        ":material/precision_manufacturing:",
    ),
    PageSpec(
        "pages/tech_transfer.py",
        "Tech transfer",
        "tech-transfer",
        DATA_ROLES,
        ":material/swap_horiz:",
    ),
    PageSpec(
        "pages/compliance.py",
        "Quality-agreement compliance",
        "qa-agreement-compliance",
        DATA_ROLES,
        ":material/gavel:",
    ),  # fmt: skip
    PageSpec(
        "pages/shared_equipment.py",
        "Shared equipment",
        "shared-equipment",
        CMO_ROLES | {"bd_demo"},
        ":material/factory:",
    ),  # fmt: skip
    PageSpec(
        "pages/audit_pack.py",
        "Audit pack",
        "audit-pack",
        frozenset({"sponsor_qa", "auditor"}) | CMO_ROLES,
        ":material/folder_zip:",
    ),  # fmt: skip
    PageSpec(
        "pages/access_log.py",
        "Access log",
        "access-log",
        frozenset({"sponsor_qa"}) | CMO_ROLES,
        ":material/history:",
    ),
    PageSpec(
        "pages/users_admin.py",
        "Users",
        "users",
        frozenset({"admin"}) | CMO_ROLES,
        ":material/manage_accounts:",
    ),
)


def pages_for(role: str) -> list[PageSpec]:
    """The pages a role may open, in menu order; the first is the default."""
    return [page for page in PAGES if role in page.roles]
