"""The benchmark figures (issue 7, and the data share's), each against a baseline measured in
the same run."""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import (
    browser_bench,
    etl_bench,
    first_views,
    page_bench,
    plants,
    server_bench,
    share_bench,
)
from bench.report import Figure, ratio
from warehouse.layout import MANIFEST, current_snapshot
from warehouse.scope import open_sponsor_scope

GIB = 1 << 30
ROOT = Path(__file__).resolve().parents[1]
SPONSOR = plants.MEASURED_SPONSOR
ETL_SECONDS_TARGET = 60
ETL_ROUNDS = 2  # full build and bare copy, alternated; each figure the faster
PEAK_TARGET = 4 * GIB


def measure_all(preset: str, only: set[str], runs: int) -> list[Figure]:
    """Every selected figure for `preset` ("large" also measures pages etc. on demo)."""
    from bench import __main__ as settings

    presets = ["demo", "large"] if preset == "large" else [preset]
    biggest = presets[-1]
    figures: list[Figure] = []
    try:
        if "etl" in only:
            figures += etl_full(biggest)
        if "incremental" in only:
            figures += etl_incremental(biggest, figures)
    finally:
        plants.empty_trash()  # what the ETL figures set aside, once both are measured
    for name in presets:
        if "pages" in only:
            figures += pages(name, runs)
        if "first-views" in only:
            figures += first_views.measure(name, _warehouse(name), SPONSOR)
        if "browser" in only:
            figures += browser(name, settings.BROWSER_RUNS[preset])
        if "auditpack" in only:
            figures += auditpack(name)
    if "isolation" in only:
        figures += isolation(preset, settings.ISOLATION_SPONSORS[preset], runs)
    if "server-concurrency" in only:
        levels, more = settings.SERVER_LEVELS[preset], settings.SERVER_MORE[preset]
        figures += server_concurrency(biggest, levels, more, settings.SERVER_VIEWS[preset])
    if {"share", "share-concurrency"} & only:
        figures += share(biggest, only, runs, SHARE_ROUNDS[preset])
    if "s3-publish" in only:
        figures += s3_publish(biggest)
    if "replicas" in only:
        figures += replicas(biggest, settings.REPLICA_USERS[preset], settings.SERVER_VIEWS[preset])
    return figures


def _warehouse(preset: str) -> Path:
    return plants.warehouse(plants.plant(preset), preset)


def etl_full(preset: str) -> list[Figure]:
    """Item 1: full build against the bare copy, in the same run; peak memory; rows/s."""
    # A scratch copy: the incremental figure changes it, and an incremental run must read
    # the same source path as the full build (a different source rebuilds in full).
    source = plants.fresh_copy(plants.plant(preset), f"etl-{preset}")
    target = plants.WORK / "warehouses" / preset
    bare_out = plants.WORK / "bare" / preset
    plants.discard(target)
    # Both runs read the source from the page cache, and neither waits for the copy's
    # write-back: the bare copy measured first right after the copy took 20.5 s, then 14.1 s.
    # Two rounds, bare copy then full build, each figure the faster of its two: this
    # machine's speed drifts by a third within an hour (the bare copy took 21.2-34.9 s on
    # 2026-12-04), and one round compared a build and a copy at different speeds.
    bares, fulls, dropped = [], [], True
    for _ in range(ETL_ROUNDS):
        dropped = etl_bench.settle(source) and dropped
        plants.discard(bare_out)
        bares.append(etl_bench.measure("bare", source, bare_out))
        plants.discard(target)
        dropped = etl_bench.settle(source) and dropped
        fulls.append(etl_bench.measure("etl", source, target))
    bare = min(bares, key=lambda run: run["seconds"])
    full = min(fulls, key=lambda run: run["seconds"])
    full["peak_bytes"] = max(run["peak_bytes"] for run in fulls)
    bare["peak_bytes"] = max(run["peak_bytes"] for run in bares)
    times = {kind: ", ".join(f"{run['seconds']:.2f}" for run in runs)
             for kind, runs in (("bare", bares), ("full", fulls))}  # fmt: skip
    rounds = (f"faster of {ETL_ROUNDS} rounds: bare copy {times['bare']} s, "
              f"full build {times['full']} s")  # fmt: skip
    cache = (
        "page cache dropped before each run"
        if dropped
        else "page cache NOT dropped (not root): the baseline depends on the machine's state"
    )
    plants.discard(bare_out)  # deleted after the incremental run (plants.discard says why)
    rows_per_s = full["rows"] / full["seconds"]
    return [
        Figure("ETL full build", preset, round(full["seconds"], 2), "s", "bare copy (same driver)",
               round(bare["seconds"], 2), ratio(full["seconds"], bare["seconds"]),
               "<= 2x bare copy", full["seconds"] <= 2 * bare["seconds"],
               f"{full['rows']:,} source rows; {rounds}; {cache}"),
        Figure("ETL full build wall time", preset, round(full["seconds"], 2), "s",
               "bare copy (same driver)", round(bare["seconds"], 2),
               ratio(full["seconds"], bare["seconds"]), f"<= {ETL_SECONDS_TARGET} s",
               full["seconds"] <= ETL_SECONDS_TARGET, "on this 2-core machine"),
        Figure("ETL full build peak memory", preset, round(full["peak_bytes"] / GIB, 2), "GiB",
               "bare copy peak", round(bare["peak_bytes"] / GIB, 2),
               ratio(full["peak_bytes"], bare["peak_bytes"]), "<= 4 GiB",
               full["peak_bytes"] <= PEAK_TARGET),
        Figure("ETL full build throughput", preset, round(rows_per_s), "rows/s",
               "bare copy rows/s", round(bare["rows"] / bare["seconds"]),
               ratio(rows_per_s, bare["rows"] / bare["seconds"]), "info", True),
    ]  # fmt: skip


