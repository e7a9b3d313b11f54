"""Flow constructs: one module per construct, each called by the interpreter (``runner.Walk``).

==================  =========  ===============================================================
construct           durable    what it does
==================  =========  ===============================================================
``sleep``           yes        waits a duration, or until a moment
``wait_for_event``  yes        waits for an event correlated by a payload value, with a timeout
``approval``        yes        waits for a person's answer (console, CLI, API, one-time link)
``call``            yes        runs another workflow as a child run and waits for its end
``for_each``        no         runs one action per item of a list, at most N at once, in order
``parallel``        no         runs actions side by side and joins them
``switch``          no         picks one list of steps by a value (the lists may wait)
==================  =========  ===============================================================

A *durable* construct parks the run on a wait (``execution.waits``); the others run inside the
job, recording each item and branch as a step record of its own. A new construct is one new
module with ``key``, ``extra_keys``, ``durable``, ``normalize`` and ``run`` (and ``outcome`` when
durable), listed in ``CONSTRUCTS``.
"""

from __future__ import annotations

from typing import cast

from automate_core.execution.constructs import approval, call, for_each, parallel, sleep, switch, wait
from automate_core.execution.constructs.base import Construct, Durable

CONSTRUCTS: dict[str, Construct] = {
    c.key: c
    for c in (
        sleep.Sleep(),
        wait.WaitForEvent(),
        approval.Approval(),
        call.Call(),
        for_each.ForEach(),
        parallel.Parallel(),
        switch.Switch(),
    )
}


def get(kind: str) -> Construct:
    return CONSTRUCTS[kind]


def durable(kind: str) -> Durable:
    construct = CONSTRUCTS[kind]
    assert construct.durable, kind
    return cast(Durable, construct)


__all__ = ["CONSTRUCTS", "Construct", "Durable", "durable", "get"]
