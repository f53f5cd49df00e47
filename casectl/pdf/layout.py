"""What both reports share: page template with a "page X of Y" footer,
styles, text in any script, compact tables and reproducible output."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import BaseDocTemplate, Flowable, Frame, PageTemplate, Paragraph, Table, TableStyle

from . import fonts

PAGE = A4
MARGIN = 15 * mm
INK = colors.HexColor("#1f2933")
MUTED = colors.HexColor("#5f6b7a")
RULE = colors.HexColor("#c8ced6")
HEAD_BG = colors.HexColor("#e4e8ee")
ZEBRA = colors.HexColor("#f5f7f9")
ACCENT = colors.HexColor("#2f5f8f")

BODY = 9
SMALL = 7.5


def styles() -> dict[str, ParagraphStyle]:
    fonts.register()
    base = ParagraphStyle("body", fontName=fonts.SANS, fontSize=BODY, leading=BODY * 1.3, textColor=INK)
    return {
        "title": ParagraphStyle("title", parent=base, fontName=fonts.BOLD, fontSize=18, leading=22, spaceAfter=4),
        "h2": ParagraphStyle(
            "h2",
            parent=base,
            fontName=fonts.BOLD,
            fontSize=12,
            leading=15,
            spaceBefore=10,
            spaceAfter=4,
            textColor=ACCENT,
        ),
        "body": base,
        "muted": ParagraphStyle("muted", parent=base, textColor=MUTED, fontSize=SMALL, leading=SMALL * 1.3),
        "cell": ParagraphStyle("cell", parent=base, fontSize=SMALL + 0.5, leading=(SMALL + 0.5) * 1.25),
        "label": ParagraphStyle(
            "label",
            parent=base,
            fontName=fonts.BOLD,
            fontSize=SMALL + 0.5,
            leading=(SMALL + 0.5) * 1.25,
            textColor=MUTED,
        ),
    }


def markup(text: Any) -> str:
    """Paragraph markup for text in any script: each run in a font that has its glyphs."""
    if text is None:
        return ""
    return "<br/>".join(
        "".join(
            f'<font name="{name}">{escape(piece)}</font>' if name != fonts.SANS else escape(piece)
            for name, piece in fonts.runs(line)
        )
        for line in str(text).replace("\r\n", "\n").split("\n")
    )


def para(text: Any, style: ParagraphStyle) -> Paragraph:
    return Paragraph(markup(text), style)


def data_text(value: Any) -> str:
    """Case, block or event data as readable 'key: value' lines."""
    if value in (None, "", {}, []):
        return ""
    if not isinstance(value, (dict, list)):
        return str(value)
    lines = []

    def walk(v: Any, prefix: str) -> None:
        if isinstance(v, dict) and v:
            for k in v:
                walk(v[k], f"{prefix}.{k}" if prefix else str(k))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for x in v:  # e.g. the blocks an action moved: one line each
                lines.append(
                    f"{prefix}: "
                    + ", ".join(
                        f"{k}={x[k] if isinstance(x[k], str) else json.dumps(x[k], ensure_ascii=False)}" for k in x
                    )
                )
        else:
            shown = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
            lines.append(f"{prefix}: {shown}" if prefix else shown)

    walk(value, "")
    return "\n".join(lines)


class Line(Flowable):
    """One line of mixed-script text drawn run by run (a table cell too fast to need a Paragraph)."""

    def __init__(self, runs: list[tuple[str, str]], size: float, color=INK):
        super().__init__()
        self.runs, self.size, self.color = runs, size, color

    def wrap(self, aw, ah):
        from reportlab.pdfbase.pdfmetrics import stringWidth

        self.width = sum(stringWidth(s, n, self.size) for n, s in self.runs)
        return self.width, self.size * 1.2

    def draw(self):
        from reportlab.pdfbase.pdfmetrics import stringWidth

        c, x = self.canv, 0.0
        c.setFillColor(self.color)
        c.setStrokeColor(self.color)
        c.setLineWidth(self.size * 0.035)
        for name, piece in self.runs:
            t = c.beginText(x, self.size * 0.25)
            t.setFont(name, self.size)
            # The CJK and Hebrew fonts' default instance is their thinnest weight:
            # fill and stroke the outlines so they stand beside the regular Latin.
            t.setTextRenderMode(2 if name in fonts.THIN else 0)
            t.textOut(piece)
            c.drawText(t)
            x += stringWidth(piece, name, self.size)


def cell(text: Any, width: float, size: float) -> tuple[Any, str | None]:
    """A table cell cut to `width`: a plain string (and its font when not the default) or a Line."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    text = "" if text is None else str(text).replace("\n", " ").replace("\t", " ")
    if text.isascii():
        return fonts.fit(text, width, size), None
    runs = fonts.runs(text)
    if sum(stringWidth(s, n, size) for n, s in runs) > width:
        runs = fonts.runs(fonts.fit(text, width, size))
    if len(runs) == 1 and runs[0][0] not in fonts.THIN:
        return runs[0][1], runs[0][0]
    return Line(runs, size), None


