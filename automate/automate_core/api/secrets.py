"""``PUT /api/v1/secrets/{name}``: store a secret in the ``db`` backend. Write only.

No endpoint returns a secret's value, in clear or otherwise: the answer says only that it was
stored, and the audit entry records the name, never the value. Nothing here logs the value; it is
registered with the masker when a run resolves it, as every secret is.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Path, Router

from automate_core.api.auth import TokenAuth, principal
from automate_core.api.common import answers, audited
from automate_core.api.schemas import SecretIn, SecretStored
from automate_core.exceptions import ApiError, ConfigurationError

router = Router(tags=["secrets"])


@router.put(
    "/{name}",
    auth=TokenAuth("secrets:write"),
    response=answers({200: SecretStored}),
    summary="Store (or replace) a secret in the db backend; its value is never returned",
)
async def put_secret(
    request: HttpRequest,
    body: SecretIn,
    name: str = Path(..., min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.\-/]+$"),
) -> SecretStored:
    from automate_governance.secrets import db as backend

    if "\x00" in body.value:
        raise ApiError("The value contains a NUL character.")
    try:
        await audited(
            principal(request),
            "secrets.put",
            f"secret:{name}",
            lambda: backend.set_secret(name, body.value),
            lambda _: {},
        )
    except ConfigurationError as exc:  # no AUTOMATE_SECRETS_ENCRYPTION_KEYS: the operator's to fix
        raise ApiError(
            f"The db secrets backend is not configured: {exc}", status=503, code="unavailable"
        ) from exc
    return SecretStored(name=name, stored=True)
