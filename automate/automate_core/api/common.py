"""Shared by the API's routers: documented error answers, opaque cursors, the audit log."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.db import transaction

from automate_core.api.auth import Principal
from automate_core.api.schemas import Error
from automate_core.conf import settings
from automate_core.exceptions import ApiError

#: Every operation may answer these (documented in the OpenAPI, so schemathesis checks them).
ERRORS: dict[int, Any] = {400: Error, 401: Error, 403: Error, 413: Error, 429: Error, 503: Error}


def answers(ok: dict[int, Any], *, not_found: bool = False, conflict: bool = False) -> dict[int, Any]:
    found = {**ok, **ERRORS}
    if not_found:
        found[404] = Error
    if conflict:
        found[409] = Error
    return found


def not_found(what: str) -> ApiError:
    return ApiError(f"No {what}.", status=404, code="not_found")


# --- keyset cursors -------------------------------------------------------------------------


def encode_cursor(kind: str, last_id: int) -> str:
    """An opaque cursor: the last id seen, for one kind of list (a runs cursor is no jobs cursor)."""
    return base64.urlsafe_b64encode(f"{kind}:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        found, _, number = text.partition(":")
        value = int(number)
        if found != kind or value < 1 or not number.isdigit():
            raise ValueError(text)
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise ApiError(
            "The cursor is not valid: pass back the next_cursor of the previous page unchanged.",
            code="invalid_cursor",
        ) from exc
    return value


def page_size(limit: int) -> int:
    maximum = int(settings.API_PAGE_MAX)
    if not 1 <= limit <= maximum:
        raise ApiError(f"limit must be between 1 and {maximum}.", code="invalid_request")
    return limit


# --- audit ----------------------------------------------------------------------------------


def record(who: Principal, action: str, target: str, details: dict[str, Any] | None = None) -> None:
    """One audit entry (sync: call it inside the transaction of the write it records)."""
    from automate_core.models import AuditEntry

    AuditEntry.objects.create(
        actor=who.actor, token_id=who.token_id, action=action, target=target[:300], details=details or {}
    )


async def audited[T](
    who: Principal, action: str, target: str, write: Callable[[], T], details: Callable[[T], dict[str, Any]]
) -> T:
    """Run the sync ``write`` and its audit entry in one transaction, off the event loop."""

    def run() -> T:
        with transaction.atomic():
            result = write()
            record(who, action, target, details(result))
            return result

    return await sync_to_async(run, thread_sensitive=True)()
