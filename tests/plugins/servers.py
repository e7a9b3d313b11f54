"""Real HTTP servers on 127.0.0.1 for the network plugins' tests.

:class:`FakeServer` runs a ``ThreadingHTTPServer`` in a thread (so sync and async clients can both
talk to it) and routes ``(method, path)`` to a handler that returns ``(status, headers, body)``.
Every request is recorded with its headers and raw body. Handlers of the protocol fakes (Slack,
Vault, OpenAI, Anthropic) live in the test modules that use them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int = 0  # the client's side of the connection: equal ports, one connection

    def json(self) -> Any:
        return json.loads(self.body or b"null")


Reply = tuple[int, dict[str, str], Any]
Handler = Callable[[Request], Reply]


@dataclass
class FakeServer:
    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    delay: float = 0.0

    def route(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method, path)] = handler

    def reply(self, method: str, path: str, status: int, body: Any = None, **headers: str) -> None:
        self.route(method, path, lambda _req: (status, dict(headers), body))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_port}"

    def start(self) -> FakeServer:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                req = Request(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                    self.client_address[1],
                )  # fmt: skip
                fake.requests.append(req)
                handler = fake.routes.get((self.command, path))
                if fake.delay:
                    time.sleep(fake.delay)
                status, headers, payload = handler(req) if handler else (404, {}, {"error": "no route"})
                if isinstance(payload, bytes):
                    raw = payload
                elif isinstance(payload, str):
                    raw = payload.encode()
                    headers.setdefault("content-type", "text/plain")
                else:
                    raw = json.dumps(payload).encode()
                    headers.setdefault("content-type", "application/json")
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("content-length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up first (timeout tests)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