def s3_publish(preset: str) -> list[Figure]:
    """Issue 14: a full build published to S3 (a real SeaweedFS on loopback) against the same
    build into a local folder, one after the other in this run."""
    from tests.s3_support import running_object_store

    source = plants.plant(preset)
    local = plants.WORK / "warehouses" / f"{preset}-local-for-s3"
    shutil.rmtree(local, ignore_errors=True)
    shutil.rmtree(plants.WORK / "s3", ignore_errors=True)
    published = json.loads((current_snapshot(_warehouse(preset)) / MANIFEST).read_text())
    sponsors = sorted({entry["sponsor_id"] for entry in published["files"].values()})
    with running_object_store(plants.WORK / "s3", sponsors) as store:
        folder = etl_bench.measure("etl", source, local)
        to_s3 = etl_bench.measure("etl", source, store.url, env=store.env() | {
            "PORTAL_DATA_DIR": str(plants.WORK / "s3" / "data")})  # fmt: skip
    shutil.rmtree(local, ignore_errors=True)
    return [
        Figure("ETL full build published to S3", preset, round(to_s3["seconds"], 2), "s",
               "the same build into a local folder", round(folder["seconds"], 2),
               ratio(to_s3["seconds"], folder["seconds"]), "info", True,
               "SeaweedFS on loopback: every file uploaded, then current.json"),
    ]  # fmt: skip


REPLICAS_FIGURE = "Page view p95 through nginx, {n} portal replicas"


def replicas(preset: str, users: int, views: int) -> list[Figure]:
    """Issue 14: the same load (server_bench: `users` sponsor QA users signed in at once,
    clicking with think time) through nginx on the whole local deployment
    (deploy/local_cluster.py: PostgreSQL, S3, replicas), with one portal replica and then with
    two, one after the other in this run."""
    from types import SimpleNamespace

    loads = {}
    try:
        for count in (1, 2):
            folder = plants.WORK / f"cluster-{count}"
            shutil.rmtree(folder, ignore_errors=True)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "AWS_"))}
            env["PORTAL_CLUSTER_DIR"] = str(folder)
            command = [sys.executable, "deploy/local_cluster.py"]
            try:
                subprocess.run([*command, "up", "--replicas", str(count), "--source",
                                str(plants.plant(preset))], cwd=ROOT, env=env, check=True,
                               capture_output=True, timeout=1800)  # fmt: skip
                state = json.loads((folder / "state.json").read_text())
                front = SimpleNamespace(
                    url=state["url"], process=SimpleNamespace(pid=state["pids"]["portal-1"])
                )
                for _ in range(count + 1):  # each pass lands on the replicas by nginx's hash
                    server_bench.warm_up(front)
                for number in range(1, count + 1):  # each replica's warming is done (as above)
                    pid = state["pids"][f"portal-{number}"]
                    server_bench.wait_idle(SimpleNamespace(process=SimpleNamespace(pid=pid)))
                loads[count] = server_bench.run_level(front, users, views)
            finally:
                subprocess.run([*command, "down"], cwd=ROOT, env=env, capture_output=True,
                               timeout=300)  # fmt: skip
                shutil.rmtree(folder, ignore_errors=True)
        if not loads[1].views or not loads[2].views:
            raise RuntimeError(f"no page view: {(loads[1].problems + loads[2].problems)[:2]}")
    except Exception as exc:  # noqa: BLE001 - reported in the figure, not fatal
        note = f"not measured: {type(exc).__name__}: {str(exc)[:160]}"
        return [Figure(REPLICAS_FIGURE.format(n=2), preset, None, "s p95", note=note)]
    one, two = loads[1], loads[2]
    problems = one.problems + two.problems
    note = (f"{users} sponsor QA users at once, {len(two.views)} and {len(one.views)} page "
            f"views; p50 {two.p50:.3f} s vs {one.p50:.3f} s; SeaweedFS, PostgreSQL and the "
            "replicas share this machine's 2 cores")  # fmt: skip
    if problems:
        note += f"; {len(problems)} problem(s): {'; '.join(problems[:2])[:200]}"
    return [
        Figure(REPLICAS_FIGURE.format(n=2), preset, round(two.p95, 3), "s p95",
               "the same load, 1 replica", round(one.p95, 3), ratio(two.p95, one.p95), "info",
               not problems, note),
    ]  # fmt: skip


