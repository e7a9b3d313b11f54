"""Connectors: the plugins that perform a step's side effect (HTTP calls, messages, logs).

The contract is :class:`automate_connectors.adapters.base.ConnectorAdapter`; built-ins live in
this package and are registered through the ``django_automate.connectors`` entry-point group,
exactly as third-party connectors are.
"""

from __future__ import annotations
