"""Median latency of the console's pages, against a running ``automate serve`` (not a test).

    psql "$DATABASE_URL" -f benchmarks/console/data.sql     # after loading two workflows
    AUTOMATE_HTTPS=0 automate serve --port 8471 &
    python -m benchmarks.console.pages http://127.0.0.1:8471 USER PASSWORD

Logs in through the login form, then requests each page 5 times and prints the median and the
count the page shows. Figures: docs/operations.md ("Console figures").
"""

from __future__ import annotations

import hashlib
import re
import statistics
import sys
import time

import httpx

PAGES = [
    "/admin/automate_core/event/",
    "/admin/automate_core/event/?source=shop",
    "/admin/automate_core/event/?type=type.3",
    "/admin/automate_core/event/?since=1h",
    "/admin/automate_core/event/?since=7d&until=6d",
    "/admin/automate_core/event/?since=7d",
    f"/admin/automate_core/event/?q={hashlib.md5(b'1234567').hexdigest()}",  # data.sql's trace ids
    "/admin/automate_core/event/?q=key-1950000",
    "/admin/automate_core/executionrun/",
    "/admin/automate_core/executionrun/?status__exact=failed",
    "/admin/automate_core/executionrun/?since=24h",
    "/admin/automate_core/outboxjob/",
    "/admin/automate_core/outboxjob/?status__exact=dead",
    "/admin/automate_core/workflow/",
    "/admin/automate/dashboard/",
]


def main(base: str, user: str, password: str) -> None:
    client = httpx.Client(base_url=base, timeout=60, follow_redirects=True)
    login = client.get("/admin/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)
    assert token, "no login form"
    done = client.post(
        "/admin/login/?next=/admin/",
        data={"csrfmiddlewaretoken": token.group(1), "username": user, "password": password},
        headers={"referer": f"{base}/admin/login/"},
    )
    assert "log out" in done.text.lower(), "login failed"
    for url in PAGES:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            page = client.get(url)
            times.append((time.perf_counter() - start) * 1000)
            assert page.status_code == 200, (url, page.status_code)
        shown = re.search(r'class="paginator"[^>]*>.*?</h2>(.*?)</nav>', page.text, re.S)
        count = " ".join(re.sub(r"<[^>]+>", " ", shown.group(1)).split())[-40:] if shown else ""
        print(f"{statistics.median(times):8.1f} ms  {url}   [{count}]")


if __name__ == "__main__":
    main(*sys.argv[1:4])
