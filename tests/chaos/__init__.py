"""The chaos suite: the whole platform under faults, checked against a ledger of what was acknowledged.

Run the full matrix with ``python -m tests.chaos`` (see ``--help``); CI runs a short version in
``test_chaos.py``. Results and their meaning are in docs/reliability.md.
"""

from __future__ import annotations
