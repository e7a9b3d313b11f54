"""A real browser for the console tests: Debian's Chromium driven by Playwright, installed if missing.

Playwright's own browser download is not used (it fetches from outside the package registries);
its Python package drives the system Chromium (``executable_path``). CI machines are like this
one (root, Debian's registry reachable), so a missing Chromium is installed with apt; the tests
are skipped, saying why, only where apt itself is not there to install it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# chromium's fonts are a recommendation of Debian's package; the rest of its recommends
# (printing, notifications, samba...) are not needed headless and double the install time
PACKAGES = ["chromium", "fonts-liberation"]


def ensure_chromium() -> str:
    """The path of a Chromium to drive: Debian's, installed now (apt-get) when missing."""
    found = shutil.which("chromium") or (CHROMIUM if os.path.exists(CHROMIUM) else None)
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        pytest.skip("no Chromium at /usr/bin/chromium and no apt-get to install Debian's 'chromium' package")
    if os.geteuid() != 0:
        pytest.skip("no Chromium at /usr/bin/chromium; run as root (as CI does) or: apt-get install chromium")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt, "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:  # a fresh machine may have no package lists yet
        subprocess.run([apt, "update", "-q"], env=env, capture_output=True, text=True, timeout=300)
        result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=300)
    if result.returncode != 0 or not os.path.exists(CHROMIUM):
        pytest.fail(f"apt-get could not install Chromium:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return CHROMIUM


def screenshot_dir(default: Path) -> Path:
    """Where screenshots go: ``AUTOMATE_SCREENSHOTS`` (e.g. docs/screenshots), else ``default``."""
    where = Path(os.environ.get("AUTOMATE_SCREENSHOTS") or default)
    where.mkdir(parents=True, exist_ok=True)
    return where
