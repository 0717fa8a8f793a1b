"""README's headline table, rendered from the bench's figures (bench/results.json).

Each row is one figure, or the worst of a family of them (every page under every role, every
first view), with its same-run baseline, its target, whether it was met and when it was
measured. `python -m bench` writes the table between README's two markers after each run into
bench/ (a `--only` run's figures merged with the others); tests/bench/test_headline.py checks
that README holds what results.json renders, so neither can be edited without the other.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from bench.report import Figure, number

README = Path(__file__).resolve().parents[1] / "README.md"
START = (
    "<!-- headline: rendered by `python -m bench` from bench/results.json; not edited by hand -->"
)
END = "<!-- end of headline -->"
# Targets that are none: the figure is a baseline, or shown for information.
_NO_TARGET = ("baseline", "info")
# Units whose baseline is in the same unit (other baselines are counts: files compared,
# users tried).
_SAME_UNIT = ("s", "GiB", "rows/s")


@dataclass(frozen=True)
class Row:
    label: str
    figure: Figure  # the one shown: the figure itself, or the worst of its family
    met: bool  # every figure of the row met its target
    value: str | None = None  # the value as shown, where it is not the figure's alone


def _target(text: str) -> str:
    """A target or label as README writes it: "<= 2x bare copy" as "≤ 2× bare copy"."""
    return re.sub(r"(?<=[0-9])x\b", "×", text.replace("<=", "≤"))


def _cells(row: Row) -> list[str]:
    f = row.figure
    base_unit = f.unit.split(" ")[0]
    value = "not measured" if f.value is None else f"{row.value or number(f.value)} {f.unit}"
    baseline = "—"
    if f.baseline_name:
        unit = f" {base_unit}" if base_unit in _SAME_UNIT and f.baseline_value is not None else ""
        shown = "" if f.baseline_value is None else f" {number(f.baseline_value)}{unit}"
        baseline = f"{f.baseline_name}{shown}"
    ratio = "—" if f.ratio is None else f"{number(f.ratio)}×"
    if f.value is None:
        met = "not measured"
    elif f.target.startswith(_NO_TARGET) or not f.target:
        met = "—"
    else:
        met = "yes" if row.met else "**no**"
    label = _target(row.label)
    return [label, value, baseline, ratio, _target(f.target) or "—", met, f.measured or "—"]


def _of(figures: Iterable[Figure], preset: str, test: Callable[[str], bool]) -> list[Figure]:
    return [f for f in figures if f.preset == preset and test(f.name)]


def _family(label: str, family: list[Figure], name: Callable[[Figure], str]) -> Row | None:
    """The row of a family: its slowest measured figure (the first, where none was), dated
    by the latest; met when each measured one is, and saying how many were not measured."""
    if not family:
        return None
    measured = [f for f in family if f.value is not None]
    worst = max(measured, key=lambda f: f.value) if measured else family[0]
    latest = max((f.measured for f in family), default="")
    missing = len(family) - len(measured)
    note = f"; {missing} of {len(family)} not measured" if missing and measured else ""
    shown = replace(worst, measured=latest)
    return Row(f"{label} (worst: {name(worst)}{note})", shown, all(f.met for f in measured))


def _label(figure: Figure) -> str:
    return f"{figure.name[0].upper()}{figure.name[1:]}, {figure.preset}"


# The ETL's figures, in this order (its throughput is in results.md only).
_ETL = ("ETL full build", "ETL full build wall time", "ETL full build peak memory",
        "ETL incremental (one day)", "ETL incremental equals a full build",
        "ETL full build published to S3")  # fmt: skip
_P50, _P95 = "server concurrency: page view p50, ", "server concurrency: page view p95, "
_LIVE, _FRESH = "first view after a snapshot goes live: ", "first view on a fresh scope: "


def _server(figures: list[Figure], preset: str) -> list[Row]:
    """A real server's page views: p50 and p95 of each load in one row (the p95's baseline,
    target and verdict), and the most users it served within 1 s."""
    out = []
    for p95 in _of(figures, preset, lambda name: name.startswith(_P95)):
        load = p95.name.removeprefix(_P95)
        p50 = next((f for f in figures if f.preset == preset and f.name == _P50 + load), None)
        if p50 is not None and p50.value is not None and p95.value is not None:
            value = f"{number(p50.value)} / {number(p95.value)}"
            out.append(Row(f"Server concurrency: page view p50 / p95, {load}, {preset}",
                           replace(p95, unit="s p50 / p95"), p95.met, value))  # fmt: skip
        else:
            out.append(Row(_label(p95), p95, p95.met))
    most = _of(figures, preset, lambda name: name.startswith("server concurrency: most "))
    return out + [Row(_label(f), f, f.met) for f in most]


def rows(figures: list[Figure]) -> list[Row]:
    """The headline rows, in README's order: the ETL, the pages, first views, isolation,
    the browser, the audit pack, the real server, the replicas and the data share."""
    presets = sorted({f.preset for f in figures}, key=("tiny", "demo", "large").index)
    out: list[Row | None] = []

    def single(test: Callable[[str], bool], preset: str) -> None:
        out.extend(Row(_label(f), f, f.met) for f in _of(figures, preset, test))

    for preset in presets:
        for name in _ETL:
            single(lambda each, name=name: each == name, preset)
    for preset in presets:
        views = _of(figures, preset, lambda name: name.startswith("page: ") and " as " in name)
        cockpit = [f for f in views if f.name.startswith("page: cockpit as ")]
        out.append(_family(f"Pages, {preset}: every page × role but the cockpit, warm median",
                           [f for f in views if f not in cockpit],
                           lambda f: f.name.removeprefix("page: ")))  # fmt: skip
        out.append(_family(f"Cockpit, {preset}: every role, warm median", cockpit,
                           lambda f: f.name.removeprefix("page: cockpit as ")))  # fmt: skip
        single(lambda name: name == "page: tutorial pattern (baseline b)", preset)
    for preset in presets:
        warmed = _of(figures, preset, lambda name: name.startswith(_LIVE))
        pages = {f.name.removeprefix(_LIVE) for f in warmed}
        scopes = _of(figures, preset, lambda name: name.startswith(_FRESH))
        cold = [f for f in scopes if f.name.removeprefix(_FRESH) in pages]
        out.append(_family(f"First view on a fresh scope, {preset}: every page not warmed",
                           [f for f in scopes if f not in cold],
                           lambda f: f.name.removeprefix(_FRESH)))  # fmt: skip
        out.append(_family(f"First view after a snapshot goes live, {preset}: each page it "
                           "warms", warmed, lambda f: f.name.removeprefix(_LIVE)))  # fmt: skip
        out.append(_family(f"First view on a cold server, {preset}: each page warmed at "
                           "go-live, on a fresh scope", cold,
                           lambda f: f.name.removeprefix(_FRESH)))  # fmt: skip
    for prefix in ("isolation: ", "browser: ", "audit pack"):
        for preset in presets:
            single(lambda name, prefix=prefix: name.startswith(prefix), preset)
    for preset in presets:
        out += _server(figures, preset)
    for prefix in ("Page view p95 through nginx", "share: "):
        for preset in presets:
            single(lambda name, prefix=prefix: name.startswith(prefix), preset)
    return [row for row in out if row is not None]


def table(figures: list[Figure]) -> str:
    lines = [
        "| figure | value | same-run baseline | ratio | target | met | measured |",
        "| --- | ---: | --- | ---: | --- | --- | --- |",
    ]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in _cells(row)) + " |"
              for row in rows(figures)]  # fmt: skip
    return "\n".join(lines)


def rewrite(text: str, figures: list[Figure]) -> str:
    """`text` (README's) with the table between its markers rendered from `figures`."""
    pattern = re.compile(re.escape(START) + r"\n.*?" + re.escape(END), re.DOTALL)
    if len(pattern.findall(text)) != 1:
        raise ValueError(f"README must hold the headline markers once: {START!r} ... {END!r}")
    return pattern.sub(lambda _: f"{START}\n{table(figures)}\n{END}", text)


def update(figures: list[Figure], readme: Path = README) -> None:
    readme.write_text(rewrite(readme.read_text(encoding="utf-8"), figures), encoding="utf-8")


if __name__ == "__main__":  # README's table again from bench/results.json, nothing measured
    from bench.report import read

    update(read())
