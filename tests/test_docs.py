"""The documentation holds: the generated pages say what casectl says now, every relative link
and anchor resolves, the README opens with the two set-up commands and its tour runs on a new
database, every crontab line runs as cron runs it, and the demo echoes commands one can paste."""

from __future__ import annotations

import difflib
import os
import re
import runpy
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import casectl_bin

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
REGENERATE = ".venv/bin/python scripts/docs"
CRON_PATH = "/usr/bin:/bin"  # Debian cron's PATH for every job
PLACEHOLDER_BIN = "/home/you/.local/bin/casectl"  # where the docs say pipx puts casectl


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def fenced_blocks(text: str) -> list[tuple[str, list[str]]]:
    """(info string, lines) of every ``` block."""
    blocks, current, info = [], None, ""
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            if current is None:
                current, info = [], line.strip()[3:].strip()
            else:
                blocks.append((info, current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def without_code_blocks(text: str) -> str:
    """The text with fenced blocks blanked (lines kept, so nothing else moves)."""
    out, inside = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            inside = not inside
            out.append("")
        else:
            out.append("" if inside else line)
    return "\n".join(out)


# --- the generated pages -------------------------------------------------------------


def test_the_generated_pages_say_what_casectl_says_now(monkeypatch):
    for key in [k for k in os.environ if k.startswith("CASECTL_")]:
        monkeypatch.delenv(key)
    generator = runpy.run_path(str(ROOT / "scripts" / "docs"), run_name="casectl_docs")
    for path, text in generator["pages"]().items():
        rel = path.relative_to(ROOT)
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        if old != text:
            diff = "".join(
                list(difflib.unified_diff(old.splitlines(True), text.splitlines(True), f"{rel} (committed)", "now"))[
                    :60
                ]
            )
            pytest.fail(f"{rel} is out of date: run `{REGENERATE}` and commit it\n{diff}")


def test_the_command_reference_has_every_command_and_subcommand():
    from casectl.cli.app import COMMANDS

    reference = (DOCS / "commands.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^#{2,4} casectl ?(.*)$", reference, flags=re.M))
    assert set(COMMANDS) <= headings, f"missing: {set(COMMANDS) - headings}; run `{REGENERATE}`"
    for sub in ("workflows show", "db check", "outbox deliver", "views add", "routines run"):
        assert sub in headings


# --- links -----------------------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but - and _ dropped, blanks as -."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())  # a link in a heading: its text
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in without_code_blocks(path.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


LINK = re.compile(r"\[((?:[^\[\]`]|`[^`]*`)*)\]\(([^()\s]+)\)")


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every Markdown link outside code (its text may span lines)."""
    text = without_code_blocks(path.read_text(encoding="utf-8"))
    spans = [m.span() for m in re.finditer(r"`[^`\n]*`", text)]
    found = []
    for m in LINK.finditer(text):
        middle = m.start(2) - 1  # the "(" after "]": a link inside a code span is no link
        if not any(a < middle < b for a, b in spans):
            found.append((text.count("\n", 0, m.start()) + 1, m.group(2)))
    return found


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_names_a_file_and_heading_that_exist(page):
    broken = []
    for number, target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file, _, fragment = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        where = f"{page.relative_to(ROOT)}:{number}: {target}"
        if not dest.exists():
            broken.append(f"{where}: no such file")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            broken.append(f"{where}: no heading with that anchor in {dest.relative_to(ROOT)}")
    assert not broken, "\n".join(broken)


def test_every_docs_page_is_in_the_index_and_the_readme():
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    readme = README.read_text(encoding="utf-8")
    for page in sorted(DOCS.glob("*.md")):
        if page.name == "README.md":
            continue
        assert f"]({page.name}" in index, f"docs/README.md does not link {page.name}"
        assert f"](docs/{page.name}" in readme, f"README.md does not link docs/{page.name}"


# --- the README --------------------------------------------------------------------------


def test_the_readme_starts_with_the_two_setup_commands():
    first = README.read_text(encoding="utf-8").splitlines()[:6]
    assert first[:3] == ["# casectl", "", "```sh"], first
    assert [line.split()[0] for line in first[3:5]] == ["scripts/demo", "scripts/test"], first
    assert first[5] == "```", first


def tour() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## A ten-line tour\n", 1)[1].split("\n## ", 1)[0]
    [(_, lines)] = [b for b in fenced_blocks(section) if b[0] == "sh"]
    return lines


def test_the_readme_tour_runs_as_written_on_a_new_database(tmp_path):
    lines = tour()
    assert len(lines) == 10, lines
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": f"{Path(casectl_bin()).parent}:{CRON_PATH}", "HOME": str(home)}
    r = subprocess.run(["/bin/sh", "-e", "-c", "\n".join(lines)], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"the tour stopped (exit {r.returncode}):\n{r.stdout}\n{r.stderr}"
    assert "approve: moved open -> approved" in r.stdout
    assert r.stdout.rstrip().endswith("3 events checked")


# --- crontab lines ---------------------------------------------------------------------

CRON_FIELDS = re.compile(r"^\s*((?:[\d*/,\-]+\s+){5})(\S.*)$")


def crontab_lines() -> list[tuple[str, str]]:
    """(where, line) of every crontab line in a code block of the docs."""
    found = []
    for page in pages():
        for _, lines in fenced_blocks(page.read_text(encoding="utf-8")):
            for line in lines:
                if CRON_FIELDS.match(line):
                    found.append((f"{page.relative_to(ROOT)}: {line.split(';')[-1].strip()[:60]}", line))
    return found


def cron_command(line: str) -> tuple[str, str]:
    """What cron runs for a crontab line, and its stdin: an unescaped % ends the command and
    starts stdin (further ones are new lines); \\% is a plain %."""
    command = CRON_FIELDS.match(line).group(2)
    parts = re.split(r"(?<!\\)%", command)
    unescape = [p.replace("\\%", "%") for p in parts]
    return unescape[0], "\n".join(unescape[1:])


def test_the_docs_show_every_cron_job_with_an_env_file():
    lines = [line for _, line in crontab_lines()]
    jobs = " ".join(lines)
    for job in ("outbox deliver", "digest", "routines run", "db check", "db anchor"):
        assert f"/casectl {job}" in jobs, f"no crontab line for {job}"
    cron = (DOCS / "cron.md").read_text(encoding="utf-8")
    assert "chmod 600 ~/.config/casectl/cron.env" in cron
    assert "command -v casectl" in cron


@pytest.mark.parametrize("where, line", crontab_lines(), ids=[w for w, _ in crontab_lines()])
def test_a_crontab_line_runs_under_cron_s_shell_and_path(where, line, tmp_path, db_path):
    from outside_servers import SmtpServer

    command, stdin = cron_command(line)
    # casectl by its absolute path, never by a bare name cron's PATH cannot find
    calls = re.findall(r"([^\s()$=;|&`'\"]*)\bcasectl(?=\s|$)", command)
    assert calls, f"{where}: no casectl in {line!r}"
    assert all(c.startswith("/") and c.endswith("/") for c in calls), f"{where}: casectl without an absolute path"
    assert PLACEHOLDER_BIN in command, f"{where}: the docs name casectl {PLACEHOLDER_BIN} (as pipx installs it)"
    assert "PASSWORD" not in command and "SECRET" not in command, f"{where}: a secret in the crontab"

    home = tmp_path / "home"
    home.mkdir()
    cron_env = {"PATH": CRON_PATH, "HOME": str(home)}
    # the env file, made by the docs' own commands (so it is 0600), then given this test's values
    [setup] = [
        lines
        for info, lines in fenced_blocks((DOCS / "cron.md").read_text(encoding="utf-8"))
        if any("chmod 600" in x for x in lines)
    ]
    r = subprocess.run(["/bin/sh", "-e", "-c", "\n".join(setup)], env=cron_env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    env_file = home / ".config" / "casectl" / "cron.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600

    with SmtpServer() as smtp:
        settings = {"CASECTL_DB": str(db_path), "CASECTL_ACTOR": "cron", **smtp.env()}
        env_file.write_text("".join(f"{k}='{v}'\n" for k, v in settings.items()), encoding="utf-8")
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600

        def sh(cmd: str, input: str = "") -> subprocess.CompletedProcess:
            return subprocess.run(
                ["env", "-i", *(f"{k}={v}" for k, v in cron_env.items()), "/bin/sh", "-c", cmd],
                input=input,
                capture_output=True,
                text=True,
                timeout=120,
            )

        casectl = casectl_bin()
        init = sh(f"set -a; . ~/.config/casectl/cron.env; set +a; {casectl} init")  # once, in your own shell
        assert init.returncode == 0, init.stderr
        r = sh(command.replace(PLACEHOLDER_BIN, casectl), stdin)
        assert r.returncode == 0, f"{where}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
        assert "not found" not in r.stderr, r.stderr
        if "/casectl digest" in command:
            assert len(smtp.messages) == 1, "the digest was not sent"
        if "/casectl db check" in command:
            assert r.stdout == "", "db check prints nothing while the database is sound"
        if "/casectl db anchor" in command:
            assert r.stdout.strip(), "the anchor goes to stdout, for cron to mail"


# --- the demo ------------------------------------------------------------------------------


def test_the_demo_echoes_commands_that_paste_back_as_they_ran(tmp_path):
    """scripts/demo's `step` prints each command before running it; pasted into a shell,
    the printed line must give the same words."""
    demo = (ROOT / "scripts" / "demo").read_text(encoding="utf-8")
    functions = re.search(r"^shown\(\) \{.*?^\}\n", demo, flags=re.M | re.S)
    assert functions, "scripts/demo has no shown() function"
    words = [
        "casectl",
        "block",
        "C-1",
        "passport",
        "reupload",
        "--reason",
        "the scan's blurry",
        "$HOME",
        "a;b",
        "陈美",
        "",
    ]
    script = (
        functions.group(0) + 'line=$(shown "$@")\nprintf "%s\\n" "$line"\neval "set -- $line"\nprintf "%s\\0" "$@"\n'
    )
    r = subprocess.run(["bash", "-c", script, "demo", *words], capture_output=True, text=True, env={"LANG": "C.UTF-8"})
    assert r.returncode == 0, r.stderr
    printed, _, back = r.stdout.partition("\n")
    assert back.split("\0")[:-1] == words, printed
    assert printed.startswith("casectl block C-1 passport reupload --reason "), printed
