"""A PgBouncer of the test's own, in transaction mode, on 127.0.0.1 and a free port."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from tests.pooler.binaries import require, service_user


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class PgBouncer:
    """``databases`` maps a name clients use to libpq settings of the server (``*``: any name)."""

    def __init__(
        self,
        databases: dict[str, str],
        *,
        host: str = "127.0.0.1",
        pool_size: int = 20,
        root: Path | None = None,
        run_as: str | None = None,
    ) -> None:
        """``run_as``: the system user when started as root (default ``postgres``); a cluster's own
        user reaches that cluster's Unix socket."""
        self.binary = require("pgbouncer")
        self.user = (run_as or service_user()) if os.geteuid() == 0 else None
        self.host = host
        self.port = free_port(host)
        self.root = root or Path(tempfile.mkdtemp(prefix="automate-pgbouncer-"))
        self.root.mkdir(parents=True, exist_ok=True)
        if self.user:
            shutil.chown(self.root, self.user)
        (self.root / "users.txt").write_text('"postgres" ""\n')
        entries = "\n".join(f"{name} = {spec}" for name, spec in databases.items())
        self.ini = self.root / "pgbouncer.ini"
        self.ini.write_text(
            f"[databases]\n{entries}\n\n[pgbouncer]\n"
            f"listen_addr = {host}\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.root / 'users.txt'}\nadmin_users = postgres\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {pool_size}\nmax_client_conn = 1000\n"
            "ignore_startup_parameters = extra_float_digits\n"
            "server_login_retry = 1\n"
            f"logfile = {self.root / 'pgbouncer.log'}\npidfile = {self.root / 'pgbouncer.pid'}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        args = [self.binary, *(["-u", self.user] if self.user else []), str(self.ini)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"pgbouncer exited ({self.proc.returncode}): {err}{self.log()}")
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), 0.2):
                return
            time.sleep(0.05)
        raise RuntimeError(f"pgbouncer did not listen on {self.host}:{self.port}: {self.log()}")

    def url(self, database: str) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def log(self) -> str:
        path = self.root / "pgbouncer.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def admin(self, command: str) -> list[dict[str, Any]]:
        """A command of PgBouncer's admin console (``SHOW STATS``, ``SHOW SERVERS`` ...)."""
        with psycopg.connect(self.url("pgbouncer"), autocommit=True, prepare_threshold=None) as conn:
            cur = conn.cursor(row_factory=psycopg.rows.dict_row)
            cur.execute(command)  # the admin console speaks the simple query protocol only
            return list(cur.fetchall()) if cur.description else []

    def transactions(self, database: str) -> int:
        """Transactions PgBouncer has carried for ``database`` so far."""
        return sum(
            int(row["total_xact_count"]) for row in self.admin("SHOW STATS") if row["database"] == database
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
