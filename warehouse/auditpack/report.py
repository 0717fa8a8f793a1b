"""The audit pack's PDF: cover, contents, then one chapter per FDA system, watermarked pages.

fpdf2 core fonts only (no font files to ship): text goes through `pdf_text`, which keeps what
Windows-1252 can encode (—, –, ·, ÷ included) and replaces the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from fpdf import FPDF
from fpdf.outline import OutlineSection

from warehouse.auditpack.sections import SYSTEM_TITLES, Chart, Section
from warehouse.contract import SIX_SYSTEMS

FONT = "Helvetica"
MONO = "Courier"
# Characters the data or our own text may hold that Windows-1252 lacks.
_PLAIN = str.maketrans({"≥": ">=", "≤": "<=", "→": "->", "−": "-", "×": "x", "…": "..."})
MAX_COLUMN_MM = 80  # a wider column wraps instead
LINE_HEIGHT, PAD = 3.2, 0.8  # mm, table text


@dataclass(frozen=True)
class Cover:
    """What the cover states; everything but the data itself."""

    sponsor_id: str
    sponsor_name: str
    products: tuple[str, ...]  # product names
    start: date
    end: date
    as_of: date
    recipient: str
    generated_by: str
    generated_at: datetime
    valid_until: datetime
    snapshot_id: str
    snapshot_at: datetime
    content_hash: str


def pdf_text(value: str) -> str:
    """`value` as the core fonts can draw it (Windows-1252, unknown characters as '?')."""
    return value.translate(_PLAIN).encode("cp1252", "replace").decode("cp1252")


def moment(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def watermark(cover: Cover) -> str:
    """The line every page carries: confidentiality, recipient, generated-at, valid-until."""
    return pdf_text(
        f"Confidential — {cover.sponsor_name} · Prepared for {cover.recipient} · "
        f"Generated {moment(cover.generated_at)} · Valid until {moment(cover.valid_until)}"
    )


def cell_text(value: object) -> str:
    """One table cell as a reader expects it (dates without seconds, yes/no, short floats)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() else f"{value:.1f}"
    return pdf_text(str(value))


class PackPDF(FPDF):
    """A4 landscape pages, each with a diagonal watermark and the watermark line at the foot."""

    def __init__(self, cover: Cover) -> None:
        super().__init__(orientation="L", unit="mm", format="A4")
        self.cover = cover
        self.core_fonts_encoding = "cp1252"
        self.set_margins(10, 12, 10)
        self.set_auto_page_break(True, margin=14)
        self.set_creation_date(cover.generated_at)
        self.set_title(pdf_text(f"Audit pack — {cover.sponsor_name}"))
        self.set_author(pdf_text(cover.generated_by))

    def header(self) -> None:
        with self.local_context(text_color=(228, 228, 228)):
            self.set_font(FONT, "B", 34)
            with self.rotation(25, x=self.w / 2, y=self.h / 2):
                text = pdf_text(f"Confidential — {self.cover.sponsor_name}")
                self.text(self.w / 2 - self.get_string_width(text) / 2, self.h / 2, text)
        self.set_y(self.t_margin)

    def footer(self) -> None:
        self.set_y(-11)
        self.set_font(FONT, "", 7)
        self.set_text_color(80, 80, 80)
        self.cell(0, 4, f"{watermark(self.cover)} · Page {self.page_no()} of {{nb}}", align="C")
        self.set_text_color(0, 0, 0)


def render(cover: Cover, sections: list[Section]) -> bytes:
    """The whole report as PDF bytes (deterministic for the same cover and sections)."""
    pdf = PackPDF(cover)
    pdf.add_page()
    _cover(pdf, cover, sections)
    pdf.add_page()
    # The placeholder reserves its page and breaks to a fresh one: the first system starts
    # there (another page break here would leave a blank page behind the contents).
    pdf.insert_toc_placeholder(_contents, pages=1)
    for index, system in enumerate(SIX_SYSTEMS):
        if index:
            pdf.add_page()
        pdf.start_section(pdf_text(SYSTEM_TITLES[system]), level=0)
        pdf.set_font(FONT, "B", 16)
        pdf.cell(0, 9, pdf_text(SYSTEM_TITLES[system]), new_x="LMARGIN", new_y="NEXT")
        for section in (s for s in sections if s.system == system):
            _section(pdf, section)
    return bytes(pdf.output())


