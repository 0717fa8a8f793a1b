"""README's headline table is what bench/results.json renders (bench/headline.py), and the
rendering says what the figures say: the worst of a family, a target missed, a figure not
measured."""

from __future__ import annotations

import json
import re
from dataclasses import asdict

import pytest

from bench import headline, report
from bench.report import Figure


def test_the_readme_holds_the_table_the_committed_results_render():
    readme = headline.README.read_text(encoding="utf-8")
    figures = report.read()
    assert headline.rewrite(readme, figures) == readme, (
        "README's headline table is not what bench/results.json renders: "
        "run `python -m bench.headline`"
    )
    # Every headline figure of issue 16 is in it, with its verdict.
    table = headline.table(figures)
    for name in (
        "ETL full build, large",
        "ETL incremental (one day), large",
        "Browser: sign-in to overview, large",
        "First view on a fresh scope, large",
    ):
        assert f"| {name}" in table, name


def _page(name: str, value: float | None, met: bool = True, measured: str = "") -> Figure:
    return Figure(f"page: {name}", "demo", value, "s median", "minimal page", 0.02,
                  report.ratio(value, 0.02), "<= 2x minimal (at large)", met,
                  measured=measured)  # fmt: skip


def _row(table: str, start: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.startswith(f"| {start}"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_a_family_shows_its_worst_figure_and_is_met_only_when_each_is():
    figures = [
        _page("overview as sponsor_qa", 0.021, measured="2026-12-01 10:00"),
        _page("deviations as auditor", 0.035, measured="2026-12-02 09:00"),
        _page("batches as auditor", 0.025, met=False, measured="2026-11-30 08:00"),
        _page("cockpit as cmo_quality", 0.090, measured="2026-12-01 10:00"),
    ]
    table = headline.table(figures)
    pages = _row(table, "Pages, demo")
    assert "worst: deviations as auditor" in pages[0]  # the cockpit has a row of its own
    assert pages[1] == "0.035 s median" and pages[3] == "1.75×"
    assert pages[5] == "**no**"  # one of the family missed its target
    assert pages[6] == "2026-12-02 09:00"  # the latest of the family
    cockpit = _row(table, "Cockpit, demo")
    assert "worst: cmo_quality" in cockpit[0] and cockpit[5] == "yes"
    # A figure of the family not measured is said so; the others are still shown.
    table = headline.table([*figures[:2], _page("capa as auditor", None, met=False)])
    pages = _row(table, "Pages, demo")
    assert "1 of 3 not measured" in pages[0] and pages[1] == "0.035 s median"
    assert pages[5] == "yes"


def test_a_missed_target_an_unmeasured_figure_and_a_baseline_read_as_such():
    figures = [
        Figure("ETL full build", "large", 23.4, "s", "bare copy (same driver)", 11.2,
               2.089, "<= 2x bare copy", False, measured="2026-12-07 15:00"),
        Figure("ETL incremental (one day)", "large", None, "s", target="<= 5% of full build",
               note="not measured: the full build failed"),
        Figure("page: tutorial pattern (baseline b)", "demo", 0.07, "s median",
               "minimal page", 0.035, 2.0, "baseline", True),
    ]  # fmt: skip
    table = headline.table(figures)
    full = _row(table, "ETL full build, large")
    assert full[1:] == ["23.4 s", "bare copy (same driver) 11.2 s", "2.089×", "≤ 2× bare copy",
                        "**no**", "2026-12-07 15:00"]  # fmt: skip
    assert _row(table, "ETL incremental")[1] == "not measured"
    assert _row(table, "ETL incremental")[5] == "not measured"
    assert _row(table, "Page: tutorial pattern")[5] == "—"


def test_the_table_is_rewritten_between_its_markers_only(tmp_path):
    figures = [_page("overview as sponsor_qa", 0.021)]
    text = f"# Title\n\nBefore.\n\n{headline.START}\nold table\n{headline.END}\n\nAfter.\n"
    readme = tmp_path / "README.md"
    readme.write_text(text, encoding="utf-8")
    headline.update(figures, readme)
    written = readme.read_text(encoding="utf-8")
    assert written.startswith("# Title\n\nBefore.\n\n") and written.endswith("\n\nAfter.\n")
    assert "old table" not in written and "| Pages, demo" in written
    headline.update(figures, readme)  # rendered again: the same text
    assert readme.read_text(encoding="utf-8") == written
    with pytest.raises(ValueError, match="markers"):
        headline.rewrite("# A README without the markers\n", figures)


def test_each_figure_a_run_writes_is_dated_and_a_merge_keeps_the_others_dates(tmp_path):
    earlier = Figure("audit pack (one sponsor, one year)", "demo", 2.1, "s",
                     measured="2026-11-26 07:37")  # fmt: skip
    (tmp_path / "results.json").write_text(json.dumps([asdict(earlier)]))
    fresh = Figure("ETL full build", "large", 23.0, "s")
    written = report.write([fresh], "python -m bench --only etl", tmp_path, merge=True)
    dates = {f.name: f.measured for f in written}
    assert dates["audit pack (one sponsor, one year)"] == "2026-11-26 07:37"
    assert re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}", dates["ETL full build"])
    assert report.read(tmp_path) == written
