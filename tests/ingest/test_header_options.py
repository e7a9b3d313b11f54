"""A source's header options (idempotency key, event type, fair key) take a header's value and
store it where people see it (the event, its job, the console): a header that may carry a
credential is refused for each of them, by name, on load."""

from __future__ import annotations

import pytest

from automate_core.definitions import DefinitionError, load
from automate_core.ingest.schemes import SchemeConfigError
from automate_core.ingest.sources import CREDENTIAL_HEADERS, parse_options

OPTIONS = {
    "idempotency_header": lambda name: {"idempotency_header": name},
    "event_type_header": lambda name: {"event_type_header": name},
    "fairness.header": lambda name: {"fairness": {"header": name}},
}


@pytest.mark.parametrize("option", sorted(OPTIONS))
@pytest.mark.parametrize("header", sorted(CREDENTIAL_HEADERS))
def test_a_credential_header_is_refused_for_every_header_option(option: str, header: str) -> None:
    for spelling in (header, header.upper(), f"  {header.title()} "):
        with pytest.raises(SchemeConfigError, match=rf"{option}: '{header}' may carry a credential"):
            parse_options("shop", "none", OPTIONS[option](spelling))


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_other_headers_are_taken_lower_case(option: str) -> None:
    source = parse_options("shop", "none", OPTIONS[option]("X-Tenant"))
    assert "x-tenant" in (source.idempotency_header, source.event_type_header, source.fairness_header)


@pytest.mark.django_db
def test_automate_load_names_the_source_and_the_option() -> None:
    source = {"slug": "shop", "scheme": "none", "config": {"fairness": {"header": "Authorization"}}}
    with pytest.raises(
        DefinitionError, match=r"sources\[0\]: config: fairness.header: 'authorization' may carry a credential"
    ):
        load({"sources": [source]})
