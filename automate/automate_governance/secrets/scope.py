"""Which secrets a workflow's templates may read: the ones it declares, and never a signing key.

A workflow lists the secrets its templates use (``secrets: [SHOP_API, "vault:erp/key"]`` in the
file format, the names exactly as written in ``secret("...")``). Loading a workflow whose template
reads a secret it did not declare is refused, naming the step and the parameter
(:func:`check_workflow`); so is declaring a webhook source's signing secret. When the workflow
runs, :func:`resolve_for_template` resolves only declared names, refuses a name that is (or
shares its key with) some source's ``secret_ref`` however it is spelt, and leaves the choice of
backend to the resolver, which answers only from ``AUTOMATE_SECRETS_BACKENDS``.

So a template cannot read "any ``AUTOMATE_SECRET_*``": a reviewer sees every secret a workflow can
reach in its file, and the keys that authenticate incoming webhooks stay out of every template.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

from automate_core.exceptions import TemplateError
from automate_core.execution import templating

NAME = re.compile(r"^(?:[a-z][a-z0-9_]*:)?[A-Za-z0-9_./\-]{1,200}$")
SIGNING_KEYS_TTL = 5.0  # seconds a process trusts its list of signing-secret references


def key_of(ref: str) -> str:
    """The backend-independent key of a reference (``env:HOOK`` and ``HOOK`` are one key)."""
    prefix, sep, rest = ref.strip().partition(":")
    return rest if sep and prefix.isidentifier() and prefix.islower() else ref.strip()


def declared_names(where: str, value: Any) -> tuple[str, ...]:
    """The workflow's ``secrets`` list, checked: a list of names (see :data:`NAME`)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: a list of secret names, e.g. [SHOP_API, 'vault:erp/key'].")
    bad = [v for v in value if not NAME.match(v)]
    if bad:
        raise ValueError(f"{where}: {bad[0]!r} is not a secret name (letters, digits, _ . / -).")
    return tuple(dict.fromkeys(value))


def _uses(where: str, value: Any) -> Iterable[tuple[str, set[str]]]:
    """``(place, names)`` for every string of ``value`` that reads secrets."""
    if isinstance(value, str):
        names = templating.secret_names(value)
        if names:
            yield where, names
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _uses(f"{where}.{k}", v)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _uses(f"{where}[{i}]", v)


def undeclared(where: str, steps: list[dict[str, Any]], declared: Iterable[str]) -> list[str]:
    """One message per place whose template reads a secret not in ``declared``."""
    allowed, problems = set(declared), []
    for j, step in enumerate(steps):
        for place, names in _uses(f"{where}.steps[{j}].params", step.get("params", {})):
            for name in sorted(names - allowed):
                problems.append(
                    f"{place}: secret({name!r}) is not declared; add {name!r} to the workflow's "
                    f"'secrets' list ({where}.secrets) if this workflow may read it."
                )
    return problems


def signing_references() -> set[str]:
    """The keys of every webhook source's signing secret(s) (sync; for the loader)."""
    from automate_core.models import WebhookSource

    refs: set[str] = set()
    for value in WebhookSource.objects.exclude(secret_ref="").values_list("secret_ref", flat=True):
        refs.update(key_of(r) for r in value.split(",") if r.strip())
    return refs


def check_workflow(where: str, item: Mapping[str, Any], steps: list[dict[str, Any]]) -> tuple[str, ...]:
    """The workflow's declared secrets; :class:`ValueError` (every problem, one per line) when a
    template reads an undeclared secret or a declared name is a webhook source's signing secret."""
    declared = declared_names(f"{where}.secrets", item.get("secrets"))
    problems = undeclared(where, steps, declared)
    signing = signing_references() if declared else set()
    problems += [
        f"{where}.secrets: {name!r} is a webhook source's signing secret; templates cannot read it."
        for name in declared
        if key_of(name) in signing
    ]
    if problems:
        raise ValueError("\n".join(problems))
    return declared


_signing_cache: tuple[float, set[str]] | None = None


async def asigning_references() -> set[str]:
    """:func:`signing_references`, for the worker: read at most every few seconds."""
    global _signing_cache
    if _signing_cache is not None and _signing_cache[0] > time.monotonic():
        return _signing_cache[1]
    from automate_core import db

    # the platform's pool, not the ORM: a worker's pool reconnects after a database restart, where
    # a Django connection held by the async ORM's thread would stay closed (every step would fail)
    refs: set[str] = set()
    pool = await db.get_pool()
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT secret_ref FROM automate_webhook_source WHERE secret_ref <> ''")
        for (value,) in await cur.fetchall():
            refs.update(key_of(r) for r in str(value).split(",") if r.strip())
    _signing_cache = (time.monotonic() + SIGNING_KEYS_TTL, refs)
    return refs


async def resolve_for_template(
    names: Iterable[str], declared: Iterable[str] | None, *, workflow: str = ""
) -> dict[str, str]:
    """The values of ``names`` for one render, once each is known to be readable.

    ``declared`` is the workflow version's list; ``None`` for a version loaded before workflows
    declared their secrets (its names were then checked by nothing, so only the signing-key rule
    applies). Raises :class:`TemplateError` (not retryable: the workflow must change).
    """
    wanted = sorted(set(names))
    if declared is not None:
        missing = [n for n in wanted if n not in set(declared)]
        if missing:
            raise TemplateError(
                f"workflow {workflow!r} reads secret {missing[0]!r}, which it does not declare "
                f"(its 'secrets' list: {', '.join(declared) or 'empty'})."
            )
    signing = await asigning_references()
    for name in wanted:
        if key_of(name) in signing:
            raise TemplateError(
                f"secret({name!r}) is a webhook source's signing secret; templates cannot read it."
            )
    from automate_governance.secrets.resolver import get_resolver

    resolver = get_resolver()
    return {name: await resolver.aresolve(name) for name in wanted}
