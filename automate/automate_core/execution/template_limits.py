"""The sandbox's size guards: every way a short template can build a huge value is checked first.

The render deadline (``deadline``) stops Python code that runs too long, but not one call into C
that allocates gigabytes or multiplies huge integers for seconds (the whole worker would freeze,
and the deadline cannot fire inside C). So each such operation is refused *before* it runs, from
its operands' sizes, which cost a few comparisons:

- integers: ``*`` and ``**`` whose result would exceed ``MAX_INT_BITS`` (``(9 ** 1000) ** 1000``),
  ``int.to_bytes`` and ``int`` methods that allocate by an argument;
- strings and lists: ``*``, ``+``, ``~`` (concatenation), ``join`` (method and filter: the sizes
  of the parts, not their count), ``center``/``ljust``/``rjust``/``zfill``/``expandtabs``/
  ``replace``/``translate``/``indent``, ``batch`` and ``slice`` fills: at most
  ``AUTOMATE_TEMPLATE_MAX_OUTPUT`` characters (or items);
- formatting: every width and precision of ``%`` formatting (the operator and the ``format``
  filter, ``*`` widths taken from the arguments) and of ``str.format``/``format_map`` (nested
  ``{:>{w}}`` widths as they resolve);
- ``namespace`` attributes: a value assigned is checked, so doubling a string in a loop stops at
  the limit; ``lipsum`` is gone (it writes as many paragraphs as asked).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from string import Formatter
from typing import Any

from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedFormatter
from jinja2.utils import Namespace

#: The largest integer a template may compute (a 65,536-bit number has 19,729 digits: far more than
#: any amount or id, and small enough to multiply in microseconds).
MAX_INT_BITS = 65_536

_max_size: Callable[[], int] = lambda: 1024 * 1024  # noqa: E731 (set by templating at import)


def configure(max_size: Callable[[], int]) -> None:
    global _max_size
    _max_size = max_size


def refuse_size(size: int, what: str = "the result") -> None:
    limit = _max_size()
    if size > limit:
        raise SecurityError(
            f"{what} would be {size} characters or items long; templates may produce at most "
            f"{limit} (AUTOMATE_TEMPLATE_MAX_OUTPUT)"
        )


def _refuse_bits(bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise SecurityError(
            f"the integer would have about {bits} bits; templates may compute at most {MAX_INT_BITS}"
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def sized(value: Any) -> int:
    return len(value) if isinstance(value, (str, bytes, list, tuple)) else 0


def text_size(value: Any) -> int:
    """An upper bound of ``len(str(value))`` that is cheap to compute for the usual values."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() // 3 + 2
    if isinstance(value, (float, bool)) or value is None:
        return 32
    return len(str(value))


# --- operators --------------------------------------------------------------------------------


def mul(left: Any, right: Any) -> Any:
    if _is_int(left) and _is_int(right):
        _refuse_bits(left.bit_length() + right.bit_length())
    if _is_int(left) and isinstance(right, (str, bytes, list, tuple)):
        left, right = right, left
    if isinstance(left, (str, bytes, list, tuple)) and _is_int(right):
        refuse_size(len(left) * right)
    return left * right


def power(left: Any, right: Any) -> Any:
    if _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
        _refuse_bits(left.bit_length() * right)
    elif isinstance(right, (int, float)) and abs(right) > 1_000_000:
        raise SecurityError("exponents above 1000000 are refused")
    return left**right


def add(left: Any, right: Any) -> Any:
    if isinstance(left, (str, bytes, list, tuple)) and isinstance(right, (str, bytes, list, tuple)):
        refuse_size(len(left) + len(right))
    return left + right


def mod(left: Any, right: Any) -> Any:
    if isinstance(left, str):
        check_percent(left, right)
    return left % right


def concat(parts: Iterable[Any]) -> str:
    """``a ~ b ~ c``: the parts' sizes are checked before they are joined."""
    strings = [p if isinstance(p, str) else str(p) for p in parts]
    refuse_size(sum(map(len, strings)))
    return "".join(strings)


# --- formatting -------------------------------------------------------------------------------

_PERCENT = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?[-+ #0]*(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d+))?[hlL]?(?P<kind>.)",
    re.DOTALL,
)
_SPEC = re.compile(
    r"^(?:.?[<>=^])?[-+ ]?z?#?0?(?P<width>\d+)?[,_]?(?:\.(?P<precision>\d+))?[a-zA-Z%]?$", re.DOTALL
)


def check_percent(fmt: str, args: Any) -> None:
    """Refuse a ``%`` format whose widths or precisions (literal or ``*``) are over the limit."""
    if "%" not in fmt:
        return
    by_key = isinstance(args, Mapping)
    values = list(args) if isinstance(args, tuple) else [args]
    index, total = 0, len(fmt)

    def take() -> Any:
        nonlocal index
        index += 1
        return values[index - 1] if index <= len(values) else None

    for found in _PERCENT.finditer(fmt):
        if found.group("kind") == "%":
            continue
        for part in ("width", "precision"):
            spec = found.group(part)
            number = take() if spec == "*" else int(spec or 0)
            if _is_int(number):
                total += abs(number)
        value = args.get(found.group("key")) if by_key and found.group("key") is not None else take()
        total += text_size(value)
    refuse_size(total, "the formatted text")


def check_spec(spec: str) -> None:
    """Refuse a ``format()`` spec (``>20``, ``.3f``) with a width or precision over the limit."""
    found = _SPEC.match(spec)
    if found is None:
        return  # not a standard spec: ``format`` itself raises
    width, precision = found.group("width"), found.group("precision")
    refuse_size(max(int(width or 0), int(precision or 0)), "the formatted field")


