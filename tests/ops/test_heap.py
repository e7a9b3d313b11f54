"""The startup heap frozen out of the cyclic garbage collector's walks (``automate_core.heap``).

Each case runs in a process of its own: a freeze is for the life of the process, and this test
session's own heap must stay as Python manages it. ``automate serve`` and ``automate worker``
freezing in their real processes is checked in tests/ops/test_serve.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import gc, json, django
django.setup()
from automate_core import heap
before = gc.get_freeze_count()
first = heap.freeze_startup()
after_first = gc.get_freeze_count()
made_since = [[i] for i in range(50_000)]  # tracked objects made after the start
second = heap.freeze_startup()
gc.collect(2)  # a full collection still runs, over what was made since
print(json.dumps({"before": before, "first": first, "after_first": after_first, "second": second,
                  "after_second": gc.get_freeze_count(), "tracked_young": len(gc.get_objects())}))
"""


def python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a process of its own with the deployable project's settings (``AUTOMATE_*``
    from the environment, ``env`` among them)."""
    return subprocess.run(
        [sys.executable, "-c", code],
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "asgi.settings",
            "SECRET_KEY": "heap-test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "automate"), str(ROOT)]),
            **env,
        },
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip


def probe(**env: str) -> dict[str, int]:
    done = python(PROBE, **env)
    assert done.returncode == 0, done.stdout + done.stderr
    seen: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return seen


def test_the_objects_alive_at_start_are_frozen_once_per_process() -> None:
    seen = probe()
    assert seen["before"] == 0
    # Django, the apps and their settings: far more than a bare interpreter's few thousand
    assert seen["first"] == seen["after_first"] > 20_000
    # a second call (a second lifespan startup in the same process) freezes nothing more
    assert seen["second"] == seen["first"] == seen["after_second"]
    # what was made after the start stays with the collector
    assert 50_000 <= seen["tracked_young"] < seen["first"] + 50_000


def test_gc_freeze_off_leaves_the_collector_as_python_sets_it() -> None:
    for off in ("0", "false", "off"):
        seen = probe(AUTOMATE_GC_FREEZE=off)
        assert seen["first"] == seen["second"] == 0
        assert seen["after_second"] == 0, f"AUTOMATE_GC_FREEZE={off} froze objects anyway"


def test_a_bad_value_stops_the_process_with_the_settings_name() -> None:
    done = python("import django; django.setup()", AUTOMATE_GC_FREEZE="sometimes")
    assert done.returncode != 0
    assert "AUTOMATE_GC_FREEZE" in done.stderr, done.stderr
