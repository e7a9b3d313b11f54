"""Step parameters render in a sandbox; data is never rendered as a template."""

from __future__ import annotations

import pytest

from automate_core.exceptions import TemplateError
from automate_core.execution import templating

CTX = {"event": {"payload": {"name": "Ada", "items": [1, 2], "evil": "{{ 7*7 }}"}}, "steps": {}}


def test_string_template_renders() -> None:
    assert templating.render("Hi {{ event.payload.name }}", CTX) == "Hi Ada"


def test_single_expression_keeps_its_type() -> None:
    assert templating.render("{{ event.payload.items }}", CTX) == [1, 2]


def test_nested_structures_render_every_string() -> None:
    out = templating.render({"a": ["{{ event.payload.name }}", 3], "b": {"c": "x"}}, CTX)
    assert out == {"a": ["Ada", 3], "b": {"c": "x"}}


def test_undefined_names_are_errors() -> None:
    with pytest.raises(TemplateError, match="Undefined"):
        templating.render("{{ event.payload.missing }}", CTX)
    with pytest.raises(TemplateError, match="Undefined"):
        templating.render("x {{ nothing }} y", CTX)


def test_event_data_is_not_rendered_again() -> None:
    assert templating.render("{{ event.payload.evil }}", CTX) == "{{ 7*7 }}"


@pytest.mark.parametrize(
    "payload",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ ''.format.__globals__ }}",
        "{{ (event|attr('__class__')) }}",
    ],
)
def test_sandbox_refuses_escapes(payload: str) -> None:
    with pytest.raises(TemplateError):
        templating.render(payload, CTX)


def test_syntax_errors_name_the_line() -> None:
    with pytest.raises(TemplateError, match="line 2"):
        templating.validate({"x": "ok\n{{ broken"})


def test_secret_names_are_collected_from_literals_only() -> None:
    assert templating.collect_secret_names({"h": 'Bearer {{ secret("TOKEN") }}'}) == {"TOKEN"}
    with pytest.raises(TemplateError, match="string literal"):
        templating.collect_secret_names("{{ secret(event.payload.name) }}")


def test_join_of_a_generator_keeps_its_items() -> None:
    """``join`` is guarded by the parts' sizes; measuring a generator must not use it up."""
    from automate_core.execution import templating

    rows = {"rows": [{"to": "slack"}, {"to": "email"}]}
    assert templating.render("{{ rows | map(attribute='to') | join(',') }}", rows) == "slack,email"
    chained = "{{ rows | selectattr('to') | map(attribute='to') | join }}"
    assert templating.render(chained, rows) == "slackemail"
