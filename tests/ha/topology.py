"""The failover topology, started by the tests: etcd (one node), two PostgreSQL "hosts" managed by
Patroni (a primary and a synchronous standby), HAProxy routing to the leader by Patroni's REST
health check, and the platform's web and worker processes, each "host" on its own loopback address.

    127.0.0.2  node-a   Patroni REST + PostgreSQL     127.0.0.4  etcd (client + peer port)
    127.0.0.3  node-b   Patroni REST + PostgreSQL     127.0.0.5  HAProxy (postgres port)
    127.0.0.6  web-1    automate serve                127.0.0.7  worker-1 (metrics port)
    127.0.0.9  web-2    automate serve                127.0.0.8  worker-2 (metrics port)

No traffic leaves the machine: every address is on the loopback interface. A node can be cut off
from the others by firewall rules (``tests/ha/netfault.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import pytest
import yaml

from tests.chaos.platform import AUTOMATE, Platform
from tests.ha import netfault
from tests.ha.netfault import Firewall
from tests.pooler.binaries import pg_bindir, require, service_user
from tests.pooler.pgbouncer import free_port

NODE_HOSTS = ("127.0.0.2", "127.0.0.3")
ETCD_HOST = "127.0.0.4"
PROXY_HOST = "127.0.0.5"
WEB_HOSTS = ("127.0.0.6", "127.0.0.9")
WORKER_HOSTS = ("127.0.0.7", "127.0.0.8")
SCOPE = "automate"
DATABASE = "automate"


def _wait(condition: Any, within: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + within
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception as exc:
            last_error = exc
        else:
            if value:
                return value
        time.sleep(interval)
    raise TimeoutError(f"{what} not within {within:g}s (last error: {last_error})")


def _kill_trees(*pids: int) -> None:
    """SIGKILL every process of these trees at once (gathered first: none outlives the others)."""
    procs: list[psutil.Process] = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(pid)
            procs += [root, *root.children(recursive=True)]
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGKILL)
    psutil.wait_procs(procs, timeout=10)


class Etcd:
    def __init__(self, root: Path) -> None:
        self.binary = require("etcd")
        self.client_port, self.peer_port = free_port(ETCD_HOST), free_port(ETCD_HOST)
        peer = f"http://{ETCD_HOST}:{self.peer_port}"
        client = f"http://{ETCD_HOST}:{self.client_port}"
        self.log = open(root / "etcd.log", "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(
            [self.binary, "--name", "etcd0", "--data-dir", str(root / "etcd"),
             "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"etcd0={peer}", "--initial-cluster-state", "new",
             "--heartbeat-interval", "100", "--election-timeout", "1000", "--log-level", "warn"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            _wait(lambda: httpx.get(f"{client}/health", timeout=1).json().get("health") == "true", 30, "etcd")
        except BaseException:
            self.stop()
            raise

    @property
    def hosts(self) -> str:
        return f"{ETCD_HOST}:{self.client_port}"

    def stop(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(10)
                if self.proc.poll() is None:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            self.log.close()


@dataclass
class Replication:
    """What the cluster promises for an acknowledged commit (docs/operations.md)."""

    synchronous: bool = True

    def dcs(self) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "ttl": 20,
            "loop_wait": 1,
            "retry_timeout": 5,
            # the standby may be promoted only if it has everything (sync) / up to 1 GB behind (async)
            "maximum_lag_on_failover": 1 << 30,
            "primary_start_timeout": 0,
            "synchronous_mode": self.synchronous,
            "synchronous_mode_strict": False,
        }
        return settings

    def parameters(self) -> dict[str, Any]:
        return {
            # a commit returns once the sync standby has flushed it (remote_apply: replayed too)
            "synchronous_commit": "on",
            "wal_level": "replica",
            "hot_standby": "on",
            "max_wal_senders": 5,
            "max_replication_slots": 5,
            "wal_keep_size": "64MB",
            "shared_buffers": "16MB",
            "max_connections": 120,
            "fsync": "on",
            "wal_receiver_status_interval": "1s",
            "log_min_messages": "warning",
        }


class PatroniNode:
    def __init__(
        self, name: str, host: str, root: Path, etcd: Etcd, replication: Replication, user: str | None
    ) -> None:
        self.name, self.host = name, host
        self.binary = require("patroni")
        self.pg_port, self.rest_port = free_port(host), free_port(host)
        self.root = root / name
        self.root.mkdir(parents=True, exist_ok=True)
        # each node runs as its own OS user when the tests run as root: the firewall tells the
        # hosts apart by socket owner (tests/ha/netfault.py)
        self.user = user
        if user:
            shutil.chown(self.root, user, user)
        config = {
            "scope": SCOPE,
            "name": name,
            "log": {"level": "WARNING", "dir": str(self.root)},
            "restapi": {"listen": f"{host}:{self.rest_port}", "connect_address": f"{host}:{self.rest_port}"},
            "etcd3": {"hosts": [etcd.hosts]},
            "bootstrap": {
                "dcs": {
                    **replication.dcs(),
                    "postgresql": {
                        "use_pg_rewind": False,
                        "use_slots": True,
                        "parameters": replication.parameters(),
                    },
                },
                "initdb": [{"encoding": "UTF8"}, {"auth": "trust"}],
                "pg_hba": [
                    "local all all trust",
                    "host all all 127.0.0.0/8 trust",
                    "host replication all 127.0.0.0/8 trust",
                ],
            },
            "postgresql": {
                "listen": f"{host}:{self.pg_port}",
                "connect_address": f"{host}:{self.pg_port}",
                "data_dir": str(self.root / "data"),
                "bin_dir": str(pg_bindir()),
                "pgpass": str(self.root / "pgpass"),
                "authentication": {
                    "superuser": {"username": "postgres"},
                    "replication": {"username": "postgres"},
                },
                "parameters": {"unix_socket_directories": str(self.root)},
            },
        }
        self.config = self.root / "patroni.yml"
        self.config.write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        log = open(self.root / "patroni.out", "ab")  # noqa: SIM115 - the child keeps its own descriptor
        with log:
            self.proc = subprocess.Popen(
                [self.binary, str(self.config)], user=self.user, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def rest(self, path: str) -> httpx.Response:
        return httpx.get(f"http://{self.host}:{self.rest_port}{path}", timeout=1.0)

    def role(self) -> str | None:
        try:
            return str(self.rest("/patroni").json().get("role"))
        except (httpx.HTTPError, ValueError):
            return None

    def postmaster(self) -> psutil.Process | None:
        """PostgreSQL's postmaster (Patroni starts it detached: not among Patroni's children)."""
        with contextlib.suppress(OSError, ValueError, IndexError, psutil.Error):
            pid = int((self.root / "data" / "postmaster.pid").read_text().split()[0])
            return psutil.Process(pid)
        return None

    def kill9(self) -> None:
        """The host dies: Patroni and its PostgreSQL, SIGKILL, no shutdown of any kind."""
        postmaster = self.postmaster()
        _kill_trees(*[p.pid for p in (self.proc, postmaster) if p is not None])
        if self.proc is not None:
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            postmaster = self.postmaster()
            if postmaster is not None:  # its Patroni was killed: nothing else stops it
                _kill_trees(postmaster.pid)
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill9()

    def walsenders(self) -> list[psutil.Process]:
        """The processes streaming this node's WAL to its standbys."""
        postmaster = self.postmaster()
        found = []
        for proc in postmaster.children() if postmaster else []:
            with contextlib.suppress(psutil.Error):
                if "walsender" in " ".join(proc.cmdline()):
                    found.append(proc)
        return found


