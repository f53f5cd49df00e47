"""The case overview: totals, charts, SLA breaches, the longest waiting, every case.

The case table is streamed: a flowable pulls just the rows that fit on the
current page from the query and lays them out as one small table with its
header, so a 100,000-case report never holds the whole table (platypus'
cost for one big table grows much faster than its row count).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

from reportlab.graphics.charts.barcharts import HorizontalBarChart
from reportlab.graphics.shapes import Drawing
from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, Flowable, PageBreak, Paragraph, Spacer, Table, TableStyle

from . import fonts
from .layout import ACCENT, INK, MUTED, SMALL, ReportDoc, grid, key_values, styles

if TYPE_CHECKING:
    from ..services.reports import Overview

COLUMNS = ("id", "subject", "workflow", "status", "assignee", "created", "age")
HEADERS = ("Case", "Subject", "Workflow", "Status", "Assignee", "Created", "Age")
# Fractions of the frame width.
SHARES = (0.08, 0.30, 0.11, 0.19, 0.14, 0.11, 0.07)
ROW_H = 11.5
SIZE = 7.5


class CaseRows(Flowable):
    """The case table, one page-sized table at a time, straight from the query's iterator."""

    def __init__(self, rows: Iterator[dict[str, Any]], widths: list[float]):
        super().__init__()
        self.rows = rows
        self.widths = widths
        self._next = next(rows, None)

    def wrap(self, aw, ah):
        # Always ask for more than there is: the frame then calls split(), which takes what fits.
        return (aw, 0) if self._next is None else (aw, ah + 1)

    def split(self, aw, ah):
        n = int((ah - ROW_H) // ROW_H)
        if n < 3:  # too little room left on this page: go on at the next
            return []
        page: list[dict[str, Any]] = []
        while self._next is not None and len(page) < n:
            page.append(self._next)
            self._next = next(self.rows, None)
        # Platypus marks a flowable it had to carry to the next page and fails if that
        # happens twice; this one goes on page after page by design.
        self.__dict__.pop("_postponed", None)
        table = grid(
            HEADERS, ([r[c] for c in COLUMNS] for r in page), self.widths, size=SIZE, row_height=ROW_H, align_right=(6,)
        )
        return [table] if self._next is None else [table, self]

    def draw(self):
        pass


def _bar_chart(pairs: list[tuple[str, int]], width: float) -> Drawing:
    """Horizontal bars, one per label, with the count at the end of each bar."""
    n = max(1, len(pairs))
    bar = 11
    height = n * bar + 16
    d = Drawing(width, height)
    chart = HorizontalBarChart()
    label_w = 100
    chart.x, chart.y = label_w, 8
    chart.width, chart.height = width - label_w - 30, n * bar
    values = [v for _, v in pairs] or [0]
    chart.data = [list(reversed(values))]
    chart.categoryAxis.categoryNames = [fonts.fit(k or "(none)", label_w - 8, SMALL) for k, _ in reversed(pairs)] or [
        ""
    ]
    chart.categoryAxis.labels.fontName = fonts.SANS
    chart.categoryAxis.labels.fontSize = SMALL
    chart.categoryAxis.labels.boxAnchor = "e"
    chart.categoryAxis.labels.dx = -4
    chart.categoryAxis.strokeColor = MUTED
    chart.categoryAxis.tickLeft = 0
    chart.valueAxis.valueMin = 0
    chart.valueAxis.valueMax = max(values) * 1.1 or 1
    chart.valueAxis.visible = False
    chart.bars[0].fillColor = ACCENT
    chart.bars[0].strokeColor = None
    chart.barSpacing = 2
    chart.groupSpacing = 3
    chart.barLabelFormat = "%d"
    chart.barLabels.fontName = fonts.SANS
    chart.barLabels.fontSize = SMALL
    chart.barLabels.fillColor = INK
    chart.barLabels.boxAnchor = "w"
    chart.barLabels.dx = 3
    d.add(chart)
    return d


def _totals(title: str, pairs: list[tuple[str, int]], total: int, width: float) -> list:
    s = styles()
    left = 70 * mm
    rows = [(k or "(none)", f"{v:,}", f"{(100 * v / total):.1f}%" if total else "") for k, v in pairs]
    rows.append(("total", f"{total:,}", "100%" if total else ""))
    t = grid(
        (title, "Cases", "Share"),
        rows,
        [left - 34 * mm, 18 * mm, 16 * mm],
        size=SMALL + 0.5,
        align_right=(1, 2),
        repeat_header=False,
    )
    chart = _bar_chart(pairs, width - left - 6 * mm)
    side = Table([[t, chart]], colWidths=[left, width - left], hAlign="LEFT")
    side.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
            ]
        )
    )
    return [Paragraph(f"Cases by {title.lower()}", s["h2"]), side]


