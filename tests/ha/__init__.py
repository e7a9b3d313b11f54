"""Past one machine: a streaming replica behind the database router, and a failover topology
(Patroni + etcd + HAProxy, each "host" on its own 127.0.0.x address) the tests start themselves.

The failover cells are marked ``ha``: ``python -m pytest -m ha tests/ha`` (docs/operations.md,
"Scaling past one machine").
"""

from __future__ import annotations
