"""Shell completion: `casectl completion SHELL` prints the script, and the answers behind it.

The scripts are click's own (bash, zsh, fish), for the program `casectl` and the variable
_CASECTL_COMPLETE. When the shell asks, the root group hands the request to `respond`, and
every command it resolves gets its value completers from `attach`: workflow, status, view,
block and user names, priorities, and case ids from the database, the most recent first.

Completing only ever reads: the database is opened read-only (SQLite `mode=ro`), never
created or migrated, and anything that goes wrong (no database, a locked or older one, a
PostgreSQL server out of reach) gives no completions and says nothing, since whatever is
printed lands in the user's prompt.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from click.shell_completion import CompletionItem, get_completion_class

from ..errors import CasectlError, UsageError
from .context import Invocation, Settings

PROG = "casectl"
COMPLETE_VAR = "_CASECTL_COMPLETE"
SHELLS = ("bash", "zsh", "fish")
# Case ids offered at most: a screenful, the most recent first.
MOST_IDS = 50
# How long completion waits for a locked SQLite file or a PostgreSQL server (seconds): a
# prompt that hangs is worse than one that offers nothing.
PATIENCE = 0.2

app = typer.Typer()


@app.command("completion")
def completion(
    shell: Annotated[str, typer.Argument(metavar="SHELL", help="bash, zsh or fish.")],
) -> None:
    """Print the shell completion script for bash, zsh or fish (see docs/completion.md).

    Example: eval "$(casectl completion bash)"   # in ~/.bashrc; fish: casectl completion fish | source
    """
    click.echo(script(shell), nl=False)


def script(shell: str) -> str:
    """click's completion script for `shell`, for the program casectl."""
    if shell not in SHELLS:
        raise UsageError(f"no completion for the shell '{shell}'; shells: {', '.join(SHELLS)}")
    cls = get_completion_class(shell)
    assert cls is not None  # click registers all three
    return cls(click.Command(PROG), {}, PROG, COMPLETE_VAR).source()


def respond(cli: click.Group, ctx_args: Mapping[str, Any], instruction: str, environ: Mapping[str, str]) -> int:
    """Answer one request of click's protocol (`_CASECTL_COMPLETE=bash_complete`, `zsh_source`,
    ...) for the root group `cli`; returns the exit status.

    click resolves the command line against the command table (see `Table`), which gives each
    parameter its completer; the settings come from `environ` as for a run, so --db (before or
    after the command) and CASECTL_DB name the database."""
    shell, _, what = instruction.partition("_")
    cls = get_completion_class(shell)
    if cls is None or what not in ("source", "complete"):
        return 1
    try:
        settings: Settings | None = Settings.from_environ(environ)
    except CasectlError:  # a bad CASECTL_BUSY_TIMEOUT: commands and options still complete
        settings = None
    asking = Asking(settings) if settings is not None else None
    comp = cls(Table.of(cli, environ), {**ctx_args, "obj": asking}, PROG, COMPLETE_VAR)
    try:
        if what == "source":
            click.echo(comp.source().encode(), nl=False)
        else:
            click.echo(comp.complete().encode())
    finally:
        if asking is not None:
            asking.close()
    return 0


# --- the command table ------------------------------------------------------------------
#
# click needs every parameter of the command being completed, and the commands' modules
# import the service layer: `casectl show C-12` would spend ~60 ms importing what it never
# runs, more than the whole rest of the answer. So the table of commands and parameters,
# as click sees them, is kept in the user's cache directory, described once from the real
# commands and again whenever casectl's cli modules change (their sizes and times are its
# key); completion then builds plain click commands from it and imports no command module.


class Table(click.Group):
    """The root group as completion sees it: the real root's own options and command names,
    and each command built from its description (completers attached) when click asks for it."""

    def __init__(self, root: click.Group, described: Mapping[str, Any]):
        super().__init__(root.name, params=root.params, context_settings=dict(root.context_settings))
        self.root = root
        self.described = described

    @classmethod
    def of(cls, root: click.Group, environ: Mapping[str, str]) -> Table:
        where = _cache_file(environ)
        key = _fingerprint()
        described = _load(where, key)
        if described is None:
            described = describe(root)
            _save(where, key, described)
        return cls(root, described)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.described)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        node = self.described.get(name)
        if node is None:
            return None
        cmd = build(name, node)
        attach(cmd)
        return cmd

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        return self.root.shell_complete(ctx, incomplete)  # names from the root's table, as --help


