"""Values of declared types from text, and checks of values against declared types.

The platform's settings are declared with type hints (``int``, ``float | None``, ``list[str]``,
``dict[str, Any]``...) in :class:`automate_core.conf.Defaults`; this module turns an environment
variable's text into a value of such a type (:func:`parse`) and says what is wrong with a value
that does not fit one (:func:`check_value`), in words a user can act on (:func:`describe`).
Numbers are at least 0 and finite; booleans are ``1/true/yes/on`` or ``0/false/no/off``, nothing
else; an optional value is ``null``; lists are comma-separated or JSON; mappings are JSON.
"""

from __future__ import annotations

import json
import math
import types
from typing import Any, Union, get_args, get_origin

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


def parse_bool(raw: str) -> bool:
    word = raw.strip().lower()
    if word in TRUE:
        return True
    if word in FALSE:
        return False
    raise ValueError("expected 1/true/yes/on or 0/false/no/off")


def union_members(kind: Any) -> tuple[Any, ...]:
    """The types of a union (``float | None``), or ``(kind,)``."""
    if get_origin(kind) in (Union, types.UnionType):
        return get_args(kind)
    return (kind,)


def describe(kind: Any) -> str:
    """A declared type in words, for messages."""
    names = []
    for member in union_members(kind):
        origin = get_origin(member) or member
        if member is type(None):
            names.append("null")
        elif member is bool:
            names.append("a boolean (1/true/yes/on or 0/false/no/off)")
        elif member is int:
            names.append("a whole number")
        elif member is float:
            names.append("a number")
        elif member is str:
            names.append("a string")
        elif origin is list:
            names.append("a list (comma-separated, or a JSON list)")
        elif origin is dict:
            names.append("a JSON object")
        else:
            names.append(str(member))
    return " or ".join(names)


def check_value(value: Any, kind: Any) -> str | None:
    """``None`` when ``value`` fits the declared type ``kind``; else what is wrong with it."""
    members = union_members(kind)
    if len(members) > 1:
        problems = [check_value(value, member) for member in members]
        return None if None in problems else f"expected {describe(kind)}, got {value!r}"
    origin, args = get_origin(kind) or kind, get_args(kind)
    if kind is Any:
        return None
    if kind is type(None):
        return None if value is None else f"expected null, got {value!r}"
    if kind is bool:
        return None if isinstance(value, bool) else f"expected a boolean, got {value!r}"
    if kind in (int, float):
        return _check_number(value, kind)
    if kind is str:
        return None if isinstance(value, str) else f"expected a string, got {value!r}"
    return _check_container(value, origin, args)


def _check_number(value: Any, kind: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        return f"expected {describe(kind)}, got {value!r}"
    if not math.isfinite(value) or value < 0:
        return f"expected {describe(kind)} of at least 0, got {value!r}"
    return None


def _check_container(value: Any, origin: Any, args: tuple[Any, ...]) -> str | None:
    if origin is list:
        if not isinstance(value, (list, tuple)):
            return f"expected a list, got {value!r}"
        for i, item in enumerate(value):
            problem = check_value(item, args[0]) if args else None
            if problem:
                return f"item {i}: {problem}"
        return None
    if origin is dict:
        if not isinstance(value, dict):
            return f"expected a mapping, got {value!r}"
        for key, item in value.items():
            problem = (check_value(key, args[0]) or check_value(item, args[1])) if args else None
            if problem:
                return f"key {key!r}: {problem}"
        return None
    return None


def parse(name: str, raw: str, kind: Any) -> Any:
    """An environment variable's text as a value of the declared type ``kind`` (or ValueError)."""
    members = union_members(kind)
    if len(members) > 1:
        if type(None) in members and raw.strip() == "null":
            return None
        first: ValueError | None = None
        for member in sorted((m for m in members if m is not type(None)), key=_text_order(raw)):
            try:
                return parse(name, raw, member)
            except ValueError as exc:
                first = first or exc
        if raw.lstrip().startswith(("{", "[")) and first is not None:
            raise first  # JSON of the right shape with a wrong part: say which part
        raise ValueError(f"expected {describe(kind)}")
    origin = get_origin(kind) or kind
    if kind is bool:
        return parse_bool(raw)
    if kind is int:
        value: Any = int(raw.strip())
    elif kind is float:
        value = float(raw.strip())
    elif origin is dict:
        value = json.loads(raw)
    elif origin is list:
        if raw.lstrip().startswith("{"):
            raise ValueError("expected a list, got a JSON object")
        if raw.lstrip().startswith("["):
            value = json.loads(raw)
        else:
            value = [item.strip() for item in raw.split(",") if item.strip()]
    else:
        value = raw
    problem = check_value(value, kind)
    if problem:
        raise ValueError(problem)
    return value


def _text_order(raw: str) -> Any:
    """Try the member a text looks like first (a JSON object, then a list), so errors are apt."""
    text = raw.lstrip()

    def order(member: Any) -> int:
        origin = get_origin(member) or member
        if origin is dict:
            return 0 if text.startswith("{") else 2
        return 1

    return order


def unquoted(problem: str) -> str:
    """A problem's text without the value it quotes (``..., got 'sk-...'``; ``int()``'s literal)."""
    if problem.startswith(("invalid literal", "could not convert")):
        return "not a number"
    return problem.split(", got ")[0]
