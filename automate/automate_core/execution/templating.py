"""Rendering step parameters with one sandboxed Jinja2 environment.

Templates are code written by the workflow's author; the data they see (the event, earlier step
outputs, secrets) is never rendered as a template itself. The environment is Jinja2's
``ImmutableSandboxedEnvironment`` with ``StrictUndefined`` (an unknown name is an error, not an
empty string) and no autoescaping (the output is JSON, not HTML). Compiled templates are cached.

A string that is exactly one expression (``"{{ event.payload.items }}"``) keeps the expression's
type (list, number, ...); any other string renders to a string.

``secret("NAME")`` in a template reads a secret through the secrets backends. The names must be
string literals: they are collected from the template and resolved before rendering.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from automate_core.exceptions import TemplateError

_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{((?:(?!\{\{|\}\}|\{%|\{#).)*)\}\}\s*$", re.DOTALL)


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox, with JSON-friendly lookups: ``payload.items`` is the key, not ``dict.items``."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


env = _Environment(undefined=StrictUndefined, autoescape=False)


@lru_cache(maxsize=4096)
def _compile(source: str) -> tuple[str, Any]:
    """("expr", compiled expression) or ("template", compiled template)."""
    try:
        single = _SINGLE_EXPRESSION.match(source)
        if single:
            return "expr", env.compile_expression(single.group(1), undefined_to_none=False)
        return "template", env.from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"Template syntax error on line {exc.lineno}: {exc.message}") from exc


def secret_names(source: str) -> set[str]:
    """Literal names passed to ``secret(...)`` in a template string."""
    if "secret" not in source:
        return set()
    try:
        ast = env.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"Template syntax error on line {exc.lineno}: {exc.message}") from exc
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


def render_string(source: str, context: Mapping[str, Any]) -> Any:
    if "{" not in source:
        return source
    kind, compiled = _compile(source)
    try:
        if kind == "expr":
            result = compiled(**context)
            if isinstance(result, Undefined):
                result._fail_with_undefined_error()
            return result
        return compiled.render(context)
    except UndefinedError as exc:
        raise TemplateError(f"Undefined name in template: {exc.message}") from exc
    except SecurityError as exc:
        raise TemplateError(f"Template refused by the sandbox: {exc}") from exc
    except TemplateError:
        raise
    except Exception as exc:
        raise TemplateError(f"Template failed: {type(exc).__name__}: {exc}") from exc


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every string in a JSON-like structure (keys are not templates)."""
    if isinstance(value, str):
        return render_string(value, context)
    if isinstance(value, Mapping):
        return {k: render(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, context) for v in value]
    return value


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
