"""Every test here works in its own folder: the search for a project's ``.automate/`` stops there,
so a ``.automate/`` that something else left in a parent folder (``/tmp``) is never used."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _ceiling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOMATE_CEILING", str(tmp_path))
