"""LLM token budgets: per run, per workflow and global, enforced in PostgreSQL.

Before a call, :func:`reserve` adds the call's estimate (prompt tokens counted locally plus the
``max_tokens`` asked for) to every applicable ledger, in one transaction, only if each stays
within its limit; otherwise nothing is reserved and :class:`BudgetExceededError` names the scope.
After the call, :func:`settle` replaces the reservation with the usage the provider reported (or
keeps the estimate when it reported none), and :func:`release` gives it back when the call failed
without using tokens. Because reservations are counted with the row lock held, concurrent runs in
any number of processes cannot overshoot a limit; the only overshoot possible is a provider
reporting more than was reserved (the prompt estimate was low), and it is recorded as used.

Limits come from ``AUTOMATE_LLM_BUDGETS``::

    AUTOMATE_LLM_BUDGETS = {
        "global": 2_000_000,            # all workflows, per period
        "workflow": 200_000,            # each workflow, per period (default)
        "workflows": {"triage": 50_000},  # per-workflow overrides
        "run": 20_000,                  # one run (all its LLM steps)
        "period": "month",              # "month", "day" or "total" for global/workflow
    }

With no limits configured nothing is written: usage is still recorded per step and in metrics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from automate_core import db
from automate_core.conf import settings
from automate_core.exceptions import BudgetExceededError, ConfigurationError
from automate_governance.budgets import queries


@dataclass(frozen=True, slots=True)
class Limit:
    scope: str
    key: str
    period: str
    tokens: int | None


@dataclass(slots=True)
class Reservation:
    """A reservation in the ledgers; ``call_id`` is ``None`` when no budget applies."""

    tokens: int
    call_id: int | None = None
    ledger_ids: list[int] = field(default_factory=list)


def _period(kind: str, now: datetime) -> str:
    if kind == "month":
        return now.strftime("%Y-%m")
    if kind == "day":
        return now.strftime("%Y-%m-%d")
    if kind == "total":
        return ""
    raise ConfigurationError(f"AUTOMATE_LLM_BUDGETS['period'] must be month, day or total, not {kind!r}.")


def _limit(config: dict[str, Any], value: Any, name: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigurationError(f"AUTOMATE_LLM_BUDGETS {name} must be a non-negative integer.")
    return value


def limits(workflow: str, run_id: int | None, now: datetime | None = None) -> list[Limit]:
    """The limits that apply to a call, in the fixed locking order global, workflow, run."""
    config = dict(settings.LLM_BUDGETS or {})
    period = _period(str(config.get("period", "month")), now or datetime.now(UTC))
    out = []
    glob = _limit(config, config.get("global"), "'global'")
    if glob is not None:
        out.append(Limit("global", "", period, glob))
    per_workflow = (config.get("workflows") or {}).get(workflow, config.get("workflow"))
    wf = _limit(config, per_workflow, f"for workflow {workflow!r}")
    if wf is not None and workflow:
        out.append(Limit("workflow", workflow, period, wf))
    run = _limit(config, config.get("run"), "'run'")
    if run is not None and run_id is not None:
        out.append(Limit("run", str(run_id), "", run))
    return out


async def reserve(
    *, provider: str, model: str, workflow: str, run_id: int | None, tokens: int
) -> Reservation:
    """Reserve ``tokens`` in every applicable ledger, or raise :class:`BudgetExceededError`."""
    applicable = limits(workflow, run_id)
    if not applicable:
        return Reservation(tokens)
    for limit in applicable:
        if limit.tokens is not None and tokens > limit.tokens:
            raise _exceeded(limit, tokens)
    pool = await db.get_pool()
    async with pool.connection() as conn, conn.transaction():
        ids = []
        for limit in applicable:
            cur = await conn.execute(
                queries.RESERVE,
                {"scope": limit.scope, "key": limit.key, "period": limit.period,
                 "tokens": tokens, "limit": limit.tokens},
            )  # fmt: skip
            row = await cur.fetchone()
            if row is None:
                raise _exceeded(limit, tokens)  # leaving the block rolls the other scopes back
            ids.append(int(row[0]))
        cur = await conn.execute(
            queries.INSERT_CALL,
            {"provider": provider, "model": model, "workflow": workflow, "run_id": run_id,
             "tokens": tokens, "ledger_ids": json.dumps(ids)},
        )  # fmt: skip
        row = await cur.fetchone()
    assert row is not None
    return Reservation(tokens, int(row[0]), ids)


def _exceeded(limit: Limit, tokens: int) -> BudgetExceededError:
    where = {"global": "the global", "workflow": f"workflow {limit.key!r}'s", "run": "this run's"}[
        limit.scope
    ]
    period = f" for {limit.period}" if limit.period else ""
    return BudgetExceededError(
        f"This LLM call needs up to {tokens} tokens, which would exceed {where} budget of "
        f"{limit.tokens} tokens{period}. Raise AUTOMATE_LLM_BUDGETS or lower max_tokens.",
        scope=limit.scope,
        limit=limit.tokens or 0,
    )


async def _close(
    reservation: Reservation, status: str, used_in: int | None, used_out: int | None, estimated: bool
) -> None:
    if reservation.call_id is None:
        return
    pool = await db.get_pool()
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            queries.CLOSE_CALL,
            {"id": reservation.call_id, "status": status, "input": used_in, "output": used_out,
             "estimated": estimated},
        )  # fmt: skip
        row = await cur.fetchone()
        if row is None:  # already closed
            return
        reserved = int(row[0])
        used = (used_in or 0) + (used_out or 0)
        if estimated and used_in is None and used_out is None:
            used = reserved  # nothing reported: charge what was reserved
        await conn.execute(
            queries.SETTLE_LEDGERS, {"reserved": reserved, "used": used, "ids": sorted(row[1])}
        )


async def settle(reservation: Reservation, *, input: int, output: int, estimated: bool = False) -> None:
    """Charge the reported usage and give back the reservation."""
    await _close(reservation, "settled", input, output, estimated)


async def release(reservation: Reservation) -> None:
    """Give back the reservation of a call that used no tokens (it failed before the model ran)."""
    await _close(reservation, "released", None, None, False)


async def release_stale(older_than: float = 3600.0) -> int:
    """Charge the reservations of calls that never settled (their worker died): the estimate is
    kept as used, since the provider may have run the call. Returns how many were closed."""
    pool = await db.get_pool()
    async with pool.connection() as conn:
        cur = await conn.execute(queries.STALE_CALLS, {"age": older_than})
        ids = [int(r[0]) for r in await cur.fetchall()]
    for call_id in ids:
        await _close(Reservation(0, call_id), "settled", None, None, True)
    return len(ids)


async def usage(scope: str, key: str = "", period: str | None = None) -> tuple[int, int]:
    """``(used, reserved)`` tokens of one ledger (for checks, the admin and tests)."""
    if period is None:
        period = "" if scope == "run" else _period(str((settings.LLM_BUDGETS or {}).get("period", "month")),
                                                   datetime.now(UTC))  # fmt: skip
    pool = await db.get_pool()
    async with pool.connection() as conn:
        cur = await conn.execute(queries.LEDGER, {"scope": scope, "key": key, "period": period})
        row = await cur.fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)
