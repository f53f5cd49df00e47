"""`casectl config`: the settings a command would run with, and where each came from."""

from __future__ import annotations

import typer

from . import context, output
from .options import Format, Json, Wide

app = typer.Typer()


@app.command("config")
def config(fmt: Format = None, as_json: Json = False, wide: Wide = False) -> None:
    """Print the effective settings (database, actor, config file, SMTP, delivery, clock) and where each came from.

    Secrets are never printed, only whether they are set. Nothing is opened or written.

    Example: casectl config --json
    """
    rows = context.effective(context.settings())
    fmt = output.choose_format(fmt, as_json)
    if fmt == "json":
        output.emit_json({r["setting"]: {"value": r["value"], "source": r["source"]} for r in rows})
        return
    output.emit_rows(rows, ["setting", "value", "source"], fmt, empty="no settings", wide=wide)
