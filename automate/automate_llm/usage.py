"""Token usage reported by an LLM provider, carried beside ``chat``'s ``str`` answer.

``chat`` returns a string (the documented contract), so usage travels out of band: the platform
opens a :func:`recording` scope around each call and the provider calls
``self.record_usage(input=..., output=..., model=...)`` with what the server reported. The scope
is a context variable, so it follows the call into the plugin thread pool.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(slots=True)
class Usage:
    input: int | None = None
    output: int | None = None
    model: str = ""

    @property
    def reported(self) -> bool:
        return self.input is not None or self.output is not None


_current: contextvars.ContextVar[Usage | None] = contextvars.ContextVar("automate_llm_usage", default=None)


@contextmanager
def recording() -> Iterator[Usage]:
    """Collect the usage reported by provider calls made inside the ``with`` block."""
    usage = Usage()
    token = _current.set(usage)
    try:
        yield usage
    finally:
        _current.reset(token)


def record(*, input: int | None = None, output: int | None = None, model: str | None = None) -> None:
    usage = _current.get()
    if usage is None:
        return
    if input is not None:
        usage.input = (usage.input or 0) + int(input)
    if output is not None:
        usage.output = (usage.output or 0) + int(output)
    if model:
        usage.model = model
