"""The ``Idempotency-Key`` and attempt number that outgoing calls carry, so a receiver can drop repeats.

Side effects are at least once: a step that timed out, a worker that died after the call and
before its record, a job retried or resumed, all call again. :func:`key` is the same for every
retry and resume of one event, workflow, step and item (the fan-out index or key, when the step
runs per item), and differs otherwise; :func:`headers` sends it as ``Idempotency-Key`` with the
attempt number as ``X-Automate-Attempt``. A receiver stores the keys it has acted on (for at least
as long as the platform may retry: the workflow's retry window, or the retention of events for a
manual replay) and answers a repeat with its first answer instead of acting again.

A step overrides the key with the ``idempotency_key`` parameter (a template, e.g. one the
receiver already understands), or turns both headers off with ``idempotency_key: false``; a header
of the same name in the step's ``headers`` wins over both.
"""

from __future__ import annotations

import hashlib
from typing import Any

from automate_connectors.adapters.base import ConnectorError

KEY_HEADER = "Idempotency-Key"
ATTEMPT_HEADER = "X-Automate-Attempt"


def key(context: dict[str, Any]) -> str:
    """The stable key of one event, workflow, step and item (see the module docstring)."""
    parts = [str(context.get(name, "")) for name in ("event_id", "workflow", "step")]
    item = context.get("item")
    if item is not None:
        parts.append(f"item={item}")
    return "auto_" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def headers(context: dict[str, Any], override: Any = None, what: str = "http") -> dict[str, str]:
    """The two headers for one call; ``override`` is the step's ``idempotency_key`` parameter."""
    if override is False:
        return {}
    if override is None or override is True:
        value = key(context)
    elif isinstance(override, (str, int)) and not isinstance(override, bool) and str(override).strip():
        value = str(override).strip()
    else:
        raise ConnectorError(
            f"{what}: idempotency_key must be a non-empty string, or false to send none.", retryable=False
        )
    return {KEY_HEADER: value, ATTEMPT_HEADER: str(int(context.get("attempt") or 1))}


def merged(defaults: dict[str, str], supplied: dict[str, Any] | None) -> dict[str, str]:
    """``supplied`` headers over ``defaults``, names compared without case."""
    out = {k: v for k, v in defaults.items() if k.lower() not in {str(n).lower() for n in supplied or {}}}
    out.update({str(k): str(v) for k, v in (supplied or {}).items()})
    return out