def grid(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    widths: Sequence[float],
    *,
    size: float = SMALL,
    row_height: float | None = None,
    wrap: Sequence[bool] = (),
    repeat_header: bool = True,
    align_right: Sequence[int] = (),
) -> Table:
    """A compact ruled table; cells are cut to fit, except the columns marked to wrap."""
    st = styles()["cell"]
    wrap = tuple(wrap) or (False,) * len(widths)
    data: list[list[Any]] = [list(header)]
    cmds: list[tuple] = [
        ("FONT", (0, 0), (-1, 0), fonts.BOLD, size),
        ("FONT", (0, 1), (-1, -1), fonts.SANS, size),
        ("TEXTCOLOR", (0, 0), (-1, -1), INK),
        ("BACKGROUND", (0, 0), (-1, 0), HEAD_BG),
        ("LINEBELOW", (0, 0), (-1, 0), 0.6, MUTED),
        ("LINEBELOW", (0, -1), (-1, -1), 0.4, RULE),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]
    for col in align_right:
        cmds.append(("ALIGN", (col, 0), (col, -1), "RIGHT"))
    for r, row in enumerate(rows, 1):
        out = []
        for c, value in enumerate(row):
            if wrap[c]:
                out.append(Paragraph(markup(value), ParagraphStyle("w", parent=st, fontSize=size, leading=size * 1.25)))
                continue
            v, font = cell(value, widths[c] - 6, size)
            out.append(v)
            if font:
                cmds.append(("FONT", (c, r), (c, r), font, size))
        data.append(out)
        if r % 2 == 0:
            cmds.append(("BACKGROUND", (0, r), (-1, r), ZEBRA))
    heights = None if row_height is None else [row_height] * len(data)
    t = Table(data, colWidths=list(widths), rowHeights=heights, repeatRows=1 if repeat_header else 0, hAlign="LEFT")
    t.setStyle(TableStyle(cmds))
    return t


def key_values(pairs: Iterable[tuple[str, Any]], width: float, label_width: float = 32 * mm) -> Table:
    """Label: value rows (values wrap and may be in any script)."""
    s = styles()
    rows = [[Paragraph(escape(k), s["label"]), para(v, s["cell"])] for k, v in pairs if v not in (None, "")]
    t = Table(rows or [["", ""]], colWidths=[label_width, width - label_width], hAlign="LEFT")
    t.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 1),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, RULE),
            ]
        )
    )
    return t


class CountingCanvas(Canvas):
    """Draws "of Y" as a form that is defined once the last page is known, so the
    document is built in one pass and no page is held back in memory."""

    FORM = "casectlPageCount"

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.pages = 0

    def showPage(self):
        self.pages += 1
        super().showPage()

    def save(self):
        self.beginForm(self.FORM)
        self.setFont(fonts.SANS, SMALL)
        self.setFillColor(MUTED)
        self.drawString(0, 0, str(self.pages))
        self.endForm()
        super().save()


class ReportDoc(BaseDocTemplate):
    """A4 portrait, a header rule, and a footer: what, when, page X of Y."""

    def __init__(
        self, out, *, footer: str, generated_at: str, title: str, subject: str, keywords: str, creator: str, author: str
    ):
        super().__init__(
            out,
            pagesize=PAGE,
            leftMargin=MARGIN,
            rightMargin=MARGIN,
            topMargin=MARGIN,
            bottomMargin=MARGIN + 4 * mm,
            title=title,
            author=author,
            subject=subject,
            creator=creator,
            invariant=1,
            pageCompression=1,
        )
        self.footer = footer
        self.generated_at = generated_at
        self.keywords_text = keywords
        frame = Frame(
            self.leftMargin,
            self.bottomMargin,
            self.width,
            self.height,
            id="body",
            leftPadding=0,
            rightPadding=0,
            topPadding=0,
            bottomPadding=0,
        )
        self.addPageTemplates([PageTemplate(id="page", frames=[frame], onPage=self._decorate)])

    def beforeDocument(self):
        c = self.canv
        c.setKeywords(self.keywords_text)
        c.setProducer(self.creator)
        stamp = self.generated_at  # 2024-05-01T10:00:00Z -> D:20240501100000+00'00'
        pdf_date = "D:" + stamp.replace("-", "").replace(":", "").replace("T", "").rstrip("Z") + "+00'00'"
        c.setDateFormatter(lambda *a: pdf_date)

    def _decorate(self, c: Canvas, doc) -> None:
        c.saveState()
        y = MARGIN
        c.setStrokeColor(RULE)
        c.setLineWidth(0.5)
        c.line(MARGIN, y + 9, PAGE[0] - MARGIN, y + 9)
        c.setFont(fonts.SANS, SMALL)
        c.setFillColor(MUTED)
        c.drawString(MARGIN, y, fonts.fit(self.footer, PAGE[0] - 2 * MARGIN - 90, SMALL))
        label = f"page {c.getPageNumber()} of "
        x = PAGE[0] - MARGIN - 60
        c.drawString(x, y, label)
        c.translate(x + c.stringWidth(label, fonts.SANS, SMALL), y)
        c.doForm(CountingCanvas.FORM)
        c.restoreState()

    def render(self, story: list) -> int:
        self.build(story, canvasmaker=CountingCanvas)
        return self.canv.pages
