"""A built wheel is the whole program (issue 15, item 1): `pip install casectl` and
`pipx install .` install this wheel, so it must carry every module and all package data and
put a working `casectl` on PATH. Built offline from a copy of the source tree, installed apart
from the checkout, and run from elsewhere, so nothing of the checkout can stand in for it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("wheel", reason="the test extra installs wheel, to build offline")
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "casectl"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, src / name)
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", out, src],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    (found,) = out.glob("casectl-*.whl")
    return found


def test_the_wheel_carries_every_module_and_all_package_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    package = ROOT / "casectl"
    expected = {
        str(p.relative_to(ROOT))
        for p in package.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".json", ".sql", ".toml", ".ttf")
    }
    assert expected - names == set()
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "casectl = casectl.cli.app:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_installed_wheel_runs_from_anywhere(wheel, tmp_path):
    target = tmp_path / "site"
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", target, wheel],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    script = target / "bin" / "casectl"
    assert script.exists()
    # The dependencies come from this environment's site-packages; casectl only from the wheel.
    deps = sysconfig.get_paths()["purelib"]
    env = {
        "PATH": f"{target / 'bin'}:/usr/bin:/bin",
        "PYTHONPATH": f"{target}{os.pathsep}{deps}",
        "PYTHONNOUSERSITE": "1",
        "HOME": str(tmp_path),
        "CASECTL_DB": str(tmp_path / "cases.db"),
        "CASECTL_ACTOR": "ann",
    }
    work = tmp_path / "elsewhere"
    work.mkdir()

    def casectl(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["casectl", *args], cwd=work, env=env, capture_output=True, text=True, timeout=120)

    where = subprocess.run(
        [sys.executable, "-c", "import casectl; print(casectl.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert where.stdout.startswith(str(target)), where.stdout + where.stderr
    assert casectl("--version").stdout.startswith("casectl ")
    assert casectl("init").returncode == 0
    assert casectl("create", "--workflow", "kyb", "--subject-email", "ada@example.com").stdout == "C-1\n"
    # Package data: the workflow JSON Schema, the PDF fonts.
    flow = ROOT / "examples" / "workflows" / "rt-default.json"
    assert casectl("workflows", "validate", str(flow)).returncode == 0
    r = casectl("report", "C-1", "-o", "c1.pdf")
    assert r.returncode == 0, r.stderr
    assert (work / "c1.pdf").read_bytes().startswith(b"%PDF")