class GuardedFormatter(SandboxedFormatter):
    """The sandbox's ``str.format`` formatter, checking each field's spec as nested fields resolve."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        check_spec(format_spec)
        return super().format_field(value, format_spec)

    def vformat(self, format_string: str, args: Any, kwargs: Any) -> str:
        refuse_size(
            len(format_string) + sum(text_size(a) for a in args) + sum(map(text_size, kwargs.values()))
        )
        return Formatter.vformat(self, format_string, args, kwargs)


def wrap_format(env: Any, method: Any) -> Callable[..., str]:
    """A sandboxed ``str.format``/``format_map`` bound to the string ``method`` belongs to."""
    owner: str = method.__self__
    formatter = GuardedFormatter(env)
    is_map = method.__name__ == "format_map"

    def wrapper(*args: Any, **kwargs: Any) -> str:
        if is_map:
            if kwargs or len(args) != 1:
                raise TypeError("format_map() takes exactly one mapping argument")
            return str(formatter.vformat(owner, (), args[0]))
        return str(formatter.vformat(owner, args, kwargs))

    return wrapper


# --- methods and filters ----------------------------------------------------------------------

_GROWING_STR_METHODS = frozenset(
    {"center", "ljust", "rjust", "zfill", "expandtabs", "replace", "join", "translate", "encode"}
)


def check_method(owner: Any, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Before ``owner.name(*args, **kwargs)`` runs: refuse it when its result would be too big."""
    if _is_int(owner) and name == "to_bytes":
        length = args[0] if args else kwargs.get("length", 1)
        if _is_int(length):
            refuse_size(length)
        return
    if not isinstance(owner, str) or name not in _GROWING_STR_METHODS:
        return
    numbers = [a for a in (*args, *kwargs.values()) if _is_int(a)]
    if name in ("center", "ljust", "rjust", "zfill"):
        refuse_size(max(numbers, default=0))
    elif name == "expandtabs":
        refuse_size(len(owner) * max(1, max(numbers, default=8)))
    elif name == "replace" and len(args) >= 2:
        refuse_size(len(owner) * max(1, len(str(args[1]))) + len(str(args[1])))
    elif name == "join" and args:
        check_join(args[0], owner)
    elif name == "translate" and args and isinstance(args[0], Mapping):
        longest = max((sized(v) for v in args[0].values()), default=1)
        refuse_size(len(owner) * max(1, longest))
    elif name == "encode":
        refuse_size(len(owner) * 4)


def check_join(items: Any, separator: Any = "") -> None:
    if isinstance(items, (list, tuple)):
        parts = sum(text_size(i) for i in items)
        refuse_size(parts + text_size(separator) * max(0, len(items) - 1), "the joined text")


def _first_value(args: tuple[Any, ...]) -> int:
    """The index of a filter's value (after the eval context some filters are passed first)."""
    return next((i for i, a in enumerate(args) if not hasattr(a, "autoescape")), 0)


def guard_filters(filters: dict[str, Callable[..., Any]]) -> None:
    """Wrap the filters that can grow their input past the limit."""

    def values(args: tuple[Any, ...]) -> list[Any]:
        return [a for a in args if not hasattr(a, "autoescape")]  # skip the eval context

    def check(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        vals = values(args)
        if name == "format" and vals:
            rest = vals[1:]
            check_percent(str(vals[0]), kwargs if kwargs else tuple(rest))
        elif name in ("center", "indent"):
            numbers = [a for a in (*vals[1:], *kwargs.values()) if _is_int(a)]
            width = max(numbers, default=0)
            lines = str(vals[0]).count("\n") + 1 if vals and name == "indent" else 1
            refuse_size(sized(str(vals[0]) if vals else "") + width * lines)
        elif name == "replace" and len(vals) >= 3:
            refuse_size(sized(str(vals[0])) * max(1, len(str(vals[2]))))
        elif name == "join" and vals:  # the items were made a list by ``guarded``
            check_join(vals[0], vals[1] if len(vals) > 1 else kwargs.get("d", ""))
        elif name in ("batch", "slice") and len(vals) >= 2 and _is_int(vals[1]):
            refuse_size(vals[1], f"the {name} count")
        elif name in ("wordwrap", "truncate") and len(vals) >= 2 and _is_int(vals[1]):
            refuse_size(sized(str(vals[0])) + vals[1])

    def wrap(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if name == "join":  # a generator (``map``, ``select``) is read once: keep what was read
                args = tuple(
                    list(a) if not hasattr(a, "autoescape") and not isinstance(a, (str, list, tuple, dict))
                    and hasattr(a, "__iter__") and i == _first_value(args) else a
                    for i, a in enumerate(args)
                )  # fmt: skip
            check(name, args, kwargs)
            return original(*args, **kwargs)

        if hasattr(original, "jinja_pass_arg"):  # pass_eval_context and friends
            guarded.jinja_pass_arg = original.jinja_pass_arg  # type: ignore[attr-defined]
        return guarded

    for name in ("center", "indent", "format", "replace", "join", "batch", "slice", "wordwrap", "truncate"):
        filters[name] = wrap(name, filters[name])


class GuardedNamespace(Namespace):
    """``namespace()``, whose attributes may not hold values over the size limit."""

    def __setitem__(self, name: str, value: Any) -> None:
        if isinstance(value, (str, bytes, list, tuple)):
            refuse_size(len(value), f"namespace attribute {name!r}")
        elif _is_int(value):
            _refuse_bits(value.bit_length())
        super().__setitem__(name, value)
