"""``email``: sends mail through Django's mailers (``MAILERS``: SMTP, console, ...; or the older
``EMAIL_BACKEND`` settings).

Action ``send``. Params: ``to`` (an address or a list), ``subject``, ``body`` (plain text),
optionally ``html`` (an HTML alternative), ``from_email`` (default ``DEFAULT_FROM_EMAIL``), ``cc``,
``bcc``, ``reply_to``, ``headers``, ``mailer`` (a ``MAILERS`` alias; default: the default mailer).
Returns ``{"sent", "to", "message_id"}``.

Django's backends are synchronous, so this connector is sync and runs in the plugin thread pool.
Refused recipients, bad addresses and authentication failures are not retryable; connection
problems and other SMTP errors are.
"""

from __future__ import annotations

import smtplib
from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import make_msgid
from django.core.validators import validate_email

from automate_connectors.adapters.base import ConnectorAdapter, ConnectorError
from automate_connectors.calls import check_call

_PARAMS = {"to", "subject", "body", "html", "from_email", "cc", "bcc", "reply_to", "headers", "mailer"}


def _addresses(params: dict, name: str, *, required: bool = False) -> list[str]:
    value = params.get(name)
    if value in (None, "", []):
        if required:
            raise ConnectorError(f"email: '{name}' needs at least one address.", retryable=False)
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ConnectorError(f"email: '{name}' must be an address or a list of addresses.", retryable=False)
    for item in items:
        try:
            validate_email(item.rsplit("<", 1)[-1].rstrip(">").strip())
        except ValidationError:
            raise ConnectorError(
                f"email: {item!r} in '{name}' is not a valid address.", retryable=False
            ) from None
        if "\n" in item or "\r" in item:
            raise ConnectorError(f"email: '{name}' contains a line break.", retryable=False)
    return list(items)


class EmailConnector(ConnectorAdapter):
    code = "email"
    name = "Email (Django mailers)"
    actions: ClassVar[tuple[str, ...]] = ("send",)
    supports_dry_run = True

    def execute(self, action: str, params: dict, context: dict) -> Any:
        check_call("email", action, "send", params, _PARAMS)
        to = _addresses(params, "to", required=True)
        subject, body = params.get("subject"), params.get("body", "")
        if not isinstance(subject, str) or not subject or "\n" in subject:
            raise ConnectorError("email: 'subject' must be a one-line string.", retryable=False)
        message_id = make_msgid(domain="django-automate")
        message = EmailMultiAlternatives(
            subject=subject,
            body=str(body),
            from_email=params.get("from_email") or None,
            to=to,
            cc=_addresses(params, "cc"),
            bcc=_addresses(params, "bcc"),
            reply_to=_addresses(params, "reply_to"),
            headers={**dict(params.get("headers") or {}), "Message-ID": message_id},
        )
        if params.get("html"):
            message.attach_alternative(str(params["html"]), "text/html")
        if context.get("dry_run"):
            return {"dry_run": True, "to": to, "subject": subject}
        try:
            mailer = params.get("mailer")
            sent = (
                message.send(fail_silently=False, using=mailer)
                if mailer
                else message.send(fail_silently=False)
            )
        except (
            smtplib.SMTPRecipientsRefused,
            smtplib.SMTPSenderRefused,
            smtplib.SMTPAuthenticationError,
        ) as exc:
            raise ConnectorError(
                f"email: refused by the server: {type(exc).__name__}.", retryable=False
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise ConnectorError(f"email: sending failed: {type(exc).__name__}: {exc}") from exc
        return {"sent": sent, "to": to, "message_id": message_id}
