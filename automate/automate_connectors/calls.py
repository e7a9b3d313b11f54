"""Checks the built-in connectors make on a call before doing anything: the action exists and the
parameters are known, so a typo in a workflow fails loudly and is not retried."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from automate_core.exceptions import ConnectorError, UnknownActionError


def check_params(code: str, params: Mapping[str, Any], known: Collection[str]) -> None:
    unknown = set(params) - set(known)
    if unknown:
        raise ConnectorError(f"{code}: unknown params {sorted(unknown)}.", retryable=False)


def check_call(code: str, action: str, only: str, params: Mapping[str, Any], known: Collection[str]) -> None:
    """For a connector whose one action is ``only``, with a fixed set of parameters."""
    if action != only:
        raise UnknownActionError(f"{code} has no action {action!r}; use {only}.")
    check_params(code, params, known)
