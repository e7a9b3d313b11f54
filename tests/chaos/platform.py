"""The platform as operators run it: `automate serve` and `automate worker` processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

AUTOMATE = str(Path(sys.executable).with_name("automate"))
SECRET = "chaos-signing-secret-0123456789"
#: Sent by every delivery in a header; it must never be found in the database or a log.
TOKEN = "chaos-api-token-4f8a1c2e9b7d6053"

DEFINITIONS = """
sources:
  - slug: chaos
    scheme: hmac_sha256
    secret_ref: env:CHAOS_HOOK
workflows:
  - name: effect
    trigger: {{source: chaos}}
    max_attempts: 30
    secrets: [CHAOS_TOKEN]
    steps:{nap}
      - name: deliver
        connector: http
        action: post
        timeout: {timeout}
        params:
          url: {sink}
          headers: {{Authorization: "Bearer {{{{ secret('CHAOS_TOKEN') }}}}"}}
          json: {{event: "{{{{ event.id }}}}", trace: "{{{{ event.trace_id }}}}"}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Platform:
    def __init__(
        self,
        database_url: str,
        sink_url: str,
        root: Path,
        *,
        lease: float = 3.0,
        step_timeout: float = 2.0,
        concurrency: int = 16,
        sleep: float | None = None,
    ) -> None:
        self.root = root
        self.lease = lease
        self.concurrency = concurrency
        self.port = free_port()
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": "asgi.settings",
            "SECRET_KEY": "chaos-suite-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
            "AUTOMATE_SECRET_CHAOS_HOOK": SECRET,
            "AUTOMATE_SECRET_CHAOS_TOKEN": TOKEN,
            "AUTOMATE_HTTP_ALLOWED_HOSTS": "127.0.0.1:*",
            "AUTOMATE_RETRY_BASE_SECONDS": "0.2",
            "AUTOMATE_RETRY_MAX_SECONDS": "2",
            "LOG_LEVEL": "WARNING",
        }
        self.web: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        # with ``sleep``, every run first parks on a durable sleep (a wait and a wake job)
        nap = f"\n      - name: nap\n        sleep: {{for: {sleep}}}" if sleep else ""
        self.definitions = DEFINITIONS.format(timeout=step_timeout, sink=sink_url, nap=nap)

    @property
    def hooks_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/chaos/"

    def _run(self, *args: str) -> None:
        subprocess.run([AUTOMATE, *args], env=self.env, check=True, capture_output=True, timeout=120)

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with open(self.root / f"{name}.log", "ab") as log:  # the child keeps its own descriptor
            return subprocess.Popen([AUTOMATE, *args], env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def setup(self) -> None:
        self._run("migrate")
        path = self.root / "definitions.yaml"
        path.write_text(self.definitions)
        self._run("load", str(path))

    def start_web(self) -> None:
        self.web = self._spawn("web", "serve", "--port", str(self.port))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/hooks/chaos/", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("the web process did not come up")

    def start_worker(self) -> subprocess.Popen[bytes]:
        proc = self._spawn(
            f"worker{len(self.workers)}",
            "worker", "--lease", str(self.lease), "--poll-interval", "0.5",
            "--concurrency", str(self.concurrency), "--shutdown-timeout", "5",
        )  # fmt: skip
        self.workers.append(proc)
        return proc

    def alive_workers(self) -> list[subprocess.Popen[bytes]]:
        return [w for w in self.workers if w.poll() is None]

    def signal_worker(self, proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        if proc.poll() is None:
            proc.send_signal(sig)

    def kill_web(self) -> None:
        if self.web is not None and self.web.poll() is None:
            self.web.kill()
            self.web.wait()

    def stop(self) -> None:
        procs = [p for p in [self.web, *self.workers] if p is not None and p.poll() is None]
        for proc in procs:
            proc.send_signal(signal.SIGCONT)
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
