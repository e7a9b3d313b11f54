"""The console's branding and the lists' layout at laptop widths.

No Chromium on this machine (``which chromium`` finds none), so the 1,400 px layout is checked
here by what can be checked without a layout engine: every list page loads the console's
stylesheet after Django's, and that stylesheet holds the rules that let the list shrink beside
the nav sidebar and the filters and scroll in its own box. ``tests/console/test_browser.py``
measures pages in a real browser where one is installed.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from automate_core.admin import BRANDING
from automate_core.models import OutboxJob
from tests.console.rows import dead_job, event, run
from tests.console.test_pages import DASHBOARD, EVENTS, JOBS, RUNS, WORKFLOWS, two_workflows

pytestmark = pytest.mark.django_db

DJANGO_BRANDS = ("Django administration", "Django site admin", "Site administration")


def css_rules() -> dict[str, str]:
    """selector -> declarations of console.css (comments dropped; later rules win, as in CSS)."""
    path = finders.find("automate_core/console.css")
    assert path, "console.css is not found by the static files finders"
    text = re.sub(r"/\*.*?\*/", "", Path(path).read_text(encoding="utf-8"), flags=re.S)
    rules: dict[str, str] = {}
    for selectors, body in re.findall(r"([^{}]+)\{([^}]*)\}", text):
        for selector in selectors.split(","):
            key = " ".join(selector.split())
            rules[key] = rules.get(key, "") + ";" + " ".join(body.split())
    return rules


def declares(rules: dict[str, str], selector: str, declaration: str) -> bool:
    body = rules.get(selector, "")
    return declaration.replace(" ", "") in body.replace(" ", "")


def test_every_console_page_is_branded_django_automate(admin_client: Client) -> None:
    billing, _ = two_workflows()
    r = run(billing, "failed", steps=2)
    job = dead_job(event())
    pages = [
        "/admin/",
        DASHBOARD,
        WORKFLOWS,
        f"{WORKFLOWS}{billing.pk}/change/",
        EVENTS,
        f"{EVENTS}{r.event_id}/change/",
        RUNS,
        f"{RUNS}{r.pk}/change/",
        JOBS,
        f"{JOBS}{job.pk}/change/",
        f"{JOBS}{job.pk}/replay/",
    ]
    for url in pages:
        page = admin_client.get(url).content.decode()
        assert '<div id="site-name"><a href="/admin/">Django Automate</a></div>' in page, url
        title = re.search(r"<title>(.*?)</title>", page, re.S)
        assert title and title.group(1).strip().endswith("| Django Automate"), (url, title)
        assert not [brand for brand in DJANGO_BRANDS if brand in page], url
    index = admin_client.get("/admin/").content.decode()
    assert "<h1>Django Automate console</h1>" in index
    for start in (DASHBOARD, f"{JOBS}?dead_letters=open", f"{WORKFLOWS}yaml/"):  # where to begin
        assert f'href="{start}"' in index, start
    login = Client().get("/admin/login/").content.decode()
    assert "Django Automate" in login and not [b for b in DJANGO_BRANDS if b in login]
    assert BRANDING["site_header"] == "Django Automate"


def test_a_project_that_names_its_admin_keeps_its_name() -> None:
    """The branding fills in Django's defaults only (a project's own header is left alone)."""
    import importlib

    from django.contrib import admin

    import automate_core.admin as console

    before = admin.site.site_header
    try:
        admin.site.site_header = "ACME operations"
        importlib.reload(console)
        assert admin.site.site_header == "ACME operations"
    finally:
        admin.site.site_header = before


def test_the_lists_load_the_console_stylesheet_after_djangos(admin_client: Client) -> None:
    billing, _ = two_workflows()
    run(billing, "failed", ago=timedelta(minutes=5))
    dead_job(event())
    for url, query in ((RUNS, {}), (JOBS, {"dead_letters": "open"}), (EVENTS, {})):
        page = admin_client.get(url, query).content.decode()
        django_css = page.find("admin/css/changelists.css")
        console_css = page.find("automate_core/console.css")
        assert 0 <= django_css < console_css, url  # later: its rules win at equal specificity
        # the structure the rules are written for: the filters beside the results, in one flex row
        container = page[page.find('class="changelist-form-container"') :]
        assert container.find('id="changelist-filter"') < container.find('class="results"'), url
    assert OutboxJob.objects.count() == 1


def test_the_stylesheet_lets_wide_lists_shrink_and_scroll_in_their_box() -> None:
    rules = css_rules()
    # the content beside the nav sidebar may be narrower than its widest table
    assert declares(rules, ".main > .content", "min-width: 0")
    # the list takes what the filter column leaves, and no more
    row = "#changelist .changelist-form-container:has(#changelist-filter) > div"
    assert declares(rules, row, "min-width: 0") and declares(rules, row, "flex: 1 1 0")
    assert declares(rules, row, "max-width: calc(100% - 230px)")
    # 200 px of filters + Django's 30 px margin = the 230 px the list leaves them
    assert declares(rules, "#changelist-filter", "flex: 0 0 200px")
    # a table still too wide scrolls inside .results instead of running under the filters
    assert declares(rules, "#changelist .results", "overflow-x: auto")
    # the widest cells give way: headers wrap, the last error has a bounded width
    assert declares(rules, "#changelist table thead th", "white-space: normal")
    assert declares(rules, "#changelist td.field-error_cell", "max-width: 28em")