def etl_incremental(preset: str, earlier: list[Figure]) -> list[Figure]:
    """Item 2: one simulated day of changes, incremental run, against the full build."""
    from etl.demo_source.day import simulate_day

    target = plants.WORK / "warehouses" / preset
    changed = plants.WORK / "scratch" / f"etl-{preset}" / "plant.sqlite"
    full = next((f.value for f in earlier if f.name == "ETL full build"), None)
    if full is None:
        changed = plants.fresh_copy(plants.plant(preset), f"etl-{preset}")
        plants.discard(target)
        full = round(etl_bench.measure("etl", changed, target)["seconds"], 2)
    simulate_day(changed)
    # Two rounds from the same live warehouse (a hard-linked copy: a run writes new files
    # only), the faster taken, as for the full build: one round measured the machine's
    # speed of the moment as much as the run (3.85-4.25 s on 2026-12-05).
    before = target.with_name(f"{target.name}-before-day")
    plants.discard(before)
    shutil.copytree(target, before, symlinks=True, copy_function=os.link)
    runs = []
    for number in range(ETL_ROUNDS):
        if number:
            plants.discard(target)
            shutil.copytree(before, target, symlinks=True, copy_function=os.link)
        # The cache is kept: a nightly run finds the live snapshot as the last run left it.
        etl_bench.settle(changed, drop=False)
        runs.append(etl_bench.measure("etl", changed, target, full=False))
    plants.discard(before)
    run = min(runs, key=lambda each: each["seconds"])
    rounds = ", ".join(f"{each['seconds']:.2f}" for each in runs)
    manifest = json.loads((current_snapshot(target) / MANIFEST).read_text())
    if manifest["mode"] != "incremental":
        raise RuntimeError(f"the one-day run was {manifest['mode']}, not incremental")
    # The same source built in full: the incremental snapshot must be it, file for file.
    rebuilt = plants.WORK / "warehouses" / f"{preset}-rebuilt"
    shutil.rmtree(rebuilt, ignore_errors=True)
    again = etl_bench.measure("etl", changed, rebuilt)
    files = {path: entry["sha256"] for path, entry in manifest["files"].items()}
    full_files = json.loads((current_snapshot(rebuilt) / MANIFEST).read_text())["files"]
    differ = sorted(set(files) ^ set(full_files)) + sorted(
        path for path in set(files) & set(full_files) if files[path] != full_files[path]["sha256"]
    )
    shutil.rmtree(rebuilt, ignore_errors=True)
    kept = manifest.get("kept_files", 0)
    return [
        Figure("ETL incremental (one day)", preset, round(run["seconds"], 2), "s",
               "ETL full build", full, ratio(run["seconds"], full), "<= 5% of full build",
               run["seconds"] <= 0.05 * full,
               f"faster of {ETL_ROUNDS} rounds: {rounds} s; "
               f"{run['rows']:,} rows in the merged state; {kept:,} of {len(files):,} files "
               f"kept from the live snapshot"),
        Figure("ETL incremental equals a full build", preset, len(differ), "files differ",
               "files compared with a full build of the same source", len(files), None,
               "0 files differ", not differ,
               f"file for file (sha256); that full build took {again['seconds']:.2f} s"
               + (f"; differ: {', '.join(differ[:5])}" if differ else "")),
    ]  # fmt: skip


