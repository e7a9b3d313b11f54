"""What every flow construct shares: the protocol the interpreter calls, durations, load checks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from automate_core.exceptions import TemplateError, WorkflowError
from automate_core.execution import templating

if TYPE_CHECKING:
    from automate_core.execution.runner import Walk
    from automate_core.execution.waits import Wait
    from automate_core.rules.engine import StepSpec


class DefinitionProblem(WorkflowError):
    """A construct's settings in a workflow file are invalid (``definitions`` names the place)."""


class StepNormalizer(Protocol):
    def __call__(
        self, where: str, spec: Any, *, name: str | None = None, durable: bool = True
    ) -> dict[str, Any]: ...


def _unset(where: str, spec: Any, *, name: str | None = None, durable: bool = True) -> dict[str, Any]:
    raise AssertionError("LoadContext.step is set by the loader")


@dataclass
class LoadContext:
    """What a construct's ``normalize`` needs from the loader: its nested steps are normalised
    by ``step`` (which checks names, depth and kinds). Call targets and wait patterns are read
    from the normalised definition afterwards (``rules.flow``, ``rules.versions``)."""

    step: StepNormalizer = _unset
    depth: int = 0


class Construct(Protocol):
    #: the step's key in the file format (``sleep:``, ``for_each:`` ...)
    key: str
    #: the keys a step of this kind may have besides name/condition/continue_on_error
    extra_keys: frozenset[str]
    #: parks the run on a wait (allowed only where a run can stop: top level and switch cases)
    durable: bool
    #: the JSON Schema of the construct's value (``automate schema``); ``normalize`` checks its keys
    schema: ClassVar[dict[str, Any]]

    def normalize(self, where: str, step: dict[str, Any], load: LoadContext) -> dict[str, Any]:
        """The construct's settings, validated, as stored in the version (``params``)."""
        ...

    async def run(self, walk: Walk, step: StepSpec) -> dict[str, Any]:
        """Carry the step out; returns its entry in ``steps`` (``{"output": ..., "status": ...}``)."""
        ...


class Durable(Construct, Protocol):
    def outcome(self, step: StepSpec, wait: Wait) -> tuple[str, Any, str]:
        """(status, output, error) of the step once its wait is over (recorded when the run wakes)."""
        ...


#: The JSON Schema of a duration (``automate schema``), as ``parse_duration`` reads it.
DURATION: dict[str, Any] = {
    "type": ["number", "string"],
    "description": "seconds, or a duration such as 45s, 30m, 2h, 3d, 1h30m",
}

_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*d)?\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*"
                       r"(?:(\d+(?:\.\d+)?)\s*m)?\s*(?:(\d+(?:\.\d+)?)\s*s)?\s*$")  # fmt: skip


def parse_duration(where: str, value: Any, *, minimum: float = 0.0) -> float:
    """Seconds from ``90``, ``"45s"``, ``"30m"``, ``"2h"``, ``"3d"`` or ``"1h30m"``."""
    if isinstance(value, bool):
        raise DefinitionProblem(f"{where}: expected a duration such as 30s, 10m, 2h or 3d, got {value!r}.")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value)) if isinstance(value, str) and value.strip() else None
        if match is None or not any(match.groups()):
            raise DefinitionProblem(
                f"{where}: expected a duration such as 30s, 10m, 2h or 3d, got {value!r}."
            )
        d, h, m, s = (float(g) if g else 0.0 for g in match.groups())
        seconds = d * 86400 + h * 3600 + m * 60 + s
    if seconds < minimum:
        raise DefinitionProblem(f"{where}: the duration must be at least {minimum:g}s, got {value!r}.")
    return seconds


def check_keys(where: str, value: Any, allowed: set[str], required: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DefinitionProblem(f"{where}: expected a mapping, got {type(value).__name__}.")
    unknown = set(value) - allowed
    if unknown:
        raise DefinitionProblem(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}.")
    missing = required - set(value)
    if missing:
        raise DefinitionProblem(f"{where}: missing {sorted(missing)}.")
    return value


def check_template(where: str, value: Any, *, secrets: bool = False) -> Any:
    """Templates in ``value`` compile; a construct's settings never read secrets unless allowed
    (they are stored with the wait, or shown to a person)."""
    try:
        templating.validate(value)
        if not secrets and templating.collect_secret_names(value):
            raise TemplateError("this setting cannot read secrets (it is stored or shown in clear)")
    except TemplateError as exc:
        raise DefinitionProblem(f"{where}: {exc}") from exc
    return value


def check_int(where: str, value: Any, *, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise DefinitionProblem(f"{where}: expected an integer of at least {minimum}, got {value!r}.")
    if maximum is not None and value > maximum:
        raise DefinitionProblem(f"{where}: at most {maximum}, got {value}.")
    return value


def moment(text: Any) -> datetime | None:
    """A rendered ``until``: an ISO 8601 date-time (naive ones are UTC)."""
    from datetime import UTC

    if isinstance(text, datetime):
        return text if text.tzinfo else text.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
