"""The side-effect sink: an HTTP server on 127.0.0.1 that the workflow's http step posts to.

It counts every delivery per event (the side effects the platform caused) and can misbehave on
request: hang, fail a share of requests with 500, or answer slowly.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Behaviour:
    hang_ratio: float = 0.0  # share of requests that never get an answer (until the client gives up)
    fail_ratio: float = 0.0  # share answered 500
    delay: float = 0.0  # seconds before answering


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 drops a burst of new connections (the client reads a reset)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (a step timeout) is expected here; anything else is printed."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Sink:
    def __init__(self) -> None:
        self.behaviour = Behaviour()
        self.deliveries: Counter[int] = Counter()  # event id -> deliveries answered 200
        self.attempts: Counter[int] = Counter()  # event id -> requests seen (any answer)
        self.authorization: set[str] = set()  # Authorization headers seen
        self.lock = threading.Lock()
        self.release = threading.Event()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body: Any = json.loads(self.rfile.read(length) or b"{}")
                event = int(body.get("event", -1))
                b = sink.behaviour
                with sink.lock:
                    sink.attempts[event] += 1
                    sink.authorization.add(self.headers.get("authorization", ""))
                roll = random.random()
                if roll < b.hang_ratio:
                    sink.release.wait(60)
                    self._answer(503)
                    return
                if b.delay:
                    time.sleep(b.delay)
                if roll < b.hang_ratio + b.fail_ratio:
                    self._answer(500)
                    return
                with sink.lock:
                    sink.deliveries[event] += 1
                self._answer(200)

            def _answer(self, status: int) -> None:
                payload = b'{"ok": true}' if status == 200 else b'{"ok": false}'
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (step timeout)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/effect"

    def calm(self) -> None:
        self.behaviour = Behaviour()
        self.release.set()
        self.release = threading.Event()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
