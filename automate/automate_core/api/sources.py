"""``/api/v1/sources`` and ``/api/v1/schedules``: read what ``PUT /workflows`` deployed.

A source shows its ``secret_ref`` (where its signing secret is found, e.g. ``env:SHOP_HOOK``),
never a secret or a token hash. Both are changed through ``PUT /workflows`` (the file format).
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Path, Router

from automate_core.api.auth import TokenAuth
from automate_core.api.common import answers, not_found
from automate_core.api.schemas import ScheduleOut, SourceOut
from automate_core.models import Schedule, WebhookSource

router = Router(tags=["sources and schedules"])


def _source(s: WebhookSource) -> SourceOut:
    return SourceOut(
        slug=s.slug, name=s.name, scheme=s.scheme, secret_ref=s.secret_ref, enabled=s.enabled, config=s.config
    )


def _schedule(s: Schedule) -> ScheduleOut:
    return ScheduleOut(
        name=s.name,
        cron=s.cron,
        timezone=s.timezone,
        source=s.source,
        event_type=s.event_type,
        enabled=s.enabled,
        next_fire_at=s.next_fire_at,
        last_fired_at=s.last_fired_at,
    )


@router.get(
    "/sources",
    auth=TokenAuth("workflows:read"),
    response=answers({200: list[SourceOut]}),
    summary="Webhook sources",
)
async def list_sources(request: HttpRequest) -> list[SourceOut]:
    return [_source(s) async for s in WebhookSource.objects.order_by("slug")]


@router.get(
    "/sources/{slug}",
    auth=TokenAuth("workflows:read"),
    response=answers({200: SourceOut}, not_found=True),
    summary="One webhook source",
)
async def get_source(request: HttpRequest, slug: str = Path(..., min_length=1, max_length=100)) -> SourceOut:
    found = await WebhookSource.objects.filter(slug=slug).afirst()
    if found is None:
        raise not_found(f"source {slug!r}")
    return _source(found)


@router.get(
    "/schedules",
    auth=TokenAuth("workflows:read"),
    response=answers({200: list[ScheduleOut]}),
    summary="Cron schedules",
)
async def list_schedules(request: HttpRequest) -> list[ScheduleOut]:
    return [_schedule(s) async for s in Schedule.objects.order_by("name")]


@router.get(
    "/schedules/{name}",
    auth=TokenAuth("workflows:read"),
    response=answers({200: ScheduleOut}, not_found=True),
    summary="One cron schedule",
)
async def get_schedule(
    request: HttpRequest, name: str = Path(..., min_length=1, max_length=200)
) -> ScheduleOut:
    found = await Schedule.objects.filter(name=name).afirst()
    if found is None:
        raise not_found(f"schedule {name!r}")
    return _schedule(found)