def build(data: Overview, out: IO[bytes]) -> int:
    """Write the overview of `data` (services.reports.Overview) to `out`; returns the page count."""
    s = styles()
    filters_text = "; ".join(data.filters) if data.filters else "none (all cases)"
    keywords = json.dumps(
        {
            "casectl": data.version,
            "report": "overview",
            "filters": data.filter_dict,
            "sort": data.sort,
            "redacted": data.redacted,
        },
        ensure_ascii=False,
        sort_keys=True,
    )
    doc = ReportDoc(
        out,
        footer=f"{data.title} · generated {data.generated_at} · filters: {filters_text}",
        generated_at=data.generated_at,
        title=data.title,
        subject=f"casectl case overview; filters: {filters_text}",
        keywords=keywords,
        creator=f"casectl {data.version}",
        author=data.actor or "casectl",
    )
    w = doc.width
    story: list = [
        Paragraph(data.title, s["title"]),
        key_values(
            [
                ("Generated", data.generated_at.replace("T", " ").replace("Z", " UTC")),
                ("Filters", filters_text),
                ("Sorted by", data.sort or "id"),
                ("Cases", f"{data.total:,}"),
                (
                    "Redacted",
                    "yes: names, emails, dates of birth, phones, addresses and other personal data are masked"
                    if data.redacted
                    else None,
                ),
                (
                    "Produced by",
                    f"casectl {data.version} for {data.actor}" if data.actor else f"casectl {data.version}",
                ),
            ],
            w,
        ),
    ]
    story += _totals("Status", data.by_status, data.total, w)
    story += _totals("Workflow", data.by_workflow, data.total, w)

    narrow = [w * x for x in (0.08, 0.29, 0.19, 0.12, 0.17, 0.15)]
    story.append(CondPageBreak(40 * mm))
    story.append(
        Paragraph(
            f"SLA breaches: {data.breaches_total:,} open case{'' if data.breaches_total == 1 else 's'} past due",
            s["h2"],
        )
    )
    if data.breaches:
        story.append(
            grid(
                ("Case", "Subject", "Status", "Assignee", "Due (UTC)", "Overdue by"),
                ([r["id"], r["subject"], r["status"], r["assignee"], r["due"], r["overdue_by"]] for r in data.breaches),
                narrow,
                size=SMALL,
                align_right=(5,),
            )
        )
        if data.breaches_total > len(data.breaches):
            story.append(
                Paragraph(
                    f"the {len(data.breaches)} most overdue of {data.breaches_total:,}; "
                    "`casectl list --overdue` lists them all",
                    s["muted"],
                )
            )
    else:
        story.append(Paragraph("None: no open case is past its due time.", s["body"]))
    story.append(CondPageBreak(40 * mm))
    story.append(
        Paragraph(
            f"Waiting longest: {min(len(data.waiting), data.waiting_total)} of {data.waiting_total:,} open cases",
            s["h2"],
        )
    )
    if data.waiting:
        story.append(
            grid(
                ("Case", "Subject", "Status", "Assignee", "Created", "Age"),
                ([r["id"], r["subject"], r["status"], r["assignee"], r["created"], r["age"]] for r in data.waiting),
                narrow,
                size=SMALL,
                align_right=(5,),
            )
        )
    else:
        story.append(Paragraph("None: no open case matches.", s["body"]))

    story.append(PageBreak())
    story.append(Paragraph(f"All cases ({data.total:,})", s["h2"]))
    story.append(
        Paragraph(
            "Age: for open cases the time since creation; for closed cases the time from creation to decision.",
            s["muted"],
        )
    )
    story.append(Spacer(0, 3))
    rows = CaseRows(data.rows(), [w * x for x in SHARES])
    story.append(rows)
    if data.total == 0:
        story.append(Paragraph("No cases match these filters.", s["body"]))
    story.append(Spacer(0, 4))
    story.append(Paragraph("End of report.", s["muted"]))
    return doc.render(story)
