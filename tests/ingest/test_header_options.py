"""A source's header options (idempotency key, event type, fair key) take a header's value and
store it where people see it (the event, its job, the console): a header that may carry a
credential is refused for each of them, by name, on load."""

from __future__ import annotations

from typing import Any

import pytest

from automate_core.definitions import DefinitionError, load
from automate_core.ingest.schemes import SchemeConfigError
from automate_core.ingest.sources import CREDENTIAL_HEADERS, parse_options


def option(name: str, header: str) -> dict[str, Any]:
    """The source config that names ``header`` for the option ``name``."""
    if name == "fairness.header":
        return {"fairness": {"header": header}}
    return {name: header}


OPTIONS = ("event_type_header", "fairness.header", "idempotency_header")


@pytest.mark.parametrize("name", OPTIONS)
@pytest.mark.parametrize("header", sorted(CREDENTIAL_HEADERS))
def test_a_credential_header_is_refused_for_every_header_option(name: str, header: str) -> None:
    for spelling in (header, header.upper(), f"  {header.title()} "):
        with pytest.raises(SchemeConfigError, match=rf"{name}: '{header}' may carry a credential"):
            parse_options("shop", "none", option(name, spelling))


@pytest.mark.parametrize("name", OPTIONS)
def test_other_headers_are_taken_lower_case(name: str) -> None:
    source = parse_options("shop", "none", option(name, "X-Tenant"))
    assert "x-tenant" in (source.idempotency_header, source.event_type_header, source.fairness_header)


@pytest.mark.django_db
def test_automate_load_names_the_source_and_the_option() -> None:
    source = {"slug": "shop", "scheme": "none", "config": {"fairness": {"header": "Authorization"}}}
    with pytest.raises(
        DefinitionError,
        match=r"sources\[0\]: config: fairness.header: 'authorization' may carry a credential",
    ):
        load({"sources": [source]})