def describe(root: click.Group) -> dict[str, Any]:
    """Every command of `root` and its parameters, as plain data (this imports every command)."""
    ctx = click.Context(root, info_name=PROG)
    return {name: _node(cmd) for name in root.list_commands(ctx) if (cmd := root.get_command(ctx, name)) is not None}


def _node(cmd: click.Command) -> dict[str, Any]:
    node: dict[str, Any] = {
        "short_help": cmd.get_short_help_str(),
        "hidden": cmd.hidden,
        "context": {k: v for k, v in cmd.context_settings.items() if k in _CONTEXT_KEYS},
    }
    if isinstance(cmd, click.Group):
        node["commands"] = {name: _node(sub) for name, sub in cmd.commands.items()}
    else:
        node["params"] = [_param(p) for p in cmd.params]
    return node


_CONTEXT_KEYS = ("help_option_names", "ignore_unknown_options", "allow_interspersed_args", "allow_extra_args")


def _param(p: click.Parameter) -> dict[str, Any]:
    d: dict[str, Any] = {
        "argument": isinstance(p, click.Argument),
        "name": p.name,
        "opts": list(p.opts),
        "secondary_opts": list(p.secondary_opts),
        "nargs": p.nargs,
        "multiple": p.multiple,
        "required": p.required,
        "metavar": p.metavar,
        "type": _kind_of(p.type),
    }
    if isinstance(p, click.Option):
        d.update(is_flag=p.is_flag, count=p.count, hidden=p.hidden, help=p.help)
    return d


def _kind_of(t: click.ParamType) -> Any:
    """What of a parameter's type completion uses: a Choice's values, a Path's file or directory."""
    if isinstance(t, click.Choice):
        return {"choices": [str(c) for c in t.choices]}
    if isinstance(t, click.Path):
        return {"path": "dir" if t.dir_okay and not t.file_okay else "file"}
    if isinstance(t, click.File):
        return {"path": "file"}
    return None


def build(name: str, node: Mapping[str, Any]) -> click.Command:
    """A click command (or group) from its description: what click needs to complete it."""
    common = {"short_help": node["short_help"], "hidden": node["hidden"], "context_settings": dict(node["context"])}
    if "commands" in node:
        group = click.Group(name, **common)
        for sub, sub_node in node["commands"].items():
            group.add_command(build(sub, sub_node), sub)
        return group
    return click.Command(name, params=[_rebuilt(p) for p in node["params"]], **common)


def _rebuilt(d: Mapping[str, Any]) -> click.Parameter:
    kind = d["type"] or {}
    t: click.ParamType | None = None
    if "choices" in kind:
        t = click.Choice(kind["choices"])
    elif "path" in kind:
        t = click.Path(file_okay=kind["path"] == "file")
    if d["argument"]:
        return click.Argument([d["name"]], nargs=d["nargs"], required=d["required"], metavar=d["metavar"], type=t)
    # The parameter's name as a declaration of its own keeps it (`--json` is as_json).
    decls = [*d["opts"], *(f"{d['opts'][0]}/{s}" for s in d["secondary_opts"]), d["name"]]
    return click.Option(
        decls,
        is_flag=d["is_flag"] or None,
        count=d["count"],
        multiple=d["multiple"],
        nargs=d["nargs"],
        required=d["required"],
        hidden=d["hidden"],
        help=d["help"],
        metavar=d["metavar"],
        type=None if d["is_flag"] else t,
    )


def _fingerprint() -> str:
    """What the table depends on: casectl's and Typer's versions and the cli modules' sizes and times."""
    from .. import __version__

    here = Path(__file__).parent
    parts = [__version__, typer.__version__]
    with os.scandir(here) as entries:
        for e in sorted(entries, key=lambda e: e.name):
            if e.name.endswith(".py"):
                st = e.stat()
                parts.append(f"{e.name}:{st.st_size}:{st.st_mtime_ns}")
    return "\n".join(parts)