def pages(preset: str, runs: int) -> list[Figure]:
    """Item 3: every page and role, median and p95, against the minimal and tutorial pages."""
    warehouse = _warehouse(preset)
    minimal = page_bench.time_page(page_bench.MINIMAL, "sponsor_qa", warehouse, SPONSOR, runs)
    tutorial = page_bench.time_page(page_bench.TUTORIAL, "sponsor_qa", warehouse, SPONSOR, runs)
    figures = [
        Figure("page: minimal (baseline a)", preset, round(minimal.median, 4), "s median",
               None, None, None, "baseline", True, f"p95 {minimal.p95:.3f} s, {runs} runs"),
        Figure("page: tutorial pattern (baseline b)", preset, round(tutorial.median, 4),
               "s median", "minimal page", round(minimal.median, 4),
               ratio(tutorial.median, minimal.median), "baseline", True,
               f"p95 {tutorial.p95:.3f} s; pandas over every sponsor's Parquet, cached"),
    ]  # fmt: skip
    for script, role in page_bench.page_roles():
        timing = page_bench.time_page(script, role, warehouse, SPONSOR, runs)
        cockpit = script == page_bench.COCKPIT
        limit = 5 if cockpit else 2
        value = ratio(timing.median, minimal.median)
        note = (f"p95 {timing.p95:.3f} s (minimal p95 {minimal.p95:.3f} s), {runs} runs; "
                f"first visit {timing.first:.3f} s (minimal {minimal.first:.3f} s)")  # fmt: skip
        if timing.error:
            note += f"; page showed an error: {timing.error}"
        figures.append(
            Figure(f"page: {Path(script).stem} as {role}", preset, round(timing.median, 4),
                   "s median", "minimal page", round(minimal.median, 4), value,
                   f"<= {limit}x minimal (at large)",
                   value is not None and value <= limit and not timing.error, note)
        )  # fmt: skip
    return figures


def _files_read(warehouse: Path) -> tuple[int, int]:
    """Parquet files the sponsor's batch_event query reads, per EXPLAIN ANALYZE; and rows."""
    scope = open_sponsor_scope(warehouse, SPONSOR)
    try:
        plan = (
            scope._cursor()
            .sql(  # noqa: SLF001 - profiling the scope's own connection
                "EXPLAIN ANALYZE SELECT batch_id, count(*) FROM batch_event "
                "WHERE event_type = 'IPC' GROUP BY ALL"
            )
            .fetchall()[0][1]
        )
    finally:
        scope.close()
    files = sum(int(n) for n in re.findall(r"Total Files Read: (\d+)", plan))
    # The plan lists operators top-down: the last row count is the scan's own.
    rows = int(re.findall(r"([\d,]+) rows", plan)[-1].replace(",", ""))
    return files, rows


def isolation(preset: str, counts: tuple[int, ...], runs: int) -> list[Figure]:
    """Item 4: the sponsor's page time with 5, 50, 500 sponsors; its own data identical.

    The scope memo is off: every run queries DuckDB, so the figure shows what scanning costs.
    """
    base_source = plants.plant("demo")
    # Ownership comes from the untouched plant's own warehouse: the demo warehouse may have
    # had a simulated day, in which a batch can change sponsor.
    base = plants.warehouse(base_source, f"{base_source.parent.name}-base")
    timings: dict[int, dict[str, float]] = {}
    scans: dict[int, tuple[int, int]] = {}
    for count in counts:
        source = plants.derived_plant(base_source, base, count)
        warehouse = plants.warehouse(source, f"{source.parent.name}")
        scans[count] = _files_read(warehouse)
        timings[count] = {
            script: page_bench.time_page(
                script, "sponsor_qa", warehouse, SPONSOR, runs, memo=False
            ).median
            for script in ("pages/sponsor/overview.py", "pages/sponsor/batches.py")
        }
    small, large = counts[0], counts[-1]
    figures = []
    for script in ("pages/sponsor/overview.py", "pages/sponsor/batches.py"):
        value, baseline = timings[large][script], timings[small][script]
        steps = ", ".join(f"{c}: {timings[c][script]:.3f} s" for c in counts)
        files = ", ".join(f"{c}: {scans[c][0]} file(s)/{scans[c][1]:,} rows" for c in counts)
        figures.append(
            Figure(f"isolation: {Path(script).stem} at {large} vs {small} sponsors", preset,
                   round(value, 4), "s median", f"same page at {small} sponsors",
                   round(baseline, 4), ratio(value, baseline), "<= 1.15",
                   value <= 1.15 * baseline,
                   f"{steps} (every run queries: scope memo off); EXPLAIN ANALYZE batch_event "
                   f"scan: {files}")
        )  # fmt: skip
    return figures


# A cold sign-in may cost twice what Streamlit alone costs for the same gesture.
COLD_LIMIT = 2
# A visitor's link, to put the cold sign-in's bytes in seconds (the bench runs on loopback).
LINK_MBIT = 20


