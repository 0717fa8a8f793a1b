"""Mutation testing of the security suite: make a realistic mistake, see a test fail.

Each mutant is one plausible change that would let one sponsor see another's data (or let
someone in who should be out). For each, this copies the committed tree (or, with
--working-tree, the files as they are now) to a scratch folder, applies the change, checks
the copy still imports, and runs the security suite (`tests/security`, quick files first,
stopping at the first failure). A mutant that passes every test "survives": the suite has a
blind spot. Run it before you stop; none may survive.

    python -m tests.security.mutants            # every mutant
    python -m tests.security.mutants --list     # names only
    python -m tests.security.mutants --only demo-tour-unguarded --only export-without-deliver
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "tests" / "security"
# Quick files first: with -x a caught mistake stops at its first failing test, so most
# mutants cost a minute; the rest of tests/security follows in name order.
FIRST = (
    "test_scope_attacks.py", "test_role_gates.py", "test_partitions_oracle.py",
    "test_free_text.py", "test_cache_scope.py", "test_scope_properties.py",
    "test_segregation_app.py", "test_demo_isolation.py", "test_hostile_source.py",
)  # fmt: skip


# Not run on a mutant: it checks the mutants' texts are in the code, which a mutant changes.
NOT_ON_A_MUTANT = ("test_mutants_apply.py",)


def suite_files() -> list[str]:
    rest = sorted(
        p.name
        for p in SUITE.glob("test_*.py")
        if p.name not in FIRST and p.name not in NOT_ON_A_MUTANT
    )
    return [f"tests/security/{name}" for name in (*FIRST, *rest)]


TIMEOUT_S = 1500  # one mutant's whole suite; a survivor runs every test


@dataclass(frozen=True)
class Mutant:
    name: str
    mistake: str  # what a developer might have done, in words
    path: str
    old: str
    new: str
    also: tuple[tuple[str, str, str], ...] = ()  # further (path, old, new) of the same mistake


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "every-page-for-every-role",
        "the page registry hands every role every page",
        "portal/navigation.py",
        "return [page for page in PAGES if role in page.roles]",
        "return list(PAGES)",
    ),
    Mutant(
        "demo-tour-unguarded",
        "the demo tour trusts the router: neither the page nor its scopes check the role",
        "pages/demo/demo_tour.py",
        "if current_principal().role not in DEMO_TOUR_ROLES:",
        "if current_principal() is None:",
        also=(
            (
                "portal/context.py",
                "if current_principal().role not in DEMO_TOUR_ROLES:\n"
                '        st.error("The demo tour',
                'if current_principal() is None:\n        st.error("The demo tour',
            ),
        ),
    ),
    Mutant(
        "export-without-deliver",
        "an export button builds its file without re-checking the registry at fetch time",
        "portal/widgets.py",
        'deliver(principal, lambda: export_csv(rows(), stamp()), log("csv"))',
        "(lambda: export_csv(rows(), stamp()))",
    ),
    Mutant(
        "previous-occupant-unredacted",
        "the nightly job keeps the previous batch of a shared vessel used by another client",
        "etl/derive.py",
        'pl.when(same).then(before["batch_id"]).alias("previous_batch_id")',
        'before["batch_id"].alias("previous_batch_id")',
    ),
    Mutant(
        "deviations-to-every-sponsor",
        "the contract sends every deviation to every sponsor's partition",
        "warehouse/contract.py",
        'reach=(Backref("deviation_link", ("deviation_id",)),)),',
        "reach=(Everyone(),)),",
    ),
    Mutant(
        "shared-text-unmasked",
        "shared records' free text is published as written",
        "etl/route.py",
        "needles, out, report = masked.result()",
        "needles, _, _ = masked.result(); out, report = {}, []",
    ),
    Mutant(
        "own-text-unmasked",
        "one sponsor's own records' free text is published as written",
        "etl/route.py",
        "out, more = mask_text(",
        "out, more = {}, []; _ = (",
    ),
    Mutant(
        "split-lot-number-unmasked",
        "a number with a letter after it (a split lot's) is not taken for that number",
        "etl/redact.py",
        'after = "(?![0-9])" if _ends_in_digit(needle) else "(?![A-Za-z0-9])"',
        'after = "(?![A-Za-z0-9])"',
    ),
    Mutant(
        "kept-text-masked-as-before",
        "an incremental run keeps files whose text names an identifier that changed",
        "etl/route.py",
        'renamed = set(named.get_column("__table"))',
        "renamed = set()",
    ),
    Mutant(
        "kept-entries-masked-as-before",
        "an incremental run keeps entries whose text names an identifier that changed",
        "etl/route.py",
        "if before.entry_texts.is_in(hits.implode()).any():",
        "if False:",
    ),
    Mutant(
        "audit-pack-through-cmo-scope",
        "the audit pack is read through the unconfined site scope",
        "warehouse/auditpack/pack.py",
        "scope = open_sponsor_scope(as_warehouse(warehouse_root), request.sponsor_id)",
        "scope = open_cmo_scope(as_warehouse(warehouse_root))",
        also=(
            (
                "warehouse/auditpack/pack.py",
                "from warehouse.scope import Scope, open_sponsor_scope",
                "from warehouse.scope import Scope, open_cmo_scope, open_sponsor_scope",
            ),
        ),
    ),
    Mutant(
        "allowed-directories-widened",
        "the sponsor scope may read the whole snapshot folder",
        "warehouse/scope.py",
        "allowed = [layout.partition_dir(info.path, t.name, sponsor_id) for t in TABLES]",
        "allowed = [info.path]",
    ),
    Mutant(
        "external-access-left-on",
        "the confined DuckDB instance keeps external access on",
        "warehouse/scope.py",
        'self._con.execute("SET enable_external_access = false")',
        "pass",
    ),
    Mutant(
        "scope-cache-without-sponsor",
        "the shared scope cache is keyed without the sponsor (a leading _ hides it from the key)",
        "portal/context.py",
        "def _scope(root: str, run_id: str, sponsor_id: str | None) -> Scope:\n"
        '    """One confined instance per (warehouse root, snapshot, sponsor); scope is in the key."""\n'  # noqa: E501
        "    if sponsor_id is None:\n"
        "        return open_cmo_scope(layout.as_warehouse(root))\n"
        "    return open_sponsor_scope(layout.as_warehouse(root), sponsor_id)",
        "def _scope(root: str, run_id: str, _sponsor_id: str | None) -> Scope:\n"
        "    if _sponsor_id is None:\n"
        "        return open_cmo_scope(layout.as_warehouse(root))\n"
        "    return open_sponsor_scope(layout.as_warehouse(root), _sponsor_id)",
    ),
    Mutant(
        "sponsor-from-the-url",
        "a sponsor-bound role's sponsor may be chosen by a query parameter",
        "portal/context.py",
        "        return principal.sponsor_id\n",
        '        return st.query_params.get("sponsor", principal.sponsor_id)\n',
    ),
    Mutant(
        "one-memo-for-all-scopes",
        "every scope shares one memo of query results",
        "warehouse/scope.py",
        "self._memo: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()",
        "self._memo = _SHARED_MEMO",
        also=(
            (
                "warehouse/scope.py",
                "class Scope:",
                "_SHARED_MEMO: OrderedDict = OrderedDict()\n\n\nclass Scope:",
            ),
        ),
    ),
    Mutant(
        "principal-from-session-state",
        "the principal is taken from session state instead of the registry on every rerun",
        "portal/session.py",
        "    principal = principal_for(username, now)\n    if principal is None:",
        "    principal = st.session_state.get(PRINCIPAL) or principal_for(username, now)\n"
        "    if principal is None:",
    ),
    Mutant(
        "reader-trusts-labels-only",
        "a sponsor scope opens without comparing its files with the manifest",
        "warehouse/scope.py",
        "    _check_partition_files(info, sponsor_id)\n",
        "",
    ),
)


def _copy_tree(target: Path, working_tree: bool) -> None:
    """The committed tree (HEAD), or the working tree's tracked and untracked files as they
    are now."""
    if not working_tree:
        archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True,
                                 check=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
        return
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def _replace_once(path: Path, old: str, new: str, name: str) -> None:
    text = path.read_text()
    if text.count(old) != 1:
        raise SystemExit(f"mutant {name}: the text to change occurs {text.count(old)} times in "
                         f"{path.name}; update the mutant to the code")  # fmt: skip
    path.write_text(text.replace(old, new))


def run_mutant(
    mutant: Mutant, pytest_args: list[str], working_tree: bool = False
) -> tuple[str, float, str]:
    """('killed' | 'survived' | 'broken', seconds, the failing test or why)."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"mutant-{mutant.name}-") as scratch:
        tree = Path(scratch)
        _copy_tree(tree, working_tree)
        for path, old, new in ((mutant.path, mutant.old, mutant.new), *mutant.also):
            _replace_once(tree / path, old, new, mutant.name)
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        env.pop("PORTAL_DATA_DIR", None)
        module = mutant.path.removesuffix(".py").replace("/", ".")
        if not module.startswith("pages."):
            check = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=tree,
                                   env=env, capture_output=True, text=True)  # fmt: skip
            if check.returncode != 0:
                return "broken", time.monotonic() - started, check.stderr.strip()[-300:]
        try:
            done = subprocess.run(
                [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                 *suite_files(), *pytest_args],
                cwd=tree, env=env, capture_output=True, text=True, timeout=TIMEOUT_S,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return "broken", time.monotonic() - started, f"suite ran over {TIMEOUT_S} s"
    seconds = time.monotonic() - started
    failed = [line for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    if done.returncode == 0:
        return "survived", seconds, "every security test passed"
    if failed:
        return "killed", seconds, failed[0]
    return "broken", seconds, (done.stdout + done.stderr).strip()[-300:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.security.mutants",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--only", action="append", default=[], help="run this mutant (repeat)")
    parser.add_argument(
        "--working-tree", action="store_true", help="mutate the files as they are, not HEAD"
    )
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only]
    unknown = set(args.only) - {m.name for m in MUTANTS}
    if unknown:
        parser.error(f"unknown mutant(s): {', '.join(sorted(unknown))}")
    if args.list:
        for mutant in chosen:
            print(f"{mutant.name:32} {mutant.mistake}")
        return 0
    outcome = {}
    for mutant in chosen:
        verdict, seconds, why = run_mutant(mutant, args.pytest_args, args.working_tree)
        outcome[mutant.name] = verdict
        print(f"{verdict:9} {mutant.name:32} {seconds:6.0f} s  {why}", flush=True)
    survivors = [name for name, verdict in outcome.items() if verdict != "killed"]
    print(f"{len(chosen) - len(survivors)} killed, {len(survivors)} survived or broken")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
