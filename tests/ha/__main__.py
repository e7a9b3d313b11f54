"""``python -m tests.ha [CELL ...]``: the failover cells as a table (docs/operations.md).

Each cell starts its own topology (etcd, two Patroni nodes, HAProxy, two web processes and two workers); the
cells are the ones of ``tests/ha/test_failover.py``, without the assertions: the table shows what
happened, including what asynchronous replication lost.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from typing import Any

from tests.ha.cells import (
    CellResult,
    Rig,
    kill_primary_host,
    partition_primary,
    run_cell,
    stall_replication,
    switchover,
)
from tests.ha.topology import Replication

CELLS: dict[str, tuple[bool, Callable[..., Any], Callable[..., Any] | None]] = {
    "primary-kill9": (True, kill_primary_host, None),
    "primary-partitioned": (True, partition_primary, None),
    "switchover": (True, switchover, None),
    "stall+kill9-sync": (True, kill_primary_host, stall_replication),
    "stall+kill9-async": (False, kill_primary_host, stall_replication),
}

HEAD = (
    "| cell | replication | accepted | lost | dup. events | dup. runs | unexplained effects "
    "| first 202 after s | first job after s | leader |\n" + "|---" * 10 + "|"
)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.ha", description=__doc__)
    parser.add_argument("cells", nargs="*", choices=[[], *CELLS], default=[])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--fault-at", type=float, default=4.0)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asgi.settings")
    results: list[CellResult] = []
    for name in args.cells or list(CELLS):
        synchronous, fault, before = CELLS[name]
        rig = Rig(Replication(synchronous=synchronous))
        try:
            result = asyncio.run(
                run_cell(
                    name, rig, fault, count=args.count, rate=args.rate, fault_at=args.fault_at,
                    before_fault=before,
                )
            )  # fmt: skip
        finally:
            rig.close()
        results.append(result)
        print(f"{name}: done", file=sys.stderr, flush=True)
    print(HEAD)
    for result in results:
        print(result.row())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
