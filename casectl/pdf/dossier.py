"""The dossier of one case: who, where it stands, what may happen next, what it
holds, and its whole history, in order."""

from __future__ import annotations

import json
from typing import IO, TYPE_CHECKING, Any

from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, Paragraph, Spacer

from .. import ids
from .layout import ReportDoc, data_text, grid, key_values, markup, styles

if TYPE_CHECKING:
    from ..services.reports import Dossier


def _when(at: str | None) -> str:
    return (at or "").replace("T", " ").replace("Z", "")


def _event_text(e: dict) -> str:
    what = e.get("action") or e["kind"]
    if e.get("from_status") and e.get("to_status") and e["from_status"] != e["to_status"]:
        what += f": {e['from_status']} → {e['to_status']}"
    elif e.get("to_status") and e["kind"] == "created":
        what += f" in {e['to_status']}"
    data = dict(e.get("data") or {})
    if e.get("reason"):
        what += f" — {e['reason']}"
    if data:
        what += "\n" + data_text(data)
    return what


def build(d: Dossier, out: IO[bytes]) -> int:
    """Write the dossier `d` (services.reports.Dossier) to `out`; returns the page count."""
    s = styles()
    c = d.case
    cid = ids.fmt("case", c["id"])
    title = f"Case dossier {cid}"
    keywords = json.dumps(
        {
            "casectl": d.version,
            "report": "dossier",
            "case": cid,
            "include_private": d.include_private,
            "redacted": d.redacted,
        },
        ensure_ascii=False,
        sort_keys=True,
    )
    doc = ReportDoc(
        out,
        footer=f"{title} · generated {d.generated_at}" + (" · includes private notes" if d.include_private else ""),
        generated_at=d.generated_at,
        title=title,
        subject=f"casectl dossier of case {cid}",
        keywords=keywords,
        creator=f"casectl {d.version}",
        author=d.actor or "casectl",
    )
    w = doc.width
    wf = d.workflow
    status = wf.status(c["status"])
    story: list = [Paragraph(markup(title + (f"  ({c['ref']})" if c.get("ref") else "")), s["title"])]
    subject = None
    if c.get("subject_id") is not None:
        subject = " · ".join(
            x
            for x in (
                c.get("subject_name"),
                c.get("subject_email"),
                f"born {c['subject_dob']}" if c.get("subject_dob") else None,
                c.get("subject_country"),
                c.get("subject_entity_type"),
            )
            if x
        )
        subject = f"{ids.fmt('subject', c['subject_id'])}  {subject}"
    story.append(
        key_values(
            [
                ("Subject", subject or "none"),
                (
                    "Status",
                    c["status"]
                    + (f" — {status.description}" if status and status.description else "")
                    + (" (final)" if c.get("final") else ""),
                ),
                ("Workflow", f"{c['workflow']} v{c['workflow_version']}" + (f" — {wf.title}" if wf.title else "")),
                ("Assignee", c.get("assignee")),
                ("Team", c.get("team")),
                ("Priority", c.get("priority")),
                ("Tags", ", ".join(c.get("tags") or [])),
                ("Created", f"{_when(c['created_at'])} UTC by {c.get('created_by')} ({c.get('origin')})"),
                ("Last change", f"{_when(c['updated_at'])} UTC by {c.get('last_editor')}; version {c.get('version')}"),
                ("Due", f"{_when(c['due_at'])} UTC" if c.get("due_at") else None),
                (
                    "Decision",
                    (
                        f"{c['decision']}"
                        + (f" — {c['decision_reason']}" if c.get("decision_reason") else "")
                        + (f" ({_when(c['decided_at'])} UTC)" if c.get("decided_at") else "")
                    )
                    if c.get("decision")
                    else None,
                ),
                ("Parent case", ids.fmt("case", c.get("parent_id"))),
                (
                    "Generated",
                    f"{_when(d.generated_at)} UTC for {d.actor} by casectl {d.version}"
                    + ("; redacted" if d.redacted else ""),
                ),
            ],
            w,
        )
    )

    story.append(Paragraph("What may happen now", s["h2"]))
    rows = [(v.action, "allowed", f"moves the case to {v.target}") for v in d.allowed]
    rows += [(v.action, "not now", v.reason) for v in d.refused]
    if rows:
        story.append(
            grid(("Action", "Verdict", "Why / effect"), rows, [w * 0.22, w * 0.12, w * 0.66], wrap=(False, False, True))
        )
    else:
        story.append(Paragraph(markup(f"No agent action: {c['status']} offers none."), s["body"]))

    if c.get("data") or c.get("registry_data"):
        story.append(Paragraph("Case data", s["h2"]))
        story.append(
            key_values([("Provided", data_text(c.get("data"))), ("Registry", data_text(c.get("registry_data")))], w)
        )

    story.append(CondPageBreak(30 * mm))
    story.append(Paragraph(f"Blocks ({len(d.blocks)})", s["h2"]))
    if d.blocks:
        story.append(
            grid(
                ("Block", "Kind", "Status", "Decided", "Data"),
                (
                    [
                        b["name"],
                        b["kind"],
                        b.get("status") or "—",
                        f"{b.get('decided_by') or ''} {_when(b.get('decided_at'))}".strip(),
                        data_text(b.get("data"))
                        + (
                            f"\nchild case {ids.fmt('case', b['child_case_id'])}: {b.get('child_status')}"
                            if b.get("child_case_id")
                            else ""
                        ),
                    ]
                    for b in d.blocks
                ),
                [w * 0.17, w * 0.12, w * 0.17, w * 0.18, w * 0.36],
                wrap=(True, False, False, True, True),
            )
        )
    else:
        story.append(Paragraph("None.", s["body"]))

    story.append(Paragraph(f"Child cases ({len(d.children)})", s["h2"]))
    if d.children:
        story.append(
            grid(
                ("Case", "Subject", "Workflow", "Status", "Assignee", "Age"),
                ([r["id"], r["subject"], r["workflow"], r["status"], r["assignee"], r["age"]] for r in d.children),
                [w * x for x in (0.1, 0.34, 0.13, 0.2, 0.15, 0.08)],
            )
        )
    else:
        story.append(Paragraph("None.", s["body"]))

    story.append(CondPageBreak(30 * mm))
    story.append(Paragraph(f"Activities and decisions ({len(d.activities)})", s["h2"]))
    if d.activities:
        story.append(
            grid(
                ("Activity", "Type", "State", "Assignee", "Decision", "Result"),
                (
                    [
                        ids.fmt("activity", a["id"]) + (f" {a['label']}" if a.get("label") else ""),
                        a["type"],
                        a["state"],
                        " / ".join(x for x in (a.get("assignee"), a.get("team")) if x),
                        (
                            f"{a['decision']} by {a.get('decided_by') or '?'} {_when(a.get('decided_at'))}"
                            if a.get("decision")
                            else ""
                        ),
                        data_text(a.get("result")),
                    ]
                    for a in d.activities
                ),
                [w * x for x in (0.18, 0.13, 0.14, 0.13, 0.2, 0.22)],
                wrap=(True, False, False, True, True, True),
            )
        )
    else:
        story.append(Paragraph("None.", s["body"]))

    story.append(CondPageBreak(30 * mm))
    heading = f"Notes ({len(d.notes)})"
    if d.private_omitted:
        heading += f"; {d.private_omitted} private note{'s' if d.private_omitted != 1 else ''} left out"
    story.append(Paragraph(heading, s["h2"]))
    if d.notes:
        story.append(
            grid(
                ("When (UTC)", "By", "Note"),
                ([_when(n["at"]), n["actor"] + (" (private)" if n.get("private") else ""), n["text"]] for n in d.notes),
                [w * 0.18, w * 0.16, w * 0.66],
                wrap=(False, True, True),
            )
        )
    else:
        story.append(Paragraph("None.", s["body"]))

    story.append(CondPageBreak(30 * mm))
    story.append(Paragraph(f"Attachments ({len(d.attachments)})", s["h2"]))
    if d.attachments:
        story.append(
            grid(
                ("File", "Block", "Type", "Bytes", "sha256", "Added"),
                (
                    [
                        a.get("filename") or "",
                        a.get("block_name") or "",
                        a.get("media_type") or "",
                        f"{a['size']:,}",
                        a["sha256"],
                        f"{_when(a['created_at'])} {a.get('created_by') or ''}",
                    ]
                    for a in d.attachments
                ),
                [w * x for x in (0.15, 0.1, 0.13, 0.06, 0.38, 0.18)],
                wrap=(True, True, True, False, True, True),
                size=6.5,
                align_right=(3,),
            )
        )
    else:
        story.append(Paragraph("None.", s["body"]))

    story.append(CondPageBreak(30 * mm))
    story.append(Paragraph(f"History ({len(d.history)} events, oldest first)", s["h2"]))
    story.append(
        grid(
            ("#", "When (UTC)", "By", "What", "Hash"),
            (
                [ids.fmt("event", e["id"]), _when(e["at"]), _who(e), _event_text(e), (e.get("hash") or "")[:12]]
                for e in d.history
            ),
            [w * x for x in (0.08, 0.17, 0.13, 0.5, 0.12)],
            wrap=(False, False, True, True, False),
        )
    )
    story.append(Spacer(0, 4))
    story.append(
        Paragraph(
            "Hashes chain each event to the one before it; `casectl db check` verifies the chain. End of dossier.",
            s["muted"],
        )
    )
    return doc.render(story)


def _who(e: dict[str, Any]) -> str:
    """The declared actor, and the OS login that ran the command when it is someone else."""
    login = e.get("login")
    return e["actor"] if not login or login == e["actor"] else f"{e['actor']} (login {login})"
