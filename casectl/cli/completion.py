"""`casectl completion SHELL`: the shell completion script (being written)."""

from __future__ import annotations

import click
import typer

app = typer.Typer()


def attach(cmd: click.Command) -> None:
    """Give `cmd`'s parameters their value completers (workflows, statuses, views, blocks, case ids)."""


@app.command("completion")
def completion(shell: str = typer.Argument(..., metavar="SHELL", help="bash, zsh or fish.")) -> None:
    """Print the shell completion script for bash, zsh or fish."""
    raise typer.Exit(0)
