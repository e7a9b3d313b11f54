"""Helpers shared by the admin modules."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html


class ConsoleMedia:
    """The console's stylesheet (status colours, the run timeline, filters), for ``Media = ...``."""

    css = {"all": ["automate_core/console.css"]}


def pretty_json(value: Any) -> str:
    return format_html("<pre class='automate-json'>{}</pre>", json.dumps(value, indent=2, default=str))


def status_badge(status: str, label: str | None = None) -> str:
    return format_html('<span class="automate-status automate-status-{}">{}</span>', status, label or status)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def form_page(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    form: forms.Form,
    *,
    title: str,
    intro: str,
    submit: str,
) -> HttpResponse:
    """A one-form admin page (run a workflow on a payload, replay a run) in the admin's frame."""
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "intro": intro,
        "form": form,
        "submit": submit,
        "opts": model_admin.model._meta,
    }
    return TemplateResponse(request, "automate_core/admin/form.html", context)