def browser(preset: str, runs: int) -> list[Figure]:
    """Item 5: "Sign in" clicked to the settled overview at p95, warm browser (the visitor's
    browser cache kept, cookies cleared), against the floor app; and the whole cold sign-in in
    a fresh browser profile, from navigation start."""
    warehouse = _warehouse(preset)
    try:
        floor = browser_bench.floor_sign_in(warehouse, SPONSOR, runs)
        portal = browser_bench.sign_in_to_overview(preset, plants.plant(preset), warehouse, runs)
    except Exception as exc:  # noqa: BLE001 - a broken browser run is reported, not fatal
        note = f"not measured: {type(exc).__name__}: {str(exc)[:160]}"
        return [Figure("browser: sign-in to overview", preset, None, "s p95", target="<= 1.5 s",
                       note=note),
                Figure("browser: cold sign-in", preset, None, "s median",
                       target=f"<= {COLD_LIMIT}x floor app", note=note)]  # fmt: skip
    warm, floor_warm = portal.warm_idle, floor.warm_idle
    value, baseline = page_bench.p95(warm), page_bench.p95(floor_warm)
    return [
        Figure("browser: sign-in to overview", preset, round(value, 3), "s p95",
               "floor app: form submit to page, p95", round(baseline, 3), ratio(value, baseline),
               "<= 1.5 s", value <= 1.5,
               f"warm browser (cache kept, cookies cleared), {len(warm)} sign-ins: median "
               f"{statistics.median(warm):.3f} s, max {max(warm):.3f} s (floor median "
               f"{statistics.median(floor_warm):.3f} s); first chart drawn after "
               f"{statistics.median(portal.warm_chart):.3f} s; cold browser (new context) "
               f"median {statistics.median(portal.idle):.3f} s, p95 "
               f"{page_bench.p95(portal.idle):.3f} s (floor median "
               f"{statistics.median(floor.idle):.3f} s)"),
        cold_sign_in(preset, portal, floor),
    ]  # fmt: skip


def cold_sign_in(
    preset: str, portal: browser_bench.SignIns, floor: browser_bench.SignIns
) -> Figure:
    """Navigation start to the settled overview in a fresh profile, less the bench's wait
    between the settled form and its click; with where the time and the bytes go."""
    cold = [s.cold for s in portal.cold]
    value, baseline = statistics.median(cold), statistics.median(s.cold for s in floor.cold)
    warm = statistics.median(s.cold for s in portal.warm)
    warm_floor = statistics.median(s.cold for s in floor.warm)
    ours, theirs = browser_bench.phases(portal.cold), browser_bench.phases(floor.cold)

    def first(sign_ins: list[browser_bench.SignIn]) -> str:
        connected = statistics.median(s.connected for s in sign_ins) / 1000
        run = statistics.median(s.runs[0][0] for s in sign_ins if s.runs) / 1000
        return f"websocket open at {connected:.2f} s, first script run at {run:.2f} s"

    def phase(name: str, ours: browser_bench.Phase, theirs: browser_bench.Phase) -> str:
        return (f"{name} {ours.seconds:.2f} s (floor {theirs.seconds:.2f} s): "
                f"{ours.requests} requests (floor {theirs.requests}), {ours.megabytes:.1f} MB "
                f"(floor {theirs.megabytes:.1f}) of which Streamlit's JS/CSS "
                f"{ours.static_megabytes:.1f} MB uncompressed ({ours.gzip_megabytes:.1f} MB "
                f"gzipped), fonts {ours.font_megabytes:.2f} MB, {ours.component_requests} "
                f"component requests (floor {theirs.component_requests}); {ours.runs} script "
                f"runs (floor {theirs.runs}), {ours.reports} component reports "
                f"(floor {theirs.reports})")  # fmt: skip

    sent = ours["form"].megabytes + ours["overview"].megabytes
    packed = sent - sum(ours[p].static_megabytes - ours[p].gzip_megabytes for p in ours)
    value_ratio = ratio(value, baseline)
    return Figure(
        "browser: cold sign-in", preset, round(value, 3), "s median",
        "floor app: same gesture, fresh profile", round(baseline, 3), value_ratio,
        f"<= {COLD_LIMIT}x floor app", value_ratio is not None and value_ratio <= COLD_LIMIT,
        f"max {max(cold):.3f} s over {len(cold)} sign-ins, each in a new browser context (no "
        f"cache, no cookie), navigation start to settled overview less the bench's wait "
        f"before its click; {phase('sign-in form cold load', ours['form'], theirs['form'])}; "
        f"{first(portal.cold)} (floor {first(floor.cold)}); "
        f"{phase('click to settled overview', ours['overview'], theirs['overview'])}; "
        f"warm browser cache (same context, cookies cleared) {warm:.3f} s (floor "
        f"{warm_floor:.3f} s); on loopback, where bytes cost almost nothing: at {LINK_MBIT} "
        f"Mbit/s this sign-in's {sent:.1f} MB alone would take {sent * 8 / LINK_MBIT:.1f} s "
        f"({packed * 8 / LINK_MBIT:.1f} s with Streamlit's JS/CSS gzipped)",
    )  # fmt: skip


