"""Which failover cells run: all of them with ``-m ha``; otherwise (``make test``, CI) only the one
marked ``ha(ci=True)``, as each cell starts a whole topology and takes one to two minutes."""

from __future__ import annotations

import re

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if re.search(r"\bha\b", config.getoption("markexpr") or ""):
        return
    dropped = []
    for item in items:
        marker = item.get_closest_marker("ha")
        if marker is not None and not marker.kwargs.get("ci"):
            dropped.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]
