"""List filters for the big tables (events, runs, jobs) that never scan them to draw themselves.

Django's field filters list their choices with ``SELECT DISTINCT field`` over the whole table, and
its date hierarchy aggregates over it too: on millions of events each page load would read them
all. These filters take their choices from small tables or cheap index skip scans, and filter
with conditions an index serves:

* :class:`EventSourceFilter`: sources found by a skip scan of the ``(source, event_type)`` index.
* :class:`EventTypeFilter`: a text box (exact type, or a prefix ending in ``*``).
* :class:`WorkflowFilter`: runs by workflow, choices from the workflows table.
* :class:`TimeRangeFilter`: last 15 minutes / hour / day / week, or from/until given as an age
  (``30m``, ``6h``, ``2d``) or a date-time, on a column with a BRIN index.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from automate_core.admin import queries
from automate_core.models import Workflow

_AGE = re.compile(r"^(\d+)\s*([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_moment(text: str) -> datetime:
    """An age before now (``15m``, ``6h``, ``2d``) or an ISO date or date-time (UTC if naive)."""
    text = text.strip()
    age = _AGE.match(text)
    if age:
        return timezone.now() - timedelta(**{_UNITS[age.group(2)]: int(age.group(1))})
    moment = parse_datetime(text.replace(" ", "T"))
    if moment is None:
        day = parse_date(text)
        if day is not None:
            moment = datetime(day.year, day.month, day.day)
    if moment is None:
        raise ValueError(
            f"{text!r} is neither an age such as 30m, 6h, 2d nor a date-time such as 2026-11-30 14:05"
        )
    return timezone.make_aware(moment, UTC) if timezone.is_naive(moment) else moment


class _FormFilter(admin.ListFilter):
    """A filter drawn as preset links plus a small GET form of text inputs (``inputs``)."""

    template = "automate_core/admin/form_filter.html"
    parameters: ClassVar[list[tuple[str, str, str]]] = []  # (query parameter, label, placeholder)
    presets: ClassVar[list[tuple[str, dict[str, str]]]] = []  # (label, parameter values)

    def __init__(
        self, request: HttpRequest, params: dict[str, Any], model: type[Model], model_admin: Any
    ) -> None:
        super().__init__(request, params, model, model_admin)
        self.values: dict[str, str] = {}
        for name, _label, _placeholder in self.parameters:
            if name in params:
                value = params.pop(name)
                text = str(value[-1] if isinstance(value, list) else value).strip()
                if text:
                    self.values[name] = text
        self.used_parameters = dict(self.values)
        self.hidden: list[tuple[str, str]] = []

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str | None]:
        return [name for name, _label, _placeholder in self.parameters]

    def inputs(self) -> list[tuple[str, str, str, str]]:
        return [
            (name, label, placeholder, self.values.get(name, ""))
            for name, label, placeholder in self.parameters
        ]

    def choices(self, changelist: Any) -> Any:
        mine = [name for name, _label, _placeholder in self.parameters]
        self.hidden = [(k, v) for k, v in changelist.params.items() if k not in mine]
        yield {
            "selected": not self.values,
            "query_string": changelist.get_query_string(remove=mine),
            "display": "All",
        }
        for label, values in self.presets:
            yield {
                "selected": self.values == values,
                "query_string": changelist.get_query_string(values, remove=mine),
                "display": label,
            }


class TimeRangeFilter(_FormFilter):
    """Rows whose ``field`` (a column with a BRIN index) falls in a time range."""

    field = ""
    parameters = [("since", "From", "15m, 6h, 2d or 2026-11-30 14:00"), ("until", "Until", "optional")]
    presets = [
        ("Last 15 minutes", {"since": "15m"}),
        ("Last hour", {"since": "1h"}),
        ("Last 24 hours", {"since": "24h"}),
        ("Last 7 days", {"since": "7d"}),
    ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        try:
            if "since" in self.values:
                queryset = queryset.filter(**{f"{self.field}__gte": parse_moment(self.values["since"])})
            if "until" in self.values:
                queryset = queryset.filter(**{f"{self.field}__lt": parse_moment(self.values["until"])})
        except ValueError as exc:  # said on the page; Django's own answer would be "Database error"
            messages.warning(request, f"{self.title}: {exc}")
        return queryset


class ReceivedFilter(TimeRangeFilter):
    title = "time received"
    field = "received_at"


class StartedFilter(TimeRangeFilter):
    title = "time started"
    field = "started_at"


class EventTypeFilter(_FormFilter):
    """An exact event type, or a prefix (``order.*``); with every known source spelled out so
    that the ``(source, event_type)`` index answers it even when no source is chosen."""

    title = "event type"
    parameters = [("type", "Type", "order.created or order.*")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.values.get("type")
        if not value:
            return queryset
        queryset = queryset.filter(source__in=queries.distinct_sources())
        if value.endswith("*"):
            return queryset.filter(event_type__startswith=value[:-1])
        return queryset.filter(event_type=value)


class EventSourceFilter(admin.SimpleListFilter):
    title = "source"
    parameter_name = "source"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(s, s) for s in queries.distinct_sources()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(source=self.value()) if self.value() else queryset


class WorkflowFilter(admin.SimpleListFilter):
    """Runs of one workflow, by its id (``automate_run_workflow_started`` serves it)."""

    title = "workflow"
    parameter_name = "workflow"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(pk), name) for pk, name in Workflow.objects.order_by("name").values_list("pk", "name")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            messages.warning(request, f"workflow={value!r} is not a workflow id; not filtered.")
            return queryset
        return queryset.filter(workflow_id=int(value))


class JobSourceFilter(admin.SimpleListFilter):
    """Outbox jobs whose event came from one source (choices by the events' skip scan)."""

    title = "source"
    parameter_name = "source"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(s, s) for s in queries.distinct_sources()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(event__source=self.value()) if self.value() else queryset