def _timed(command: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    return time.perf_counter() - started, done


def auditpack(preset: str) -> list[Figure]:
    """Item 6: the audit pack of one sponsor and one year, against a bare export of its data."""
    name = "audit pack (one sponsor, one year)"
    out = plants.WORK / "auditpack" / preset
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    warehouse = _warehouse(preset)
    year = plants.AS_OF.year - 1  # the last whole year of the plant
    bare_seconds, bare = _timed([sys.executable, "-m", "bench.bare_export", str(warehouse),
                                 SPONSOR, str(out / "bare.zip")])  # fmt: skip
    command = [sys.executable, "-m", "portal", "auditpack", "--warehouse", str(warehouse),
               "--sponsor", SPONSOR, "--from", f"{year}-01-01", "--to", f"{year}-12-31",
               "--recipient", "Benchmark", "--out", str(out / f"{SPONSOR}-{year}.zip")]  # fmt: skip
    seconds, done = _timed(command)
    failed = next((d for d in (bare, done) if d.returncode != 0), None)
    if failed is not None:
        return [Figure(name, preset, None, "s", target="<= 5 s",
                       note=f"not measured: {' '.join(failed.args[1:4])} failed: "
                            f"{failed.stderr.strip()[-160:]}")]  # fmt: skip
    return [
        Figure(name, preset, round(seconds, 2), "s",
               "bare export: every table of the sponsor as CSV in a ZIP", round(bare_seconds, 2),
               ratio(seconds, bare_seconds), "<= 5 s", seconds <= 5,
               f"{SPONSOR}, {year}, all sections, whole process (Python start included, as in "
               f"the baseline; bare export of all years: {int(bare.stdout.strip()):,} rows)")
    ]  # fmt: skip


# Between two clicks a reader looks at the page: 0.5 to 2 s (seeded per session).
THINK_SECONDS = server_bench.THINK_SECONDS
# Issue 16: 20 users' p95 within 3x one user's; how many users keep p95 within 1 s.
SERVER_USERS = 20
SERVER_LIMIT = 3
SERVER_P95_S = 1.0
SERVER_FIGURE = "server concurrency: page view {stat}, {users} user{s}"
SERVER_MOST = f"server concurrency: most users with page view p95 <= {SERVER_P95_S:g} s"


def server_concurrency(
    preset: str, levels: tuple[int, ...], more: tuple[int, ...], views: int
) -> list[Figure]:
    """Issue 16 item 4: users signed in on a real `streamlit run portal_app.py`, clicking
    through the sponsor pages with think time (bench/server_bench.py): p50 and p95 of a page
    view at 1, 20 and 50 users at once, against one user; and the most users whose p95 stays
    within 1 s among the levels tried (`more` after `levels`, while it does)."""
    reported = sorted({levels[0], SERVER_USERS if SERVER_USERS in levels else levels[-1],
                       levels[-1]})  # fmt: skip
    names = [SERVER_FIGURE.format(stat=stat, users=n, s="" if n == 1 else "s")
             for n in reported for stat in ("p50", "p95")] + [SERVER_MOST]  # fmt: skip
    try:
        plant, warehouse = plants.plant(preset), _warehouse(preset)
        with server_bench.running_portal(preset, plant, warehouse) as portal:
            warm = server_bench.warm_up(portal)
            server_bench.wait_idle(portal)
            loads = server_bench.sweep(portal, levels, views, more, SERVER_P95_S)
            peak = server_bench.peak_rss_mib(portal.process.pid)
        missing = [n for n in reported if not loads[n].views]
        if missing:
            raise RuntimeError(f"no page view at {missing} users: {loads[missing[0]].problems[:2]}")
    except Exception as exc:  # noqa: BLE001 - a broken server run is reported, not fatal
        note = f"not measured: {type(exc).__name__}: {str(exc)[:160]}"
        return [Figure(name, preset, None, "s", note=note) for name in names]
    one = loads[levels[0]]
    figures = []
    for n in reported:
        load, first = loads[n], n == levels[0]
        problems = load.problems + (
            [f"stopped clicking after {server_bench.LEVEL_TIMEOUT_S:.0f} s"] if load.timed_out
            else []
        )  # fmt: skip
        for stat in ("p50", "p95"):
            value, baseline = getattr(load, stat), getattr(one, stat)
            target, met = ("baseline" if first else "info (no target)"), True
            if stat == "p95" and n == reported[1]:
                target = f"<= {SERVER_LIMIT}x one user's p95"
                met = value <= SERVER_LIMIT * baseline
            if stat == "p50":
                note = f"{len(load.views)} page views by {n} user(s), as in the p95 row"
            else:
                note = _server_note(load) + (
                    f"; warm-up first visits p50 {warm.p50:.3f} s, p95 {warm.p95:.3f} s; "
                    f"server peak RSS {peak:.0f} MiB; one process, 2 cores" if first else ""
                )  # fmt: skip
            if problems:
                note += f"; {len(problems)} problem(s): {'; '.join(problems[:2])[:300]}"
            figures.append(
                Figure(SERVER_FIGURE.format(stat=stat, users=n, s="" if first else "s"),
                       preset, round(value, 3), f"s {stat}",
                       None if first else f"one user's {stat}",
                       None if first else round(baseline, 3),
                       None if first else ratio(value, baseline), target,
                       met and not problems, note)
            )  # fmt: skip
    return figures + [_server_most(preset, loads)]


def _server_note(load: server_bench.Load) -> str:
    return (
        f"{len(load.views)} page views by {load.users} signed-in user(s) of 5 sponsors, "
        f"{THINK_SECONDS[0]}-{THINK_SECONDS[1]} s think time before each click; "
        f"p50 {load.p50:.3f} s, p95 {load.p95:.3f} s, max {max(load.times):.3f} s; "
        f"slowest pages (p95) {load.slowest()}; server CPU {load.server_cpu:.1f} s over "
        f"{load.seconds:.1f} s wall ({load.cpu_per_view * 1000:.0f} ms per view), clients "
        f"{load.client_cpu:.1f} s; sign-in (not a page view) p50 "
        f"{statistics.median(load.sign_ins):.3f} s"
    )


def _server_most(preset: str, loads: dict[int, server_bench.Load]) -> Figure:
    """The most users of the levels tried whose p95 (and every smaller level's) is <= 1 s."""
    within = 0
    for n, load in loads.items():
        if not load.views or load.p95 > SERVER_P95_S or load.problems or load.timed_out:
            break
        within = n
    tried = list(loads)
    steps = "; ".join(
        f"{n}: {load.p50:.3f}/{load.p95:.3f} s ({load.cpu_per_view * 1000:.0f} ms server CPU "
        f"per view{', stopped at the time limit' if load.timed_out else ''})"
        for n, load in loads.items() if load.views
    )  # fmt: skip
    return Figure(
        SERVER_MOST, preset, within, "users", "most users tried", tried[-1], None,
        "info (no target)", True,
        f"{'at least ' if within == tried[-1] else ''}{within} user(s); levels tried "
        f"{', '.join(map(str, tried))}; p50/p95 per level: {steps}",
    )  # fmt: skip


# The data share: 20 clients (the figure), 4 per sponsor of the demo plant. Rounds
# per client under load: tiny keeps CI's run short (about 20 s for both share figures).
SHARE_CLIENTS = 20
SHARE_ROUNDS = {"tiny": 3, "demo": 10, "large": 10}
# A full table through the share against the same files read from disk: both sides read the
# Parquet into polars; the share adds the query, one HTTP fetch per file, token checks and
# access-log entries. At 3x the server may cost twice what reading the data itself costs:
# a few milliseconds per request on the demo plant, where a sponsor's table is one 0.36 MB
# file and those per-request costs dominate (the harder case; larger partitions dilute them).
DOWNLOAD_LIMIT = 3
# Clients of different sponsors arrive independently: each pauses 0.5-2 s between rounds, as
# a script working on what it just fetched does (about 16 rounds/s from 20 clients), and as
# the portal's own concurrency figure has readers pause. Back-to-back rounds (a stress
# figure, no target) show where one server process saturates.
SHARE_CONCURRENCY_LIMIT = 3
DOWNLOAD_FIGURE = f"share: {share_bench.TABLE} download (Delta Sharing)"
CONCURRENCY_FIGURE = f"share concurrency: round p95, {SHARE_CLIENTS} clients"
STRESS_FIGURE = f"share concurrency stress: round p95, {SHARE_CLIENTS} clients"


def share(preset: str, only: set[str], runs: int, rounds: int) -> list[Figure]:
    """The sponsor data share (`python -m warehouse share` on a loopback port): a full table
    and a dataset against reading them in-process, and 20 clients at once against one."""
    warehouse = _warehouse(preset)
    try:
        with share_bench.running_share(warehouse, SHARE_CLIENTS, SPONSOR) as clients:
            figures = []
            if "share" in only:
                figures += share_download(preset, warehouse, clients, runs)
            if "share-concurrency" in only:
                figures += share_concurrency(preset, clients, rounds)
            return figures
    except Exception as exc:  # noqa: BLE001 - a broken server run is reported, not fatal
        note = f"not measured: {type(exc).__name__}: {str(exc)[:160]}"
        unmeasured = {"share": DOWNLOAD_FIGURE, "share-concurrency": CONCURRENCY_FIGURE}
        return [Figure(name, preset, None, "s", note=note)
                for key, name in unmeasured.items() if key in only]  # fmt: skip


def share_download(
    preset: str, warehouse: Path, clients: list[share_bench.Client], runs: int
) -> list[Figure]:
    """The sponsor's largest table through Delta Sharing against its files read from disk;
    a whole dataset from the REST API against computing it in-process."""
    client = clients[0]  # SPONSOR's
    table, dataset = share_bench.TABLE, share_bench.DATASET
    served = share_bench.download_table(client, table, runs)
    direct = share_bench.read_partition(warehouse, SPONSOR, table, runs)
    period = share_bench.whole_period()
    api = share_bench.dataset_over_api(client, dataset, period, runs)
    local = share_bench.dataset_in_process(warehouse, SPONSOR, dataset, period, runs)
    for what, got, expected in ((table, served, direct), (dataset, api, local)):
        if got.frame.shape != expected.frame.shape:
            raise RuntimeError(f"the share served {got.frame.shape} of {what}, not "
                               f"{expected.frame.shape}")  # fmt: skip
    value = ratio(served.median, direct.median)
    return [
        Figure(DOWNLOAD_FIGURE, preset, round(served.median, 4),
               "s median", "same files read from disk (polars)", round(direct.median, 4),
               value, f"<= {DOWNLOAD_LIMIT}x direct read",
               value is not None and value <= DOWNLOAD_LIMIT,
               f"{SPONSOR}: {served.frame.height:,} rows in {served.files} file(s), "
               f"{served.size / 1e6:.2f} MB; query {served.listing:.4f} s of it, then one "
               f"GET per signed URL (requests) and polars; {runs} runs after a first of "
               f"{served.first:.3f} s (direct first {direct.first:.4f} s)"),
        Figure(f"share: {dataset} dataset (REST API, Parquet)", preset, round(api.median, 4),
               "s median", "same rows in-process (open_sponsor_scope, warm)",
               round(local.median, 4), ratio(api.median, local.median), "info (no target)",
               True,
               f"{SPONSOR}, {api.frame.height:,} rows x {api.frame.width} columns, "
               f"{period.start} to {period.end}, every page; warm: both keep the scope and "
               f"its memo; first call {api.first:.3f} s vs opening the scope and computing "
               f"{local.first:.3f} s ({ratio(api.first, local.first)}x); {runs} runs"),
    ]  # fmt: skip


def share_concurrency(preset: str, clients: list[share_bench.Client], rounds: int) -> list[Figure]:
    """p95 of a client round (metadata, query, one file) with every client at once, against
    the same rounds with one client at a time."""
    single = share_bench.one_at_a_time(clients, 2 * len(clients))
    sponsors = len({c.sponsor for c in clients})
    figures = []
    for think in (THINK_SECONDS, None):
        load = share_bench.all_at_once(clients, rounds, think)
        if think:
            name, pace = CONCURRENCY_FIGURE, f"each pausing {think[0]}-{think[1]} s between rounds"
            target = f"<= {SHARE_CONCURRENCY_LIMIT}x one client's p95"
            met = load.p95 <= SHARE_CONCURRENCY_LIMIT * single.p95
        else:
            name, pace = STRESS_FIGURE, "back-to-back rounds, no pause (a worst case)"
            target, met = "info (no target)", True
        figures.append(
            Figure(name, preset, round(load.p95, 3), "s p95", "one client at a time p95",
                   round(single.p95, 3), ratio(load.p95, single.p95), target, met,
                   f"{len(clients)} clients ({sponsors} sponsors, a token each) x {rounds} "
                   f"rounds of {share_bench.TABLE} metadata + query + first file, {pace}; "
                   f"median {load.median:.3f} s vs {single.median:.3f} s alone "
                   f"({single.samples} rounds); {load.samples} rounds in {load.seconds:.1f} s; "
                   "one server process, clients in threads, 2 cores")
        )  # fmt: skip
    return figures
