"""The `casectl` command: a root group that loads each command's module only
when that command runs, and the one place domain errors become exit codes.

Start-up matters (people call casectl in shell loops), so `casectl --help`
lists commands from the table below without importing them, and no command
pays for another's imports.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from typing import Any

import click
import typer
from typer.core import TyperGroup

from .. import __version__
from ..errors import CasectlError, ExitCode, UsageError
from .context import Invocation, Settings, invocation


@dataclass(frozen=True)
class Entry:
    module: str
    help: str
    group: bool = False  # a command group (e.g. `workflows list`)
    attr: str = "app"  # the module's Typer app that holds the command or is the group


# Every top-level command, in the order `casectl --help` lists them.
COMMANDS: dict[str, Entry] = {
    "init": Entry("casectl.cli.db", "Create a new casectl database (or bring an existing one up to date)."),
    "create": Entry("casectl.cli.cases", "Create a case and print its id."),
    "show": Entry("casectl.cli.cases", "Show a case, what may happen to it now, and its recent history."),
    "list": Entry("casectl.cli.listing", "List cases matching filters."),
    "search": Entry(
        "casectl.cli.queue", "Search cases by id, reference, subject name, email or date of birth, best match first."
    ),
    "act": Entry("casectl.cli.cases", "Perform an agent action on a case."),
    "approve": Entry("casectl.cli.cases", "Approve a case (shortcut for `act ID approve`)."),
    "reject": Entry("casectl.cli.cases", "Reject a case with a reason (shortcut for `act ID reject`)."),
    "event": Entry("casectl.cli.cases", "Record a system event on a case (e.g. collection_completed)."),
    "status": Entry("casectl.cli.cases", "Set a case's status directly, where its workflow allows it."),
    "history": Entry("casectl.cli.cases", "Print every event of a case: who, when, what, from -> to, why."),
    "blocks": Entry("casectl.cli.blocks", "List a case's blocks with kind, status and a summary."),
    "block": Entry("casectl.cli.blocks", "Add, edit, approve, ask to re-upload or receive a block."),
    "attach": Entry("casectl.cli.blocks", "Attach a document file to a block (stored once per content, by sha256)."),
    "doc": Entry("casectl.cli.blocks", "Write a block's document back to a file, or list its attachments."),
    "activities": Entry("casectl.cli.activities", "List a case's activities, or activities across cases with --all."),
    "activity": Entry(
        "casectl.cli.activities",
        "Add an activity or change its state, result or decision; `assign` hands it to someone else.",
    ),
    "assign": Entry("casectl.cli.queue", "Assign a case (or ids from stdin) to an agent, a team, or both."),
    "unassign": Entry("casectl.cli.queue", "Remove a case's assignee (and with --team its team)."),
    "take": Entry(
        "casectl.cli.queue",
        "Claim the next unassigned case you can act on now (most urgent, soonest due, oldest) and print its id.",
    ),
    "tag": Entry("casectl.cli.queue", "Add (+T) or remove (-T) tags on a case (or ids from stdin)."),
    "priority": Entry(
        "casectl.cli.queue",
        "Set a case's priority (or that of every id from stdin, all or nothing), recorded in its history.",
    ),
    "payment": Entry(
        "casectl.cli.queue",
        "Record a payment on a case (fires its payment_received event where the workflow has one).",
    ),
    "note": Entry("casectl.cli.queue", "Add a public or private note to a case's history."),
    "contact": Entry(
        "casectl.cli.engage",
        "Email the case's subject; the message is queued in the outbox and recorded in the history.",
    ),
    "appointment": Entry("casectl.cli.engage", "Log an appointment on a case, or cancel one."),
    "appointments": Entry("casectl.cli.engage", "List appointments, of one case or of all, soonest first."),
    "views": Entry("casectl.cli.queue", "Save, list and remove named filters (views).", group=True, attr="views_app"),
    "stats": Entry(
        "casectl.cli.queue", "Open and closed counts, opened vs closed, time to decision, SLA breaches, workload."
    ),
    "import": Entry(
        "casectl.cli.transfer", "Import cases from a CSV file: all rows or none, and never the same ref twice."
    ),
    "export": Entry(
        "casectl.cli.transfer",
        "Export cases as CSV, JSON or NDJSON, or one case as a data package (the CSV imports back).",
    ),
    "report": Entry("casectl.cli.report", "Write a PDF overview of cases, or the dossier of one case."),
    "hooks": Entry("casectl.cli.outbox", "Subscribe webhooks to case events.", group=True, attr="hooks_app"),
    "outbox": Entry(
        "casectl.cli.outbox",
        "List, deliver and retry queued webhooks, emails and CRM calls.",
        group=True,
        attr="outbox_app",
    ),
    "errors": Entry(
        "casectl.cli.outbox", "Cases whose deliveries failed, with the last error (also those still being retried)."
    ),
    "digest": Entry("casectl.cli.outbox", "Send the notification digest (for cron)."),
    "routines": Entry(
        "casectl.cli.routines", "Run the workflows' routines (time-based rules) from cron, or list them.", group=True
    ),
    "users": Entry("casectl.cli.users", "Users and their roles, for actions a workflow limits to roles.", group=True),
    "subjects": Entry("casectl.cli.subjects", "List subjects and show one with all its cases.", group=True),
    "workflows": Entry("casectl.cli.workflows", "List, show, validate, add and draw workflows.", group=True),
    "redact": Entry("casectl.cli.privacy", "Erase a subject's personal data, keeping the history skeleton."),
    "purge": Entry(
        "casectl.cli.privacy", "Delete cases closed before a date, with their history and documents (retention)."
    ),
    "db": Entry("casectl.cli.db", "Check, back up and restore the database.", group=True, attr="db_app"),
    "config": Entry(
        "casectl.cli.config",
        "Print the effective settings (database, actor, config file, SMTP, delivery, clock) and where each came from.",
    ),
    "completion": Entry(
        "casectl.cli.completion", "Print the shell completion script for bash, zsh or fish (see docs/completion.md)."
    ),
}


def _override(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """--db, --actor or --no-deliver after the command: it wins over the root's and the environment's."""
    if value not in (None, False):  # an unset flag must not undo the root option
        inv = invocation(ctx)
        inv.settings = inv.settings.with_options(**{str(param.name): value})
    return value


def _common_options() -> list[click.Option]:
    """--db, --actor and --no-deliver, accepted after any command as well as before it."""
    return [
        click.Option(
            ["--db"],
            metavar="PATH",
            expose_value=False,
            callback=_override,
            help="Database file [env: CASECTL_DB].",
        ),
        click.Option(
            ["--actor"],
            metavar="NAME",
            expose_value=False,
            callback=_override,
            help="Who is acting, recorded on every event [env: CASECTL_ACTOR].",
        ),
        click.Option(
            ["--no-deliver"],
            is_flag=True,
            default=None,
            expose_value=False,
            callback=_override,
            help="Leave queued messages for `casectl outbox deliver` [env: CASECTL_NO_DELIVER=1].",
        ),
    ]


def _with_common_options(cmd: click.Command) -> click.Command:
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            _with_common_options(sub)
    elif not any(p.name == "db" for p in cmd.params):
        cmd.params.extend(_common_options())
    return cmd


def _completing(cmd: click.Command) -> click.Command:
    """While the shell asks for completions (click sets _CASECTL_COMPLETE), give the command's
    options and arguments their value completers; an ordinary run pays nothing for them."""
    if os.environ.get("_CASECTL_COMPLETE"):
        from .completion import attach

        attach(cmd)
    return cmd


class RootContext(click.Context):
    # Whether the command line asks for JSON, so an error goes to stdout as JSON too (`wants_json`).
    json_errors: bool = False


class LazyGroup(TyperGroup):
    context_class = RootContext
    _loaded: dict[str, click.Group] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        entry = COMMANDS.get(name)
        if entry is None:
            return None
        key = f"{entry.module}:{entry.attr}"
        group = self._loaded.get(key)
        if group is None:
            module = importlib.import_module(entry.module)
            group = typer.main.get_group(getattr(module, entry.attr))
            self._loaded[key] = group
        if entry.group:
            group.name = name
            return _completing(_with_common_options(group))
        cmd = group.get_command(ctx, name)
        return _completing(_with_common_options(cmd)) if cmd is not None else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, entry.help) for name, entry in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        """Command names from the table, as --help lists them: `casectl <TAB>` imports no command."""
        if incomplete.startswith("-"):
            return super().shell_complete(ctx, incomplete)  # the root's options
        from click.shell_completion import CompletionItem

        return [CompletionItem(n, help=e.help) for n, e in COMMANDS.items() if n.startswith(incomplete)]

    def _main_shell_completion(self, ctx_args: Any, prog_name: str, complete_var: str | None = None) -> None:
        # click's protocol (`_CASECTL_COMPLETE=bash_complete`), which `casectl completion`'s
        # scripts speak; Typer's own reads the instruction the other way round (complete_bash).
        instruction = os.environ.get("_CASECTL_COMPLETE")
        if instruction:
            from .completion import respond

            sys.exit(respond(self, ctx_args, instruction, os.environ))

    def resolve_command(self, ctx, args):
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as e:
            if args and args[0] not in COMMANDS:
                import difflib

                close = difflib.get_close_matches(args[0], COMMANDS, n=3, cutoff=0.6)
                guess = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
                raise click.UsageError(
                    f"no command '{args[0]}'{guess} Commands: {', '.join(COMMANDS)}", e.ctx
                ) from None
            raise

    def make_context(self, info_name, args, parent=None, **extra):
        json_out = wants_json(args)
        try:
            ctx = super().make_context(info_name, args, parent, **extra)
        except click.UsageError as e:  # `casectl --bogus`: the root's own options
            raise OneLineUsage(e, json_out) from None
        if isinstance(ctx, RootContext):
            ctx.json_errors = json_out
        return ctx

    def invoke(self, ctx: click.Context):
        json_out = isinstance(ctx, RootContext) and ctx.json_errors
        try:
            result = super().invoke(ctx)
            # Deliver what the command queued in the outbox, unless told not to.
            inv = ctx.find_object(Invocation)
            if inv is not None and inv.conn is not None:
                from .delivery import after_command

                after_command(inv)
            return result
        except click.UsageError as e:
            raise OneLineUsage(e, json_out) from None
        except CasectlError as e:
            report(e, json_out)
            ctx.exit(int(e.code))
        except KeyboardInterrupt:
            click.echo("casectl: interrupted; nothing more was written", err=True)
            ctx.exit(130)
        except BrokenPipeError:
            # `casectl list | head`: the reader left; that is not an error.
            sys.stderr.close()
            ctx.exit(0)
        except Exception as e:
            problem = translate(e, ctx.find_object(Invocation))
            if problem is None:  # a bug: keep its traceback
                raise
            report(problem, json_out)
            ctx.exit(int(problem.code))


def wants_json(args: list[str]) -> bool:
    """Whether the command line asks for JSON (--json, --format json or ndjson): then an error
    is also printed on stdout as one JSON object, for the script that reads stdout."""
    for i, arg in enumerate(args):
        if arg == "--":
            return False
        if arg == "--json" or arg in ("--format=json", "--format=ndjson"):
            return True
        if arg == "--format" and i + 1 < len(args) and args[i + 1] in ("json", "ndjson"):
            return True
    return False


class OneLineUsage(click.UsageError):
    """click's usage error as casectl prints every error: one line `casectl: error: ...`, then
    a hint naming the command's usage and its --help (instead of click's three-line block)."""

    def __init__(self, e: click.UsageError, json_out: bool = False):
        super().__init__(e.format_message(), e.ctx)
        self.json_out = json_out

    def show(self, file: Any = None) -> None:
        ctx = self.ctx
        hint: list[str] = []
        if ctx is not None:
            usage = " ".join(ctx.command.collect_usage_pieces(ctx))
            hint = [f"usage: {ctx.command_path} {usage} (more: {ctx.command_path} --help)"]
        message = self.format_message().rstrip(".")
        report(
            UsageError(message[:1].lower() + message[1:] if message[1:2].islower() else message, details=hint),
            self.json_out,
        )


def translate(e: BaseException, inv: Invocation | None = None) -> CasectlError | None:
    """What the machine or hostile input caused, as a domain error (one line, a documented code):
    a full disk, a read-only or damaged database, a lock held by another program (5), input too
    deep, too long or not Unicode (6). None for anything else: that is a bug and keeps its traceback."""
    import errno
    import sqlite3

    from ..errors import EnvironmentProblem, InvalidInput, os_problem

    if isinstance(e, sqlite3.Error):
        from ..store.db import explain

        return explain(e, inv.settings.db_path if inv is not None else None)
    if isinstance(e, OSError):
        problem = os_problem(e)
        if problem is not None and e.filename is None and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            failed = type(problem)(f"cannot write the output: {problem.message}")  # stdout, most likely
            failed.stdout_failed = True  # so the error is not written there as JSON too
            return failed
        return problem
    if isinstance(e, RecursionError) and _raised_in(e, ("json", "tomllib")):
        return InvalidInput("the input is nested too deeply (JSON more than ~900 levels deep); flatten it")
    if isinstance(e, OverflowError):
        return InvalidInput(f"a number or date given is out of range ({e}); give a smaller one")
    if isinstance(e, ValueError) and "integer string conversion" in str(e):
        return InvalidInput("a number given has more than 4300 digits; give a smaller one")
    if isinstance(e, UnicodeError):
        return InvalidInput(
            f"text that is not valid Unicode ({getattr(e, 'reason', e)}): a lone surrogate, or bytes that are not UTF-8; "
            "fix the input's encoding"
        )
    if isinstance(e, MemoryError):
        return EnvironmentProblem("out of memory; give smaller input or free some memory")
    return None


def _raised_in(e: BaseException, packages: tuple[str, ...]) -> bool:
    """Whether `e` came from inside one of these standard-library packages (a parser), not from casectl."""
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False
    parts = tb.tb_frame.f_code.co_filename.replace("\\", "/").split("/")
    return any(p in parts or f"{p}.py" in parts for p in packages)


def report(e: CasectlError, json_out: bool = False) -> None:
    # Messages quote what the user gave (ids read from stdin, file names, cells): its control
    # characters are shown escaped, so an id can neither clear the terminal nor retitle it.
    from .output import printable

    def shown(text: str) -> str:
        return "\n".join(printable(line) for line in str(text).split("\n"))

    click.echo(f"casectl: error: {shown(e.message)}", err=True)
    for line in e.details[:50]:
        click.echo(f"  {shown(line)}", err=True)
    if len(e.details) > 50:
        click.echo(f"  ... and {len(e.details) - 50} more", err=True)
    if json_out and not getattr(e, "stdout_failed", False):
        import json

        code = ExitCode(int(e.code))
        error = {"error": e.message, "code": int(code), "name": code.name.lower(), "details": list(e.details)}
        click.echo(json.dumps(error, ensure_ascii=False))


app = typer.Typer(
    cls=LazyGroup,
    name="casectl",
    help="Case management from the command line: one SQLite file, scriptable, safe.\n\n"
    "Example: casectl create --workflow kyb --subject-email ada@example.com",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        click.echo(f"casectl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    db: str | None = typer.Option(
        None, "--db", metavar="PATH", help="Database file [env: CASECTL_DB; default: per-user data dir]."
    ),
    actor: str | None = typer.Option(
        None, "--actor", metavar="NAME", help="Who is acting, recorded on every event [env: CASECTL_ACTOR]."
    ),
    no_deliver: bool = typer.Option(
        False,
        "--no-deliver",
        help="Leave queued webhooks and emails for `casectl outbox deliver` [env: CASECTL_NO_DELIVER=1].",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    # The one place the environment is read: everything below gets these settings.
    ctx.obj = Invocation(Settings.from_environ(os.environ, db=db, actor=actor, no_deliver=no_deliver))


def main() -> None:
    code: int | str | None = 0
    try:
        app()
    except SystemExit as e:
        code = e.code
    except CasectlError as e:  # raised while parsing, outside a command
        report(e)
        code = int(e.code)
    except Exception as e:
        problem = translate(e)
        if problem is None:
            raise
        report(problem)
        code = int(problem.code)
    try:
        # Output still buffered for a full disk behind `> file`: an error line, not "Exception ignored".
        sys.stdout.flush()
    except BrokenPipeError:
        _stdout_to_devnull()
    except OSError as e:
        _stdout_to_devnull()
        problem = translate(e)
        if problem is None:
            raise
        report(type(problem)(f"stdout: {problem.message}"))
        code = int(problem.code)
    sys.exit(code)


def _stdout_to_devnull() -> None:
    # Python flushes stdout again at exit; what could not be written is dropped, quietly.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":  # pragma: no cover
    main()

__all__ = ["app", "main", "COMMANDS", "ExitCode"]
