"""``/metrics``: the process metrics of every process that shares the metrics directory, plus the
queue as PostgreSQL sees it, in the Prometheus text format (or OpenMetrics when asked).

**Processes.** With ``PROMETHEUS_MULTIPROC_DIR`` set (``automate serve --workers N`` sets one up),
every process writes its samples to files in that directory and a scrape merges them, so one
scrape of any web process reports all of them. Counters of processes that exited stay counted
(totals must not go down); the *live* gauges (jobs running, threads busy, pool connections) of a
process that died without saying so (SIGKILL, OOM) are dropped at the next scrape, because a
process whose pid no longer exists is not live. Without the variable, the process's own registry
is exposed.

**The database.** Outbox depth by status, jobs due now, the age of the oldest due job (also per
queue: ``automate_outbox_queue_depth``, ``..._queue_due``, ``..._queue_oldest_seconds``) and the
run outcomes of the last minutes and the dead letters (``dead_letters``: dead jobs not resolved)
are read at scrape time (``queries.OUTBOX_DEPTH``, ``queries.RECENT_RUNS``, ``queries.QUEUE_DEPTH``,
``dead_letters.DEAD_LETTERS_COUNT``), at most once per ``AUTOMATE_METRICS_DB_CACHE_SECONDS`` per process.
They describe the shared queue, not the process: aggregate them with ``max``, not ``sum``, over
web instances. ``automate_metrics_database_up`` is 0 when the read failed.

**Access.** The page shows internals (source names, workflow names, queue state). A client may
read it when it sends ``Authorization: Bearer <AUTOMATE_METRICS_TOKEN>`` (if a token is set), or
by its address, only when the deployment lists addresses: ``AUTOMATE_METRICS_ALLOWED_IPS`` for
the web (empty by default outside ``DEBUG``: a reverse proxy on the same host makes every
visitor look like loopback, so loopback is trusted only when said), and
``AUTOMATE_WORKER_METRICS_ALLOWED_IPS`` for a worker's own port (loopback by default: that port
is not published). A request that carries a forwarding header is judged by the client the
nearest proxy saw: it is let in only when uvicorn, trusting that proxy
(``--forwarded-allow-ips``), replaced the peer with the last ``X-Forwarded-For`` hop, and that
address is listed. ``Forwarded`` and ``X-Real-IP`` (uvicorn does not read them), or a hop the
client may have written itself, never let a request in by address.
"""

from __future__ import annotations

import functools
import glob
import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from psycopg_pool import PoolTimeout

from automate_core import db
from automate_core.conf import settings
from automate_core.exceptions import AutomateError
from automate_core.observability import dead_letters, queries

logger = logging.getLogger("automate.observability")

OUTBOX_STATUSES = ("ready", "retry", "running", "dead")
_FORWARDING_HEADERS = frozenset({b"x-forwarded-for", b"forwarded", b"x-real-ip"})


