"""PostgreSQL servers from the installed binaries (initdb, pg_basebackup -R): a primary and its
streaming replica, each on a 127.0.0.x address and a free port, small and with fsync on."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from tests.pooler.binaries import pg_bindir, service_user
from tests.pooler.pgbouncer import free_port

SETTINGS = {
    "shared_buffers": "16MB",
    "max_connections": "40",
    "fsync": "on",
    "wal_level": "replica",
    "max_wal_senders": "5",
    "wal_keep_size": "64MB",
    "hot_standby": "on",
    "wal_receiver_status_interval": "1s",
    "log_min_messages": "warning",
}


def _run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    user = service_user()
    return subprocess.run(
        args,
        user=user,
        check=True,
        capture_output=True,
        text=True,
        timeout=kwargs.pop("timeout", 120),
        **kwargs,
    )


class PgNode:
    def __init__(self, datadir: Path, host: str, port: int) -> None:
        self.bindir = pg_bindir()
        self.datadir, self.host, self.port = datadir, host, port

    @classmethod
    def primary(cls, root: Path, host: str = "127.0.0.1") -> PgNode:
        node = cls(root / "primary", host, free_port(host))
        _prepare(root)
        _run(
            [
                str(node.bindir / "initdb"),
                "-D",
                str(node.datadir),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ]
        )
        conf = "".join(f"{k} = '{v}'\n" for k, v in SETTINGS.items())
        with open(node.datadir / "postgresql.conf", "a") as f:
            f.write(conf)
        with open(node.datadir / "pg_hba.conf", "a") as f:
            f.write("host all all 127.0.0.0/8 trust\nhost replication all 127.0.0.0/8 trust\n")
        node.start()
        return node

    def replica(self, root: Path, host: str = "127.0.0.1") -> PgNode:
        node = PgNode(root / "replica", host, free_port(host))
        _run([str(self.bindir / "pg_basebackup"), "-h", self.host, "-p", str(self.port), "-U", "postgres",
              "-D", str(node.datadir), "-R", "-X", "stream", "-c", "fast"])  # fmt: skip
        node.start()
        return node

    def start(self) -> None:
        opts = (
            f"-c listen_addresses={self.host} -c port={self.port} -c unix_socket_directories={self.datadir}"
        )
        _run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-w", "-l", str(self.datadir / "log"),
              "-o", opts, "start"])  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            _run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-w", "-m", mode, "stop"])

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def django_settings(self, database: str = "postgres") -> dict[str, Any]:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": database, "USER": "postgres", "HOST": self.host, "PORT": str(self.port),
            "OPTIONS": {"connect_timeout": 2},
        }  # fmt: skip

    def execute(
        self, sql: str, params: list[Any] | None = None, database: str = "postgres"
    ) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=5) as conn:
            cur = conn.execute(sql.encode(), params)
            return list(cur.fetchall()) if cur.description else []

    def wait_for(self, sql: str, expected: Any, within: float = 15.0, database: str = "postgres") -> None:
        """Poll ``sql`` until its first value is ``expected`` (replication is asynchronous to watch)."""
        deadline = time.monotonic() + within
        last: Any = None
        while time.monotonic() < deadline:
            with contextlib.suppress(psycopg.Error):
                rows = self.execute(sql, database=database)
                last = rows[0][0] if rows else None
                if last == expected:
                    return
            time.sleep(0.05)
        raise AssertionError(
            f"{sql!r} on {self.host}:{self.port} gave {last!r}, not {expected!r}, in {within}s"
        )


def _prepare(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    user = service_user()
    if user is not None:
        shutil.chown(root, user, user)


def temporary_root(prefix: str) -> Path:
    root = Path(tempfile.mkdtemp(prefix=prefix))
    _prepare(root)
    return root
