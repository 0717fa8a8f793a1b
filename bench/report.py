"""Benchmark figures and the two result files (bench/results.md, bench/results.json)."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass
class Figure:
    """One measured figure, its same-run baseline and its target."""

    name: str
    preset: str
    value: float | None  # None: not measured (the note says why)
    unit: str
    baseline_name: str | None = None
    baseline_value: float | None = None
    ratio: float | None = None
    target: str = ""
    met: bool = False
    note: str = ""
    measured: str = ""  # when its run measured it (YYYY-MM-DD HH:MM); write() stamps it


def ratio(value: float | None, baseline: float | None) -> float | None:
    if value is None or not baseline:
        return None
    return round(value / baseline, 3)


def number(value: float) -> str:
    """A figure's value as the result tables write it: a count (or a whole value of 100 or
    more) with thousands separators, else to four decimals, trailing zeros dropped."""
    if isinstance(value, int) or (float(value).is_integer() and abs(value) >= 100):
        return f"{int(value):,}"
    return f"{value:,.4f}".rstrip("0").rstrip(".")


def _cell(value: float | None) -> str:
    return "-" if value is None else number(value)


def read(out: Path = HERE) -> list[Figure]:
    """The figures of results.json in `out`."""
    return [Figure(**row) for row in json.loads((out / "results.json").read_text())]


def write(
    figures: list[Figure], command: str, out: Path = HERE, *, merge: bool = False
) -> list[Figure]:
    """Write results.json (a list of figure objects) and results.md (a table); the figures
    written. Each figure of this run is dated now.

    With `merge`, figures of the previous results that this run did not measure are kept
    (a `--only` run updates its own rows in place).
    """
    now = f"{datetime.now():%Y-%m-%d %H:%M}"
    figures = [f if f.measured else replace(f, measured=now) for f in figures]
    if merge and (out / "results.json").is_file():
        fresh = {(f.name, f.preset) for f in figures}
        figures = [f for f in read(out) if (f.name, f.preset) not in fresh] + figures
    (out / "results.json").write_text(
        json.dumps([asdict(f) for f in figures], indent=1, default=str) + "\n"
    )
    lines = [
        "# Benchmark results",
        "",
        f"Produced by `{command}` on {now} "
        f"({platform.machine()}, Python {platform.python_version()}). Every ratio is to a "
        "baseline measured in the same run.",
        "",
        "| figure | preset | value | unit | baseline | baseline value | ratio | target | met "
        "| measured | note |",
        "| --- | --- | ---: | --- | --- | ---: | ---: | --- | --- | --- | --- |",
    ]
    for f in figures:
        met = "yes" if f.met else ("not measured" if f.value is None else "**no**")
        lines.append(
            f"| {f.name} | {f.preset} | {_cell(f.value)} | {f.unit} | {f.baseline_name or '-'} "
            f"| {_cell(f.baseline_value)} | {_cell(f.ratio)} | {f.target} | {met} "
            f"| {f.measured or '-'} | {f.note.replace('|', '/')} |"
        )
    (out / "results.md").write_text("\n".join(lines) + "\n")
    return figures
