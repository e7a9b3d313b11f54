"""Rendering step parameters with one sandboxed Jinja2 environment.

Templates are code written by the workflow's author; the data they see (the event, earlier step
outputs, secrets) is never rendered as a template itself. The environment is Jinja2's
``ImmutableSandboxedEnvironment`` with ``StrictUndefined`` (an unknown name is an error, not an
empty string) and no autoescaping (the output is JSON, not HTML). Compiled templates are cached.

A string that is exactly one expression (``"{{ event.payload.items }}"``) keeps the expression's
type (list, number, ...); any other string renders to a string. Conditions (``condition:`` of a
trigger or a step) are bare expressions (``event.payload.amount > 100``).

``secret("NAME")`` in a template reads a secret through the secrets backends. The names must be
string literals: they are collected from the template and resolved before rendering.

Limits: a render that takes longer than ``AUTOMATE_TEMPLATE_TIMEOUT_SECONDS`` is stopped
(see ``deadline``), and a rendered string longer than ``AUTOMATE_TEMPLATE_MAX_OUTPUT`` characters
is refused; so is every operation that would build one, or compute a huge integer, before it
runs (see ``template_limits``): the deadline cannot interrupt a single call into C.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver
from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from automate_core.conf import settings
from automate_core.exceptions import TemplateError
from automate_core.execution import deadline, template_limits

_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{((?:(?!\{\{|\}\}|\{%|\{#).)*)\}\}\s*$", re.DOTALL)
_limits: tuple[float, int] | None = None


def limits() -> tuple[float, int]:
    """(render timeout in seconds, largest output in characters), read once from the settings."""
    global _limits
    if _limits is None:
        _limits = (float(settings.TEMPLATE_TIMEOUT_SECONDS), int(settings.TEMPLATE_MAX_OUTPUT))
    return _limits


@receiver(setting_changed)
def _settings_changed(*, setting: str, **_: Any) -> None:
    global _limits
    if setting.startswith("AUTOMATE_TEMPLATE_"):
        _limits = None


def _max_output() -> int:
    return limits()[1]


_refuse_size = template_limits.refuse_size
template_limits.configure(_max_output)


class _CodeGenerator(CodeGenerator):
    """Jinja2's code generator, with ``a ~ b`` (concatenation) checked for size before it joins."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox, with JSON-friendly lookups (``payload.items`` is the key, not ``dict.items``)
    and size guards (``template_limits``) on every operation that can build a huge value from a
    small template."""

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.binop_table = {
            **self.binop_table,
            "*": template_limits.mul,
            "**": template_limits.power,
            "%": template_limits.mod,
            "+": template_limits.add,
        }
        template_limits.guard_filters(self.filters)
        self.globals["namespace"] = template_limits.GuardedNamespace
        self.globals.pop("lipsum", None)  # writes as many paragraphs as asked

    @staticmethod
    def concat(parts: Any) -> str:
        return template_limits.concat(parts)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None or isinstance(value.__self__, Markup):
            return wrapped
        return template_limits.wrap_format(self, value)  # widths checked as nested fields resolve

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        return self.binop_table[operator](left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(__obj, "__self__", None)
        if owner is not None:
            template_limits.check_method(owner, getattr(__obj, "__name__", ""), args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)


env = _Environment(undefined=StrictUndefined, autoescape=False)


def _syntax(exc: TemplateSyntaxError) -> TemplateError:
    return TemplateError(f"Template syntax error on line {exc.lineno}: {exc.message}")


def _flat(compiled: Any) -> Any:
    """A compiled template or expression whose globals are a plain dict: Jinja2 merges them into
    every render's context, and merging its ChainMap of template and environment globals cost
    more than the render of a short template. The environment's globals never change after start."""
    template = getattr(compiled, "_template", compiled)
    template.globals = dict(template.globals)
    return compiled


@lru_cache(maxsize=4096)
def _compile(source: str) -> tuple[str, Any]:
    """("expr", compiled expression) or ("template", compiled template)."""
    try:
        single = _SINGLE_EXPRESSION.match(source)
        if single:
            return "expr", _flat(env.compile_expression(single.group(1), undefined_to_none=False))
        return "template", _flat(env.from_string(source))
    except TemplateSyntaxError as exc:
        raise _syntax(exc) from exc
    except (RecursionError, SyntaxError) as exc:  # deep nesting: the parser recursed, or Python refused
        raise TemplateError("Template refused: it nests too deeply.") from exc


@lru_cache(maxsize=1024)
def _compile_condition(source: str) -> Any:
    single = _SINGLE_EXPRESSION.match(source)
    if single:  # "{{ x > 1 }}" is accepted as "x > 1"
        source = single.group(1)
    try:
        return _flat(env.compile_expression(source, undefined_to_none=False))
    except TemplateSyntaxError as exc:
        raise _syntax(exc) from exc
    except (RecursionError, SyntaxError) as exc:  # deep nesting: the parser recursed, or Python refused
        raise TemplateError("Template refused: it nests too deeply.") from exc


def secret_names(source: str) -> set[str]:
    """Literal names passed to ``secret(...)`` in a template string."""
    if "secret" not in source:
        return set()
    try:
        ast = env.parse(source)
    except TemplateSyntaxError as exc:
        raise _syntax(exc) from exc
    except (RecursionError, SyntaxError) as exc:  # deep nesting: the parser recursed, or Python refused
        raise TemplateError("Template refused: it nests too deeply.") from exc
    names = set()
    for call in ast.find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.node.name == "secret":
            if len(call.args) != 1 or not isinstance(call.args[0], nodes.Const):
                raise TemplateError('secret() takes one string literal, e.g. secret("SLACK_TOKEN").')
            names.add(str(call.args[0].value))
    return names