def multiprocess_dir() -> str | None:
    """The metrics directory shared by this host's processes, if multiprocess mode is on."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


# --- access -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    status: int = 200
    reason: str = ""


def authorize(scope: Mapping[str, Any], *, worker: bool = False) -> Decision:
    """May this request read ``/metrics``? (See the module docstring for the rules.)"""
    headers = dict(scope.get("headers") or [])
    token = str(settings.METRICS_TOKEN or "")
    sent = headers.get(b"authorization", b"").decode("latin-1")
    if token:
        if sent and hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return Decision(True)
        if sent:
            return Decision(False, 401, "The bearer token is not the metrics token.")
    allowed = tuple(settings.WORKER_METRICS_ALLOWED_IPS if worker else settings.METRICS_ALLOWED_IPS)
    if _judged_client(scope, headers) and _address_allowed(scope.get("client"), allowed):
        return Decision(True)
    if token:
        return Decision(False, 401, "Send Authorization: Bearer <AUTOMATE_METRICS_TOKEN>.")
    setting = "AUTOMATE_WORKER_METRICS_ALLOWED_IPS" if worker else "AUTOMATE_METRICS_ALLOWED_IPS"
    listed = ", ".join(allowed) if allowed else "none set"
    return Decision(
        False,
        403,
        f"Metrics are served to the addresses in {setting} ({listed}) and to holders of "
        "AUTOMATE_METRICS_TOKEN; see docs/operations.md.",
    )


def _judged_client(scope: Mapping[str, Any], headers: Mapping[bytes, bytes]) -> bool:
    """Whether ``scope["client"]`` is an address the request truly came from (see the docstring)."""
    if _FORWARDING_HEADERS.isdisjoint(headers):
        return True
    if b"forwarded" in headers or b"x-real-ip" in headers:
        return False
    hops = [hop.strip() for hop in headers[b"x-forwarded-for"].decode("latin-1").split(",")]
    client = scope.get("client")
    return bool(client and hops and hops[-1] == client[0])


def _address_allowed(client: Any, allowed: tuple[str, ...]) -> bool:
    if not client:  # a Unix socket: whoever is behind the proxy that owns it
        return False
    try:
        address = ipaddress.ip_address(client[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in _networks(allowed))


_parsed: dict[tuple[str, ...], list[ipaddress.IPv4Network | ipaddress.IPv6Network]] = {}


def _networks(entries: tuple[str, ...]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = _parsed.get(entries)
    if networks is None:
        from automate_core.exceptions import ConfigurationError

        networks = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError as exc:
                raise ConfigurationError(
                    f"AUTOMATE_METRICS_ALLOWED_IPS: {entry!r} is not an address or a network "
                    "(write 10.0.0.0/8, 127.0.0.1 or ::1)."
                ) from exc
        _parsed[entries] = networks
    return networks


# --- the database -------------------------------------------------------------------------------


class DatabaseGauges:
    """The queue as PostgreSQL sees it, read at scrape time and reused for a few seconds."""

    def __init__(self) -> None:
        self._families: list[Metric] = []
        self._read_at = float("-inf")

    async def families(self) -> list[Metric]:
        if time.monotonic() - self._read_at >= float(settings.METRICS_DB_CACHE_SECONDS):
            self._families = await self._read()
            self._read_at = time.monotonic()
        return self._families

    async def _read(self) -> list[Metric]:
        up = GaugeMetricFamily(
            "automate_metrics_database_up", "1 if the database gauges below were read on this scrape."
        )
        timeout = float(settings.READY_TIMEOUT_SECONDS)
        try:
            pool = await db.get_pool()
            async with pool.connection(timeout=timeout) as conn:
                cur = await conn.execute(queries.OUTBOX_DEPTH)
                depth = await cur.fetchone()
                cur = await conn.execute(queries.RECENT_RUNS)
                runs = await cur.fetchall()
                cur = await conn.execute(dead_letters.DEAD_LETTERS_COUNT)
                letters = await cur.fetchone()
                cur = await conn.execute(queries.WAITING_RUNS)
                waiting = await cur.fetchall()
                cur = await conn.execute(queries.QUEUE_DEPTH)
                by_queue = await cur.fetchall()
        except (psycopg.Error, PoolTimeout, TimeoutError, OSError, AutomateError) as exc:
            logger.warning("metrics: the database gauges could not be read: %s", exc)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        assert depth is not None and letters is not None
        ready, retry, due, running, dead, oldest = depth
        jobs = GaugeMetricFamily(
            "automate_outbox_jobs",
            "Outbox jobs by status (completed jobs are history and not counted).",
            labels=["status"],
        )
        for status, value in zip(OUTBOX_STATUSES, (ready, retry, running, dead), strict=True):
            jobs.add_metric([status], value)
        due_jobs = GaugeMetricFamily(
            "automate_outbox_due_jobs", "Ready or retry jobs whose available_at has passed: work to do now."
        )
        due_jobs.add_metric([], due)
        age = GaugeMetricFamily(
            "automate_outbox_oldest_ready_age_seconds",
            "How long the oldest due job has waited past its available_at (0 when none is due).",
        )
        age.add_metric([], float(oldest))
        recent = GaugeMetricFamily(
            "automate_runs_recent",
            f"Workflow runs started in the last {queries.RECENT_RUNS_WINDOW_SECONDS}s, by status "
            "(all workers, from the database).",
            labels=["status"],
        )
        counts = dict.fromkeys(("running", "succeeded", "failed", "skipped"), 0)
        counts.update({status: count for status, count in runs})
        for status, count in counts.items():
            recent.add_metric([status], count)
        unresolved = GaugeMetricFamily(
            "automate_dead_letters",
            "Dead jobs not resolved: not replayed, and their event not run again successfully "
            "(observability.dead_letters; the console and `automate dead` count the same).",
        )
        unresolved.add_metric([], letters[0])
        return [
            up,
            jobs,
            due_jobs,
            age,
            recent,
            unresolved,
            *waiting_families(waiting),
            *queue_families(by_queue),
        ]


def queue_families(rows: list[tuple[Any, ...]]) -> list[Metric]:
    """Depth and age per queue (``automate worker --queue``); a queue with no job has no sample."""
    depth = GaugeMetricFamily(
        "automate_outbox_queue_depth", "Jobs waiting on each queue (ready or retry, due or not).",
        labels=["queue"],
    )  # fmt: skip
    due = GaugeMetricFamily(
        "automate_outbox_queue_due", "Jobs of each queue whose available_at has passed.", labels=["queue"]
    )
    oldest = GaugeMetricFamily(
        "automate_outbox_queue_oldest_seconds",
        "How long the oldest due job of each queue has waited past its available_at (0: none due).",
        labels=["queue"],
    )
    for queue, waiting, due_now, age in rows:
        depth.add_metric([queue], int(waiting))
        due.add_metric([queue], int(due_now))
        oldest.add_metric([queue], float(age))
    return [depth, due, oldest]


def waiting_families(rows: list[tuple[Any, ...]]) -> list[Metric]:
    """Runs parked on a wait, by kind, and the age of the oldest open wait."""
    runs = GaugeMetricFamily(
        "automate_waiting_runs", "Runs waiting (sleep, event, approval, call), by what they wait for.",
        labels=["kind"],
    )  # fmt: skip
    oldest = GaugeMetricFamily(
        "automate_oldest_wait_age_seconds", "How long the oldest open wait has been open (0 when none)."
    )
    counts = dict.fromkeys(("sleep", "event", "approval", "call"), 0)
    ages = [0.0]
    for kind, count, age in rows:
        counts[kind] = int(count)
        ages.append(float(age))
    for kind, count in counts.items():
        runs.add_metric([kind], count)
    oldest.add_metric([], max(ages))
    return [runs, oldest]


# --- the page -----------------------------------------------------------------------------------


class _Scrape:
    """A one-off collector: the process metrics, then the database families."""

    def __init__(self, sources: Iterable[Any], extra: Iterable[Metric]) -> None:
        self.sources = list(sources)
        self.extra = list(extra)

    def collect(self) -> Iterator[Metric]:
        for source in self.sources:
            yield from source.collect()
        yield from self.extra


def prune_dead_processes(path: str) -> list[int]:
    """Drop the live-gauge files of processes that no longer exist; return their pids."""
    dead = set()
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        pid_text = os.path.basename(name).rsplit("_", 1)[-1][: -len(".db")]
        if pid_text.isdigit() and not _alive(int(pid_text)):
            dead.add(int(pid_text))
    for pid in dead:
        mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
    return sorted(dead)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def render(accept: str, extra: Iterable[Metric] = ()) -> tuple[bytes, str]:
    """The exposition page and its content type (blocking: file reads in multiprocess mode)."""
    path = multiprocess_dir()
    registry = CollectorRegistry(auto_describe=False)
    if path:
        prune_dead_processes(path)
        sources: list[Any] = [MultiProcessCollector(None, path=path)]  # type: ignore[no-untyped-call]
    else:
        sources = [REGISTRY]
    registry.register(_Scrape(sources, extra))
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type


@functools.cache
def database_gauges() -> DatabaseGauges:
    """The process's database gauges (one cache per process)."""
    return DatabaseGauges()
