"""Paging for lists over big tables: no ``COUNT(*)`` of millions of rows on each page.

Django's admin counts the filtered rows for its paginator on every page, and the unfiltered rows
too unless ``show_full_result_count`` is off; on the events table that is a pass over millions
of rows per click. :class:`BigTablePaginator` counts at most ``CAP + 1`` rows (exact below the
cap), and past the cap, or when even that takes too long (a filter no index serves), takes the
planner's estimate. The page then says "more than 10,000" or "about 2,400,000".
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.utils.functional import cached_property

from automate_core.admin import queries


class BigTablePaginator(Paginator):
    CAP = 10_000

    #: "exact", "capped" (more than the count shown) or "estimated"
    kind = "exact"

    @cached_property
    def count(self) -> int:
        rows = self.object_list
        if not isinstance(rows, QuerySet):  # a list: nothing to save
            return len(rows)
        counted = queries.capped_count(rows, self.CAP)
        if counted is not None and counted <= self.CAP:
            return counted
        estimate = queries.estimated_count(rows)
        if counted is not None and estimate <= self.CAP:
            self.kind = "capped"
            return self.CAP
        self.kind = "estimated"
        return max(estimate, self.CAP if counted is not None else 0)


class BigTableAdmin(admin.ModelAdmin):
    """List options for tables that grow with every event (events, runs, outbox jobs).

    ``time_field`` (a column with a BRIN index, filtered by ``filters.TimeRangeFilter``): while a
    time range is chosen the list is ordered by it, newest first. Ordered by id instead, the
    planner walks the primary key backwards hoping to meet the range soon (it cannot know that
    ids and times grow together), and reads every newer row when the range lies in the past.
    """

    paginator = BigTablePaginator
    time_field: str | None = None
    show_full_result_count = False  # no second count of the whole table
    show_facets = admin.ShowFacets.NEVER  # facet counts would count the whole table per filter choice
    list_per_page = 50

    def get_ordering(self, request: Any) -> Any:
        if self.time_field and ("since" in request.GET or "until" in request.GET):
            return [f"-{self.time_field}", "-pk"]
        return super().get_ordering(request)

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False  # records: never edited in a form

    def has_act_permission(self, request: Any) -> bool:
        """Replay, cancel and the like need the model's "change" permission (superusers have it)."""
        opts = self.opts
        return bool(request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}"))