def collect_secret_names(value: Any) -> set[str]:
    if isinstance(value, str):
        return secret_names(value)
    if isinstance(value, Mapping):
        return set().union(*(collect_secret_names(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(collect_secret_names(v) for v in value)) if value else set()
    return set()


def _render_template(compiled: Any, context: Mapping[str, Any]) -> str:
    limit, size, parts = _max_output(), 0, []
    for chunk in compiled.root_render_func(compiled.new_context(context)):
        size += len(chunk)
        if size > limit:
            _refuse_size(size)
        parts.append(chunk)
    return "".join(parts)


def _evaluate(kind: str, compiled: Any, context: Mapping[str, Any]) -> Any:
    if kind == "template":
        return _render_template(compiled, context)
    result = compiled(**context)
    if isinstance(result, Undefined):
        result._fail_with_undefined_error()
    if isinstance(result, str):
        _refuse_size(len(result))
    return result


class _OverBudget(Exception):
    """The render outgrew its time on the event loop: go on in a thread (see :func:`arender`)."""


def _guarded(func: Callable[..., Any], *args: Any, budget: float | None = None) -> Any:
    """Run ``func`` under the render time limit, mapping every failure to :class:`TemplateError`.
    With ``budget`` (shorter than the limit) running past it raises :class:`_OverBudget`."""
    timeout = limits()[0]
    try:
        return deadline.run_limited(min(budget, timeout) if budget else timeout, func, *args)
    except deadline.Overtime:
        if budget is not None and budget < timeout:
            raise _OverBudget from None
        raise TemplateError(
            f"The template took longer than {timeout:g}s to render (AUTOMATE_TEMPLATE_TIMEOUT_SECONDS)."
        ) from None
    except UndefinedError as exc:
        raise TemplateError(f"Undefined name in template: {exc.message}") from exc
    except SecurityError as exc:
        raise TemplateError(f"Template refused by the sandbox: {exc}") from exc
    except TemplateError:
        raise
    except RecursionError as exc:
        raise TemplateError("Template refused: it nests too deeply.") from exc
    except Exception as exc:
        raise TemplateError(f"Template failed: {type(exc).__name__}: {exc}") from exc


def render_string(source: str, context: Mapping[str, Any]) -> Any:
    if "{" not in source:
        return source
    kind, compiled = _compile(source)
    return _guarded(_evaluate, kind, compiled, context)


def _render_value(value: Any, context: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        if "{" not in value:
            return value
        kind, compiled = _compile(value)
        return _evaluate(kind, compiled, context)
    if isinstance(value, Mapping):
        return {k: _render_value(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_value(v, context) for v in value]
    return value


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every string in a JSON-like structure (keys are not templates), under the limits."""
    if isinstance(value, str) and "{" not in value:
        return value
    return _guarded(_render_value, value, context)


#: Seconds a render may hold the event loop before it moves to a thread (``arender``).
LOOP_BUDGET = 0.05


async def arender(value: Any, context: Mapping[str, Any]) -> Any:
    """:func:`render` for async callers, which never holds the event loop for long: a render runs
    inline (the usual microseconds) until ``LOOP_BUDGET``; one that takes longer is stopped and
    rendered again in a thread, under the full ``AUTOMATE_TEMPLATE_TIMEOUT_SECONDS``, while the
    loop serves other runs (templates are pure: rendering twice is rendering once)."""
    if isinstance(value, str) and "{" not in value:
        return value
    try:
        return _guarded(_render_value, value, context, budget=LOOP_BUDGET)
    except _OverBudget:
        return await asyncio.to_thread(_guarded, _render_value, value, context)


def evaluate(condition: str, context: Mapping[str, Any], *, undefined_is_false: bool = False) -> bool:
    """The truth of a condition expression (``event.payload.amount > 100``).

    With ``undefined_is_false`` a name or key that does not exist makes the condition false
    instead of an error (trigger conditions: events of one type often differ in their keys).
    """
    compiled = _compile_condition(condition)
    try:
        return bool(_guarded(_evaluate, "expr", compiled, context))
    except TemplateError as exc:
        if undefined_is_false and isinstance(exc.__cause__, UndefinedError):
            return False
        raise


async def aevaluate(condition: str, context: Mapping[str, Any], *, undefined_is_false: bool = False) -> bool:
    """:func:`evaluate` for async callers: like :func:`arender`, a slow condition moves to a thread."""
    compiled = _compile_condition(condition)
    try:
        try:
            result = _guarded(_evaluate, "expr", compiled, context, budget=LOOP_BUDGET)
        except _OverBudget:
            result = await asyncio.to_thread(_guarded, _evaluate, "expr", compiled, context)
        return bool(result)
    except TemplateError as exc:
        if undefined_is_false and isinstance(exc.__cause__, UndefinedError):
            return False
        raise


def secret_function(resolved: Mapping[str, str]) -> Callable[[str], str]:
    def secret(name: str) -> str:
        try:
            return resolved[name]
        except KeyError:
            raise TemplateError(f"secret({name!r}) was not resolved before rendering.") from None

    return secret


def validate(value: Any) -> None:
    """Compile every template in ``value``; raises :class:`TemplateError` for the first bad one."""
    if isinstance(value, str):
        if "{" in value:
            _compile(value)
        collect_secret_names(value)
    elif isinstance(value, Mapping):
        for v in value.values():
            validate(v)
    elif isinstance(value, list):
        for v in value:
            validate(v)


def validate_condition(source: str) -> None:
    """Compile a condition expression; secrets are not allowed in conditions."""
    _compile_condition(source)
    if secret_names("{{ " + source + " }}"):
        raise TemplateError("Conditions cannot read secrets.")