def _cover(pdf: PackPDF, cover: Cover, sections: list[Section]) -> None:
    pdf.set_font(FONT, "B", 24)
    pdf.cell(0, 14, "Audit pack", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "", 15)
    pdf.cell(0, 9, pdf_text(cover.sponsor_name), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    products = "; ".join(cover.products) or "none"
    facts = (
        ("Sponsor", f"{cover.sponsor_name} ({cover.sponsor_id})"),
        ("Products", products),
        ("Period", f"{cover.start.isoformat()} to {cover.end.isoformat()}"),
        ("Statuses as of", f"{cover.as_of.isoformat()} (the data snapshot's date)"),
        ("Prepared for", cover.recipient),
        ("Generated by", cover.generated_by),
        ("Generated at", moment(cover.generated_at)),
        ("Data snapshot", cover.snapshot_id),
        ("Snapshot time", moment(cover.snapshot_at)),
        ("Pack valid until", moment(cover.valid_until)),
        ("Sections", f"{len(sections)} in FDA's six-system order"),
    )
    for label, value in facts:
        pdf.set_font(FONT, "B", 10)
        pdf.cell(45, 6, pdf_text(label))
        pdf.set_font(FONT, "", 10)
        pdf.multi_cell(0, 6, pdf_text(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font(FONT, "B", 10)
    pdf.cell(45, 6, "Content hash (SHA-256)")
    pdf.set_font(MONO, "B", 10)
    pdf.cell(0, 6, cover.content_hash, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font(FONT, "", 9)
    pdf.multi_cell(0, 5, pdf_text(
        "The content hash is the SHA-256 of this pack's parameters (sponsor, products, period), "
        "the data snapshot id and the SHA-256 of every data file listed in manifest.json. "
        "Regenerating the pack from the same snapshot with the same parameters gives the same "
        "content hash, whoever it is prepared for: compare it to check a copy. This report is a "
        "human-readable copy of the data files (21 CFR 11.10(b)); the CSV and Parquet files "
        "beside it hold every column."
    ))  # fmt: skip


def _contents(pdf: FPDF, outline: list[OutlineSection]) -> None:
    pdf.set_font(FONT, "B", 16)
    pdf.cell(0, 10, "Contents", new_x="LMARGIN", new_y="NEXT")
    for entry in outline:
        pdf.set_font(FONT, "B" if entry.level == 0 else "", 10 if entry.level == 0 else 9)
        indent = 8 * entry.level
        pdf.set_x(pdf.l_margin + indent)
        pdf.cell(pdf.epw - indent - 20, 5.2, entry.name, link=pdf.add_link(page=entry.page_number))
        pdf.cell(20, 5.2, str(entry.page_number), align="R", new_x="LMARGIN", new_y="NEXT")


def _section(pdf: PackPDF, section: Section) -> None:
    # Keep a heading with the start of its table, or with its whole chart.
    if pdf.will_page_break(30 if section.chart is None else 90):
        pdf.add_page()
    pdf.ln(3)
    pdf.start_section(pdf_text(section.title), level=1)
    pdf.set_font(FONT, "B", 12)
    pdf.cell(0, 7, pdf_text(section.title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "", 8)
    where = f"{section.folder}/{section.key}.csv and .parquet"
    pdf.multi_cell(0, 4, pdf_text(f"{section.about} Rows: {section.frame.height}. Data: {where}."),
                   new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    pdf.ln(1)
    if section.chart is not None and section.frame.height:
        _bars(pdf, section, section.chart)
    if section.frame.is_empty():
        pdf.set_font(FONT, "I", 9)
        pdf.cell(0, 6, "None for this sponsor, these products and this period.",
                 new_x="LMARGIN", new_y="NEXT")  # fmt: skip
        return
    _table(pdf, section)


def _table(pdf: PackPDF, section: Section) -> None:
    """A bordered table that wraps long cells and repeats its headings on every new page.

    Drawn by hand: fpdf2's own table lays out each cell several times, far too slow for the
    thousands of cells of a sponsor-year pack.
    """
    rows = [[cell_text(v) for v in row] for row in section.in_words().iter_rows()]
    heading = [pdf_text(text) for text in section.headings]
    pdf.set_font(FONT, "B", 7)
    natural = [pdf.get_string_width(text) for text in heading]
    pdf.set_font(FONT, "", 7)
    for row in rows:
        natural = [max(n, pdf.get_string_width(text)) for n, text in zip(natural, row, strict=True)]
    widths = _column_widths([n + 2 * PAD + 1 for n in natural], pdf.epw)

    def emit(cells: list[str], bold: bool) -> None:
        pdf.set_font(FONT, "B" if bold else "", 7)
        wrapped = [_wrap(pdf, text, w - 2 * PAD) for text, w in zip(cells, widths, strict=True)]
        height = max(len(lines) for lines in wrapped) * LINE_HEIGHT + 2 * PAD
        if not bold and pdf.get_y() + height > pdf.page_break_trigger:
            pdf.add_page()
            emit(heading, True)
            pdf.set_font(FONT, "", 7)
        x, y = pdf.l_margin, pdf.get_y()
        pdf.set_fill_color(235, 235, 235)
        for lines, width in zip(wrapped, widths, strict=True):
            pdf.rect(x, y, width, height, style="DF" if bold else "D")
            for k, line in enumerate(lines):
                pdf.text(x + PAD, y + PAD + (k + 1) * LINE_HEIGHT - 0.8, line)
            x += width
        pdf.set_y(y + height)

    if pdf.will_page_break(3 * LINE_HEIGHT + 4 * PAD):
        pdf.add_page()
    pdf.set_draw_color(160, 160, 160)
    emit(heading, True)
    for row in rows:
        emit(row, False)
    pdf.ln(2)


def _column_widths(natural: list[float], total: float) -> list[float]:
    """Short columns keep their natural width; long ones share what is left, and wrap."""
    fixed = sum(w for w in natural if w <= MAX_COLUMN_MM)
    wide = sum(w for w in natural if w > MAX_COLUMN_MM)
    if wide and total - fixed >= MAX_COLUMN_MM:
        return [w if w <= MAX_COLUMN_MM else (total - fixed) * w / wide for w in natural]
    capped = [min(w, MAX_COLUMN_MM) for w in natural]
    return [total * w / sum(capped) for w in capped]


def _wrap(pdf: FPDF, text: str, width: float) -> list[str]:
    """Greedy word wrap to `width` mm in the current font; over-long words are cut."""
    if pdf.get_string_width(text) <= width:
        return [text]
    lines, line = [], ""
    for word in text.split(" "):
        trial = f"{line} {word}" if line else word
        if pdf.get_string_width(trial) <= width:
            line = trial
            continue
        if line:
            lines.append(line)
        while pdf.get_string_width(word) > width and len(word) > 1:
            cut = len(word) - 1
            while cut > 1 and pdf.get_string_width(word[:cut]) > width:
                cut -= 1
            lines.append(word[:cut])
            word = word[cut:]
        line = word
    lines.append(line)
    return lines


def _bars(pdf: PackPDF, section: Section, chart: Chart) -> None:
    """Stacked vertical bars, one per category, drawn with plain rectangles."""
    frame = section.in_words()
    height, width = 45.0, min(pdf.epw, 28.0 * frame.height + 40)
    x0, top = pdf.l_margin + 8, pdf.get_y() + 6
    base = top + height
    totals = [sum(int(row[s] or 0) for s in chart.series) for row in frame.iter_rows(named=True)]
    peak = max(max(totals), 1)
    step = (width - 40) / frame.height
    bar = step * 0.6
    pdf.set_draw_color(0, 0, 0)
    pdf.line(x0, base, x0 + width - 40, base)
    pdf.set_font(FONT, "", 6.5)
    for i, (row, total) in enumerate(zip(frame.iter_rows(named=True), totals, strict=True)):
        x, y = x0 + i * step + (step - bar) / 2, base
        for name, colour in chart.series.items():
            size = int(row[name] or 0) / peak * height
            if size:
                pdf.set_fill_color(*colour)
                pdf.rect(x, y - size, bar, size, style="F")
            y -= size
        pdf.set_xy(x0 + i * step, y - 4)
        pdf.cell(step, 4, str(total), align="C")
        pdf.set_xy(x0 + i * step, base + 1)
        pdf.cell(step, 4, cell_text(row[chart.category]), align="C")
    legend_x = x0 + width - 36
    for k, (name, colour) in enumerate(chart.series.items()):
        pdf.set_fill_color(*colour)
        pdf.rect(legend_x, top + k * 5, 3, 3, style="F")
        pdf.set_xy(legend_x + 4, top + k * 5 - 0.5)
        pdf.cell(30, 4, pdf_text(section.model.column(name).label))
    pdf.set_xy(pdf.l_margin, base + 7)