class HAProxy:
    def __init__(self, root: Path, nodes: list[PatroniNode]) -> None:
        self.binary = require("haproxy")
        self.port = free_port(PROXY_HOST)
        servers = "\n".join(
            f"    server {n.name} {n.host}:{n.pg_port} check port {n.rest_port}" for n in nodes
        )
        self.config = root / "haproxy.cfg"
        self.config.write_text(
            "global\n    maxconn 1000\n\n"
            "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 30m\n"
            "    timeout server 30m\n    timeout check 1s\n\n"
            f"listen postgres\n    bind {PROXY_HOST}:{self.port}\n"
            "    option httpchk OPTIONS /primary\n    http-check expect status 200\n"
            "    default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions\n"
            f"{servers}\n"
        )
        self.log = open(root / "haproxy.log", "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(
            [self.binary, "-db", "-f", str(self.config)], stdout=self.log, stderr=subprocess.STDOUT
        )

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql://postgres@{PROXY_HOST}:{self.port}/{database}"

    def stop(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.terminate()
                self.proc.wait(10)
        finally:
            self.log.close()


class HaPlatform(Platform):
    """The chaos suite's platform: two web processes and the workers, each on its own address."""

    webs: list[tuple[subprocess.Popen[bytes], str]]

    @property
    def hooks_url(self) -> str:
        return self.hooks_urls[0]

    @property
    def hooks_urls(self) -> list[str]:
        return [url for _, url in self.webs]

    def start_web(self) -> None:
        self.webs = []
        for i, host in enumerate(WEB_HOSTS):
            port = free_port(host)
            proc = self._spawn(f"web{i}", "serve", "--host", host, "--port", str(port))
            url = f"http://{host}:{port}/hooks/chaos/"
            self.webs.append((proc, url))
            _wait(lambda url=url: httpx.get(url, timeout=1).status_code < 500, 60, f"web process {host}")
        self.web = self.webs[0][0]

    def stop(self) -> None:
        for proc, _ in self.webs[1:] if hasattr(self, "webs") else []:
            if proc.poll() is None:
                proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(10)
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        super().stop()

    def start_worker(self) -> subprocess.Popen[bytes]:
        host = WORKER_HOSTS[len(self.workers) % len(WORKER_HOSTS)]
        env = {**self.env, "AUTOMATE_WORKER_METRICS_HOST": host,
               "AUTOMATE_WORKER_METRICS_PORT": str(free_port(host))}  # fmt: skip
        with open(self.root / f"worker{len(self.workers)}.log", "ab") as log:
            proc = subprocess.Popen(
                [AUTOMATE, "worker", "--lease", str(self.lease), "--poll-interval", "0.5",
                 "--concurrency", str(self.concurrency), "--shutdown-timeout", "5"],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.workers.append(proc)
        return proc


class Topology:
    def __init__(self, replication: Replication | None = None, root: Path | None = None) -> None:
        self.replication = replication or Replication()
        self.root = root or Path(tempfile.mkdtemp(prefix="automate-ha-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)  # the service user reaches its node's directory
        self._cleanup: list[Any] = []
        try:
            self.etcd = Etcd(self.root)
            self._cleanup.append(self.etcd.stop)
            self.nodes = []
            users = {host: self._node_user(f"node-{'ab'[i]}") for i, host in enumerate(NODE_HOSTS)}
            self.firewall: Firewall | None = None
            if netfault.available() is None and all(users.values()):
                self.firewall = Firewall({h: u for h, u in users.items() if u})
                self._cleanup.append(Firewall.remove)
            for i, host in enumerate(NODE_HOSTS):
                node = PatroniNode(
                    f"node-{'ab'[i]}", host, self.root, self.etcd, self.replication, users[host]
                )
                self._cleanup.append(node.stop)
                self.nodes.append(node)
                if i == 0:  # the first bootstraps; the second then clones it
                    _wait(lambda: self.leader() is not None, 90, "a leader")
            self.proxy = HAProxy(self.root, self.nodes)
            self._cleanup.append(self.proxy.stop)
            self.wait_healthy()
            with psycopg.connect(self.proxy.url("postgres"), autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {DATABASE}")
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _node_user(name: str) -> str | None:
        """A user of its own per node as root (partitions need it), else whoever runs the tests."""
        if netfault.available() is None:
            return netfault.node_user(name)
        return service_user()

    def partition(self, node: PatroniNode) -> None:
        if self.firewall is None:
            pytest.skip(
                netfault.available() or "the nodes share one OS user: no partition can tell them apart"
            )
        self.firewall.cut(node.host)

    def heal(self, node: PatroniNode) -> None:
        if self.firewall is not None:
            self.firewall.heal(node.host)

    def leader(self) -> PatroniNode | None:
        for node in self.nodes:
            if node.role() in ("master", "primary"):
                with contextlib.suppress(httpx.HTTPError):
                    if node.rest("/primary").status_code == 200:
                        return node
        return None

    def cluster(self) -> dict[str, Any]:
        for node in self.nodes:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                return dict(node.rest("/cluster").json())
        return {}

    def sync_standby(self) -> str | None:
        for member in self.cluster().get("members", []):
            if member.get("role") == "sync_standby" and member.get("state") in ("running", "streaming"):
                return str(member["name"])
        return None

    def wait_healthy(self, within: float = 90) -> None:
        """A leader, the other node streaming from it (as sync standby in synchronous mode), and
        HAProxy routing to the leader."""

        def ready() -> bool:
            members = self.cluster().get("members", [])
            roles = {"sync_standby"} if self.replication.synchronous else {"replica", "sync_standby"}
            standby_ok = any(
                m.get("role") in roles and m.get("state") in ("running", "streaming") for m in members
            )
            if not (self.leader() and standby_ok):
                return False
            with psycopg.connect(self.proxy.url("postgres"), connect_timeout=2) as conn:
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            return bool(row is not None and not row[0])

        _wait(ready, within, "a healthy cluster", interval=0.25)

    def switchover(self, candidate: PatroniNode) -> None:
        leader = self.leader()
        assert leader is not None
        response = httpx.post(
            f"http://{leader.host}:{leader.rest_port}/switchover",
            content=json.dumps({"leader": leader.name, "candidate": candidate.name}),
            timeout=30,
        )
        response.raise_for_status()

    def close(self) -> None:
        while self._cleanup:
            with contextlib.suppress(Exception):
                self._cleanup.pop()()
        if not os.environ.get("AUTOMATE_HA_KEEP"):
            shutil.rmtree(self.root, ignore_errors=True)