def _cache_file(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "casectl" / "completion.json"


def _load(where: Path, key: str) -> dict[str, Any] | None:
    try:
        doc = json.loads(where.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("key") != key or not isinstance(doc.get("commands"), dict):
        return None
    return doc["commands"]


def _save(where: Path, key: str, described: dict[str, Any]) -> None:
    """Keep the table for the next request; a cache that cannot be written only costs time."""
    from ..files import atomic_output

    try:
        where.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with atomic_output(where, binary=False) as f:
            json.dump({"key": key, "commands": described}, f, ensure_ascii=False)
    except Exception:
        pass


@dataclass
class Asking(Invocation):
    """One completion request: the settings, as a run would have them, and the read-only
    connection, opened on first use (False once it could not be)."""

    reader: Any = field(default=None, repr=False)

    def connection(self, ctx: click.Context) -> sqlite3.Connection | None:
        if self.reader is None:
            self.reader = _read_only(self._settings(ctx)) or False
        return self.reader or None

    def _settings(self, ctx: click.Context) -> Settings:
        # --db typed after the command wins over --db before it, which wins over CASECTL_DB.
        # (No option callback runs while completing: the values sit in each context's params.)
        here: click.Context | None = ctx
        while here is not None:
            db = here.params.get("db")
            if isinstance(db, str) and db:
                return self.settings.with_options(db=db)
            here = here.parent
        return self.settings

    def close(self) -> None:
        if self.reader:
            try:
                self.reader.close()
            except Exception:
                pass


def _read_only(settings: Settings) -> sqlite3.Connection | None:
    """The database, opened for reading only, or None when there is none this casectl can read."""
    from ..store.db import Connection, schema_version
    from ..store.dialect import is_postgres
    from ..store.migrations import MIGRATIONS

    target = settings.db_path
    conn: Any
    try:
        if is_postgres(target):
            from ..store import pg

            conn = pg.connect(str(target), busy_timeout=PATIENCE)
        else:
            path = Path(target)
            if not path.is_file():  # mode=ro creates nothing, but say so before SQLite is asked
                return None
            conn = sqlite3.connect(
                f"{path.absolute().as_uri()}?mode=ro",
                uri=True,
                timeout=PATIENCE,
                isolation_level=None,
                check_same_thread=False,
                factory=Connection,
            )
            conn.row_factory = sqlite3.Row
            conn.db_path = str(path)
            conn.read_only = "shell completion only reads"
    except Exception:
        return None
    try:
        if schema_version(conn) == len(MIGRATIONS):  # an older file is migrated by a real run, not here
            return conn
    except Exception:
        pass
    conn.close()
    return None


# --- attaching completers to the commands the shell asks about ------------------------

Completer = Callable[[click.Context, click.Parameter, str], Iterable[CompletionItem | str]]


def attach(cmd: click.Command, path: tuple[str, ...] = ()) -> None:
    """Give `cmd`'s parameters (and those of a group's commands) their value completers."""
    path = path or (cmd.name or "",)
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            attach(sub, (*path, name))
        return
    for param in cmd.params:
        found = _completer_for(path, param)
        if found is not None:
            param._custom_shell_complete = _quiet(found)


def _completer_for(path: tuple[str, ...], param: click.Parameter) -> Completer | None:
    name = param.name or ""
    table = ARGUMENTS if isinstance(param, click.Argument) else OPTIONS
    found = table.get((*path, name)) or table.get(("*", name))
    if found is None and _choices(param):
        return _metavar_choices
    return found


def _quiet(fn: Completer) -> Callable[[click.Context, click.Parameter, str], list[CompletionItem]]:
    """The completer, keeping what matches the typed prefix, and nothing when it fails."""

    def completer(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        try:
            items = [i if isinstance(i, CompletionItem) else CompletionItem(i) for i in fn(ctx, param, incomplete)]
        except Exception:  # a missing, locked or odd database: nothing to offer, nothing to say
            return []
        return [i for i in items if str(i.value).startswith(incomplete)]

    return completer


def _db(ctx: click.Context) -> sqlite3.Connection | None:
    asking = ctx.find_object(Asking)
    return asking.connection(ctx) if asking is not None else None


# --- the completers -------------------------------------------------------------------


def _workflows(conn: sqlite3.Connection | None) -> list[Any]:
    from ..services import workflows as workflow_service

    return [wf for wf, _ in workflow_service.all_latest(conn)]


def workflow_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(wf.name, help=wf.title) for wf in _workflows(_db(ctx))]


def statuses(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Every status of every workflow, or of the --workflow already typed."""
    wanted = ctx.params.get("workflow")
    seen: dict[str, list[str]] = {}
    for wf in _workflows(_db(ctx)):
        if wanted and wf.name != wanted:
            continue
        for status in wf.statuses:
            seen.setdefault(status.name, []).append(wf.name)
    return [CompletionItem(name, help=", ".join(wfs)) for name, wfs in sorted(seen.items())]


def _typed(ctx: click.Context) -> tuple[sqlite3.Connection, dict[str, Any]] | None:
    """The case already typed on the command line (`case`, or the first of `block`'s and
    `activity`'s words) as stored, with the connection; None when there is none."""
    conn = _db(ctx)
    typed = _first_argument(ctx)
    if conn is None or not isinstance(typed, str) or typed == "-":
        return None
    from .. import ids
    from ..store import cases as case_store

    # As services.lifecycle.resolve_id reads it (an id form is always an id; else a reference),
    # without importing the kernel for one look-up.
    n = None if typed.startswith(ids.REF_PREFIX) else ids.parse("case", typed)
    if n is None:
        n = case_store.id_for_ref(conn, typed.removeprefix(ids.REF_PREFIX))
    case = case_store.get(conn, n) if n is not None else None
    return (conn, case) if case is not None else None


def _first_argument(ctx: click.Context) -> Any:
    """The command's first argument as typed (the case, for every command that takes one)."""
    typed = ctx.params.get("case") or next(iter(ctx.params.get("words") or ()), None)
    # An option still waiting for its value (`approve C-12 --expect-status <TAB>`) stops click's
    # resilient parsing before it assigns the arguments: they are left in ctx.args.
    return typed if typed is not None or not ctx.args else ctx.args[0]


def _typed_case(ctx: click.Context) -> tuple[dict[str, Any], Any] | None:
    """The typed case and the workflow version it runs on."""
    found = _typed(ctx)
    if found is None:
        return None
    from ..services import catalog

    conn, case = found
    return case, catalog.workflow_of(conn, case)


def case_statuses(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """The statuses of the typed case's workflow (--expect-status), else every status."""
    found = _typed_case(ctx)
    if found is None:
        return statuses(ctx, param, incomplete)
    case, wf = found
    return [CompletionItem(s.name, help="now" if s.name == case["status"] else s.label) for s in wf.statuses]


def new_statuses(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """`status ID NEW_STATUS`: the statuses the case's workflow lets it be set to from where it is."""
    found = _typed_case(ctx)
    if found is None:
        return []
    case, wf = found
    rule = wf.set_status
    if rule.sources and case["status"] not in rule.sources:
        return []
    return [CompletionItem(name) for name in rule.targets if name != case["status"]]


def _actions(ctx: click.Context, trigger: str) -> list[CompletionItem]:
    """The actions (or system events) of the typed case's workflow that start from its status."""
    from .. import rules

    found = _typed_case(ctx)
    if found is None:
        return []
    case, wf = found
    wanted = rules.AGENT if trigger == "agent" else rules.SYSTEM
    return [
        CompletionItem(a.name, help=a.label)
        for a in wf.actions
        if a.answers_to(wanted) and (not a.sources or case["status"] in a.sources)
    ]


def agent_actions(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    return _actions(ctx, "agent")


def system_events(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    return _actions(ctx, "system")


def view_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Saved views and the built-in ones, with what each selects."""
    from ..services import views as view_service

    conn = _db(ctx)
    if conn is None:
        return [CompletionItem(name) for name in view_service.builtins(None)]
    return [CompletionItem(v["name"], help=v["description"]) for v in view_service.list_views(conn)]


def saved_view_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """`views rm NAME`: only saved views can be removed."""
    return [v for v in view_names(ctx, param, incomplete) if v.value in _saved_views(ctx)]


def _saved_views(ctx: click.Context) -> set[str]:
    from ..services import views as view_service

    conn = _db(ctx)
    return {v["name"] for v in view_service.list_views(conn) if not v["builtin"]} if conn else set()


def user_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    from ..services import users as user_service

    conn = _db(ctx)
    if conn is None:
        return []
    return [CompletionItem(u["name"], help=", ".join(u["roles"])) for u in user_service.list_users(conn)]


def priorities(ctx: click.Context, param: click.Parameter, incomplete: str) -> Iterable[str]:
    from ..rules.routines import PRIORITIES

    return PRIORITIES


def categories(ctx: click.Context, param: click.Parameter, incomplete: str) -> Iterable[str]:
    from ..rules.model import CATEGORIES

    return CATEGORIES


def sort_fields(ctx: click.Context, param: click.Parameter, incomplete: str) -> Iterable[str]:
    # (-FIELD, descending, cannot be completed: click takes a word starting with - for an option.)
    from ..filters import SORT_FIELDS

    return SORT_FIELDS


def outbox_statuses(ctx: click.Context, param: click.Parameter, incomplete: str) -> Iterable[str]:
    return ("pending", "sending", "delivered", "failed")


def activity_states(ctx: click.Context, param: click.Parameter, incomplete: str) -> Iterable[str]:
    from ..rules.model import ACTIVITY_STATES

    return ACTIVITY_STATES


def role_kinds(ctx: click.Context, param: click.Parameter, incomplete: str) -> Iterable[str]:
    return ("agent", "lead", "auditor")


def shells(ctx: click.Context, param: click.Parameter, incomplete: str) -> Iterable[str]:
    return SHELLS


def block_specs(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """`create --block KIND:NAME`: the kinds, each ready for its name."""
    from .. import rules

    return [f"{kind}:" for kind in rules.BLOCK_KINDS_BY_NAME]


def files(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(incomplete, type="file")]


def _choices(param: click.Parameter) -> list[str]:
    """A metavar that lists the values (`table|json|ndjson|csv`, `add|cancel`)."""
    metavar = getattr(param, "metavar", None) or ""
    return metavar.split("|") if re.fullmatch(r"[a-z]+(\|[a-z]+)+", metavar) else []


def _metavar_choices(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return _choices(param)


# Case ids: C-12, c12 or 12, as the user started typing it.
_TYPED_ID = re.compile(r"([Cc]-?)?([0-9]*)")


def case_ids(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Ids of cases whose number starts with the digits typed, the most recent first; `-` where
    the command reads ids from stdin."""
    stdin = [CompletionItem("-", help="ids from stdin")] if "|-" in (getattr(param, "metavar", None) or "") else []
    m = _TYPED_ID.fullmatch(incomplete)
    conn = _db(ctx)
    if m is None or conn is None:
        return stdin if not incomplete else []
    head = m.group(1) or ("" if m.group(2) else "C-")
    if head in ("C", "c"):
        head += "-" if not m.group(2) else ""
    items = [CompletionItem(f"{head}{case['id']}", help=_about(case)) for case in recent_cases(conn, m.group(2))]
    return (stdin if not incomplete else []) + items


def _about(case: Mapping[str, Any]) -> str:
    return f"{case['workflow']} {case['status']}" + (f" ({case['assignee']})" if case.get("assignee") else "")


def recent_cases(conn: sqlite3.Connection, digits: str, limit: int = MOST_IDS) -> list[dict[str, Any]]:
    """The most recent cases whose id starts with `digits`, newest first, read off the primary key.

    Each range of `id_ranges` is one keyset page walking the key down from its top
    (`id < hi + 1 ORDER BY id DESC LIMIT n`): at most `limit` rows per range, seven ranges at
    a million cases, whatever the size of the table (LIKE over the ids as text reads them all,
    and sorts "C-12" after "C-1199").
    """
    from ..filters import CaseFilter
    from ..services import listing

    newest = list(listing.select(conn, CaseFilter(), sort="-id", limit=1 if digits else limit))
    if not digits or not newest:
        return newest
    found: list[dict[str, Any]] = []
    for lo, hi in id_ranges(digits, newest[0]["id"]):
        page = listing.select(conn, CaseFilter(), sort="-id", limit=limit - len(found), after=(None, hi + 1))
        found += [case for case in page if case["id"] >= lo]
        if len(found) >= limit:
            break
    return found


def id_ranges(digits: str, top: int) -> list[tuple[int, int]]:
    """The ranges of ids up to `top` whose decimal form starts with `digits`, highest first:
    for 12 and a top of 1,000,000 they are [120000, 129999], [12000, 12999], ... [12, 12]."""
    if not digits.isdigit() or digits.startswith("0"):
        return []
    prefix = int(digits)
    out = []
    for width in range(len(str(top)) - len(digits), -1, -1):
        lo, hi = prefix * 10**width, min((prefix + 1) * 10**width - 1, top)
        if lo <= hi:
            out.append((lo, hi))
    return out


def case_blocks(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """The blocks of the case already typed, its own data and registry blocks first (help: the kind)."""
    found = _typed(ctx)
    if found is None:
        return []
    from ..rules.blocks import DATA_BLOCK, REGISTRY_BLOCK
    from ..store import blocks as block_store

    conn, case = found
    own = [CompletionItem(DATA_BLOCK, help="user_data"), CompletionItem(REGISTRY_BLOCK, help="registry_data")]
    stored = [
        CompletionItem(b["name"], help=f"{b['kind']} {b['status']}" if b["status"] else b["kind"])
        for b in block_store.blocks(conn, case["id"])
    ]
    return own + stored


def block_words(ctx: click.Context, param: click.Parameter, incomplete: str) -> Iterable[CompletionItem | str]:
    """`block ID BLOCK VERB` and `block ID add KIND NAME`, word by word."""
    from .. import rules

    words = list(ctx.params.get("words") or ())
    if not words:
        return list(case_ids(ctx, param, incomplete))
    if len(words) == 1:
        return ["add", *case_blocks(ctx, param, incomplete)]
    if len(words) == 2 and words[1] == "add":
        return list(rules.BLOCK_KINDS_BY_NAME)
    if len(words) == 2:
        for b in case_blocks(ctx, param, ""):
            kind = rules.BLOCK_KINDS_BY_NAME.get(str(b.help).split()[0])
            if b.value == words[1] and kind is not None:
                return (
                    (["set"] if kind.agent_editable else [])
                    + list(kind.actions)
                    + (["received"] if kind.needs_document else [])
                )
    return []


def activity_words(ctx: click.Context, param: click.Parameter, incomplete: str) -> Iterable[CompletionItem | str]:
    """`activity ID ACT VERB ...` and `activity ID add TYPE`, word by word."""
    words = list(ctx.params.get("words") or ())
    if not words:
        return list(case_ids(ctx, param, incomplete))
    found = _typed_case(ctx)
    if found is None:
        return []
    case, wf = found
    if len(words) == 1:
        from .. import ids
        from ..store import activities as activity_store

        rows = activity_store.activities(_db(ctx), case["id"])  # type: ignore[arg-type]
        return ["add", *(CompletionItem(ids.fmt("activity", a["id"]), help=f"{a['type']} {a['state']}") for a in rows)]
    if len(words) == 2:
        if words[1] == "add":
            return [CompletionItem(r.type, help=r.label) for r in wf.requirements]
        return ["state", "result", "decide", "assign"]
    if len(words) == 3 and words[2] == "state":
        return list(wf.activity_states)
    if len(words) == 3 and words[2] == "decide":
        return list(wf.decisions)
    return []


# Which completer a parameter gets: by (command path..., parameter name), else ("*", name).
ARGUMENTS: dict[tuple[str, ...], Completer] = {
    ("*", "case"): case_ids,
    ("status", "new_status"): new_statuses,
    ("act", "action"): agent_actions,
    ("event", "name"): system_events,
    ("priority", "level"): priorities,
    ("attach", "block_name"): case_blocks,
    ("doc", "block_name"): case_blocks,
    ("attach", "path"): files,
    ("import", "file"): files,
    ("block", "words"): block_words,
    ("activity", "words"): activity_words,
    ("assign", "user"): user_names,
    ("views", "rm", "name"): saved_view_names,
    ("users", "rm", "name"): user_names,
    ("workflows", "show", "name"): workflow_names,
    ("workflows", "graph", "name"): workflow_names,
    ("completion", "shell"): shells,
}
OPTIONS: dict[tuple[str, ...], Completer] = {
    ("*", "workflow"): workflow_names,
    ("*", "status"): statuses,
    ("*", "expect_status"): case_statuses,
    ("*", "view"): view_names,
    ("*", "priority"): priorities,
    ("*", "assignee"): user_names,
    ("*", "category"): categories,
    ("*", "sort"): sort_fields,
    ("*", "parent"): case_ids,
    ("*", "case"): case_ids,
    ("*", "out"): files,
    ("*", "output_path"): files,
    ("*", "rejects"): files,
    ("*", "package"): files,
    ("create", "block"): block_specs,
    ("outbox", "list", "status"): outbox_statuses,
    ("activities", "state"): activity_states,
    ("db", "grant", "kind"): role_kinds,
}
