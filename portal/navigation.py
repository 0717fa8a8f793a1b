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


# Streamlit auto-registers every top-level pages/*.py under its file stem (multipage v1) on a
# process's first run, and on every AppTest run: such a URL would run the script without
# portal_app.py (no sign-in). Page scripts therefore live one folder down, by audience
# (pages/sponsor, pages/cmo, pages/demo, pages/admin), where Streamlit does not look; and
# URL paths still never equal a script's stem.

# Roles that look at quality data (everyone but the user administrator).
DATA_ROLES = frozenset({"sponsor_qa", "auditor", "bd_demo"}) | CMO_ROLES

ACCESS_LOG_ROLES = frozenset({"sponsor_qa"}) | CMO_ROLES
AUDIT_PACK_ROLES = frozenset({"sponsor_qa", "auditor"}) | CMO_ROLES
SITE_ROLES = CMO_ROLES | {"bd_demo"}

# Menu order; a role's first page is its landing page (demo tour for bd_demo, cockpit for CMO).
# fmt: off
PAGES: tuple[PageSpec, ...] = (
    PageSpec("pages/demo/demo_tour.py", "Demo tour", "guided-tour", frozenset({"bd_demo"}),
             ":material/tour:"),
    PageSpec("pages/cmo/cockpit.py", "Management cockpit", "management-cockpit", SITE_ROLES,
             ":material/monitoring:"),
    PageSpec("pages/sponsor/overview.py", "Overview", "home", DATA_ROLES,
             ":material/dashboard:"),
    PageSpec("pages/sponsor/batches.py", "Batches", "batch-list", DATA_ROLES,
             ":material/inventory_2:"),
    PageSpec("pages/sponsor/batch_record.py", "Batch record", "batch-record", DATA_ROLES,
             ":material/fact_check:"),
    PageSpec("pages/sponsor/deviations.py", "Deviations & OOS", "deviations-oos", DATA_ROLES,
             ":material/report_problem:"),
    PageSpec("pages/sponsor/capa.py", "CAPA aging", "capa-aging", DATA_ROLES,
             ":material/build_circle:"),
    PageSpec("pages/sponsor/change_control.py", "Change control", "change-control", DATA_ROLES,
             ":material/published_with_changes:"),
    PageSpec("pages/sponsor/training.py", "Training", "training-status", DATA_ROLES,
             ":material/school:"),
    PageSpec("pages/sponsor/equipment.py", "Equipment & suppliers", "equipment-suppliers",
             DATA_ROLES, ":material/precision_manufacturing:"),
    PageSpec("pages/sponsor/tech_transfer.py", "Tech transfer", "tech-transfer", DATA_ROLES,
             ":material/swap_horiz:"),
    PageSpec("pages/sponsor/compliance.py", "Quality-agreement compliance",
             "qa-agreement-compliance", DATA_ROLES, ":material/gavel:"),
    PageSpec("pages/cmo/shared_equipment.py", "Shared equipment", "shared-equipment", SITE_ROLES,
             ":material/factory:"),
    PageSpec("pages/sponsor/audit_pack.py", "Audit pack", "audit-pack", AUDIT_PACK_ROLES,
             ":material/folder_zip:"),
    PageSpec("pages/sponsor/access_log.py", "Access log", "access-log", ACCESS_LOG_ROLES,
             ":material/history:"),
    PageSpec("pages/admin/users_admin.py", "Users", "users", frozenset({"admin"}) | CMO_ROLES,
             ":material/manage_accounts:"),
)
# fmt: on


def pages_for(role: str) -> list[PageSpec]:
    """The pages a role may open, in menu order; the first is the default."""
    return [page for page in PAGES if role in page.roles]
