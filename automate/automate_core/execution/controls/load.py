"""Validation of the admission keys of a workflow file item, with errors that name the place.

``normalize(where, item)`` returns the normalised keys (only those the item sets) for the
version's definition; ``SCHEMA`` gives their JSON Schema to ``automate schema``.
"""

from __future__ import annotations

import re
from typing import Any

from automate_core.exceptions import AutomateError, TemplateError
from automate_core.execution import templating
from automate_core.execution.constructs.base import DURATION, DefinitionProblem, parse_duration
from automate_core.rules.admission import ADMISSION_KEYS

THROTTLE_KEYS = {"limit", "period", "key", "burst"}
RATE_LIMIT_KEYS = {"limit", "period", "key"}
SINGLETON_KEYS = {"key", "mode"}
FAIRNESS_KEYS = {"key"}
SINGLETON_MODES = ("queue", "skip", "cancel")
PRIORITY_RANGE = (-100, 100)  # Django's task priorities; the outbox column is a smallint
QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
KEY = {
    "type": "string",
    "description": "a template rendered from the event, e.g. {{ event.payload.customer }}",
}

SCHEMA: dict[str, Any] = {
    "throttle": {
        "type": "object",
        "properties": {"limit": {"type": "integer", "minimum": 1}, "period": DURATION, "key": KEY,
                       "burst": {"type": "integer", "minimum": 1}},
        "required": ["limit", "period"],
        "additionalProperties": False,
    },
    "rate_limit": {
        "type": "object",
        "properties": {"limit": {"type": "integer", "minimum": 1}, "period": DURATION, "key": KEY},
        "required": ["limit", "period"],
        "additionalProperties": False,
    },
    "singleton": {
        "type": "object",
        "properties": {"key": KEY, "mode": {"enum": list(SINGLETON_MODES)}},
        "additionalProperties": False,
    },
    "queue": {"type": "string", "pattern": QUEUE_NAME.pattern},
    "priority": {"type": "integer", "minimum": PRIORITY_RANGE[0], "maximum": PRIORITY_RANGE[1]},
    "fairness": {
        "type": "object",
        "properties": {"key": KEY},
        "required": ["key"],
        "additionalProperties": False,
    },
}  # fmt: skip


class AdmissionError(AutomateError):
    """An admission key of a workflow is invalid (the message names the place)."""


def _mapping(where: str, value: Any, allowed: set[str], required: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise AdmissionError(f"{where}: expected a mapping, got {type(value).__name__}.")
    unknown = set(value) - allowed
    if unknown:
        raise AdmissionError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}.")
    missing = required - set(value)
    if missing:
        raise AdmissionError(f"{where}: missing {sorted(missing)}.")
    return value


def _integer(where: str, value: Any, low: int, high: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise AdmissionError(f"{where}: expected an integer {bound}, got {value!r}.")
    return value


def _period(where: str, value: Any) -> float:
    try:
        return parse_duration(where, value, minimum=0.001)
    except DefinitionProblem as exc:
        raise AdmissionError(str(exc)) from exc


def key_template(where: str, value: Any) -> str:
    """A key template that compiles and reads no secret (keys are stored in clear)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise AdmissionError(
            f"{where}: a key is a template in a string, e.g. '{{{{ event.payload.customer }}}}'."
        )
    try:
        templating.validate(value)
        if templating.collect_secret_names(value):
            raise TemplateError("A key cannot read secrets (it is stored in clear).")
    except TemplateError as exc:
        raise AdmissionError(f"{where}: {exc}") from exc
    return value


def normalize(where: str, item: dict[str, Any]) -> dict[str, Any]:
    """The admission keys ``item`` sets, validated and normalised (periods in seconds)."""
    out: dict[str, Any] = {}
    if (t := item.get("throttle")) is not None:
        _mapping(f"{where}.throttle", t, THROTTLE_KEYS, {"limit", "period"})
        out["throttle"] = {
            "limit": _integer(f"{where}.throttle.limit", t["limit"], 1),
            "period": _period(f"{where}.throttle.period", t["period"]),
            "key": key_template(f"{where}.throttle.key", t.get("key")),
            "burst": _integer(f"{where}.throttle.burst", t.get("burst", 1), 1),
        }
    if (r := item.get("rate_limit")) is not None:
        _mapping(f"{where}.rate_limit", r, RATE_LIMIT_KEYS, {"limit", "period"})
        out["rate_limit"] = {
            "limit": _integer(f"{where}.rate_limit.limit", r["limit"], 1),
            "period": _period(f"{where}.rate_limit.period", r["period"]),
            "key": key_template(f"{where}.rate_limit.key", r.get("key")),
        }
    if (s := item.get("singleton")) is not None:
        _mapping(f"{where}.singleton", s, SINGLETON_KEYS, set())
        mode = s.get("mode", "queue")
        if mode not in SINGLETON_MODES:
            raise AdmissionError(
                f"{where}.singleton.mode: {mode!r} is not a mode; use one of: {', '.join(SINGLETON_MODES)}."
            )
        out["singleton"] = {"key": key_template(f"{where}.singleton.key", s.get("key")), "mode": mode}
    if (q := item.get("queue")) is not None:
        if not isinstance(q, str) or not QUEUE_NAME.match(q):
            raise AdmissionError(
                f"{where}.queue: {q!r} is not a queue name (1 to 100 letters, digits, '_', '.', ':' or '-')."
            )
        out["queue"] = q
    if (p := item.get("priority")) is not None:
        out["priority"] = _integer(f"{where}.priority", p, *PRIORITY_RANGE)
    if (f := item.get("fairness")) is not None:
        _mapping(f"{where}.fairness", f, FAIRNESS_KEYS, {"key"})
        key = key_template(f"{where}.fairness.key", f["key"])
        if not key.strip():
            raise AdmissionError(f"{where}.fairness.key: a fairness key cannot be empty.")
        out["fairness"] = {"key": key}
    grouped = [k for k in ("debounce", "batch") if item.get(k)]
    admits = [k for k in ("rate_limit", "throttle", "queue", "priority", "fairness") if k in out]
    if grouped and admits:  # a group's run is one queued run: these would count each event instead
        raise AdmissionError(
            f"{where}: {grouped[0]} cannot be combined with {', '.join(admits)} yet "
            f"(singleton and concurrency apply to a group's run)."
        )
    assert set(out) <= set(ADMISSION_KEYS)
    return out
