"""``automate bench e2e`` at a tiny size, and its open-loop sender against real servers on 127.0.0.1:
signed webhooks that verify, a fixed offered rate, and a sender that says when it fell behind."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from io import StringIO
from pathlib import Path

from standardwebhooks.webhooks import Webhook

from benchmarks.e2e import harness, sender
from tests.bench.conftest import AUTOMATE, harness_env


def test_e2e_reports_latency_depth_and_the_senders_rate(bench_url: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [AUTOMATE, "bench", "e2e", "--rate", "100", "--duration", "2", "--warmup", "0.5", "--seed", "100",
         "--drain-timeout", "20", "--database-url", bench_url, "--out", str(tmp_path / "out")],
        env=harness_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (path,) = (tmp_path / "out").glob("e2e-*.json")
    result = json.loads(path.read_text())
    # every measured webhook (not the warm-up's) was accepted and became a finished run
    assert result["events"] == result["runs_finished"] == 200 and result["runs_unfinished"] == 0
    assert result["sender"]["sent"] == 250 and result["sender"]["statuses"] == {"202": 250}
    assert 0 < result["latency_p50_ms"] <= result["latency_p99_ms"] <= result["latency_max_ms"]
    out = done.stdout
    assert re.search(r"^sender: 250 sent, achieved [\d,]+/s of 100/s; answers 202: 250;", out, re.M), out
    p = re.search(r"^webhook-to-run-finished .*, 200 runs: p50 ([\d.,]+) ms, p99 ([\d.,]+) ms", out, re.M)
    assert p, out
    depth = re.search(r"^queue depth each second: ([\d ]+)$", out, re.M)
    assert depth and len(depth.group(1).split()) >= 3, out  # one a second over ~2.5 s, and the end
    assert result["depth"][-1] == 0 and "at the end 0\n" in out  # every job done when it stopped
    assert "embedded PostgreSQL" not in done.stderr


@asynccontextmanager
async def http_server(delay: float, seen: list[tuple[dict[str, str], bytes]]) -> AsyncIterator[int]:
    """A keep-alive HTTP/1.1 server on 127.0.0.1 answering 202 after ``delay`` seconds."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")[1:]
                headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines if h)}
                body = await reader.readexactly(int(headers["content-length"]))
                seen.append((headers, body))
                await asyncio.sleep(delay)
                writer.write(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


def body_of(i: int) -> dict[str, object]:
    return {"type": "order.created", "id": i}


async def test_sender_signs_every_webhook_and_never_runs_ahead_of_its_schedule() -> None:
    seen: list[tuple[dict[str, str], bytes]] = []
    async with http_server(0.0, seen) as port:
        sent = await sender.send("127.0.0.1", port, "/hooks/x/", 200.0, 100, body_of, connections=8)
    assert sent.statuses == {202: 100} and not sent.errors and sent.sent == 100
    # open loop: request i leaves at i / rate or later, never earlier, however fast the answers
    assert sent.seconds >= 99 / 200 and sent.achieved_rate <= 200
    assert len(sent.lags) == 100 and min(sent.lags) >= 0
    # what it says about itself follows from its figures (whether it kept up depends on the machine)
    assert sent.kept_rate() == (sent.achieved_rate >= 0.98 * 200 and sent.lag_ms(0.99) <= 100)
    verifier = Webhook(sender.SECRET)
    ids = set()
    for headers, body in seen:
        assert verifier.verify(body, headers) == json.loads(body)  # a valid Standard Webhooks signature
        ids.add(headers["webhook-id"])
    assert len(ids) == 100  # a distinct id (idempotency key) per webhook


async def test_sender_that_falls_behind_says_so() -> None:
    seen: list[tuple[dict[str, str], bytes]] = []
    async with http_server(0.02, seen) as port:  # one connection, 20 ms an answer: at most 50/s
        sent = await sender.send("127.0.0.1", port, "/hooks/x/", 500.0, 40, body_of, connections=1)
    assert sent.statuses == {202: 40}
    assert not sent.kept_rate() and sent.achieved_rate < 100 and sent.waited_for_connection > 0
    out = StringIO()
    harness.report(result_with(sent), out)
    text = out.getvalue()
    assert "WARNING: the sender did not keep the rate" in text
    assert "found all 1 connections waiting for answers (the server's pace)" in text


def result_with(sent: sender.Sent) -> harness.E2EResult:
    config = harness.E2EConfig(rate=sent.target_rate, duration=1, connections=1)
    return harness.E2EResult(
        config={**config.__dict__, "out_dir": ""}, sender=sent.summary(), events=0, runs_finished=0,
        runs_unfinished=0, latency_p50_ms=0, latency_p99_ms=0, latency_max_ms=0, depth=[0, 0],
    )  # fmt: skip


def test_report_of_a_sender_short_of_cpu_blames_the_sender() -> None:
    sent = sender.Sent(target_rate=1000.0, scheduled=100, sent=100, answered=100)
    sent.started_at, sent.last_at = 0.0, 1.0  # 99/s, no request waited for a connection
    sent.lags = [0.5] * 100
    out = StringIO()
    harness.report(result_with(sent), out)
    assert "it ran out of CPU (no request waited for a connection)" in out.getvalue()


def test_report_names_the_settings_the_platform_ran_with_or_says_defaults() -> None:
    """A figure "at the defaults" must be one: settings inherited from the environment are named."""
    sent = sender.Sent(target_rate=10.0, scheduled=10, sent=10, answered=10)
    sent.started_at, sent.last_at, sent.lags = 0.0, 1.0, [0.0] * 10
    plain, tuned = result_with(sent), result_with(sent)
    tuned.config["settings"] = {"AUTOMATE_WORKER_CONCURRENCY": "32"}
    texts = []
    for result in (plain, tuned):
        out = StringIO()
        harness.report(result, out)
        texts.append(out.getvalue().splitlines()[0])
    assert texts[0].endswith("at the defaults")
    assert texts[1].endswith("with AUTOMATE_WORKER_CONCURRENCY=32") and "defaults" not in texts[1]
