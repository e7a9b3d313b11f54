"""The package's tests: the platform's contract suites, plus its own tests beside them."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

from acme_automate.secrets import JsonFileSecretsBackend
from acme_automate.tickets import AcmeTicketsConnector

from automate_testing.contracts import ConnectorContractTest, SecretsBackendContractTest


class TestAcmeTickets(ConnectorContractTest):
    adapter_cls = AcmeTicketsConnector
    valid_config: ClassVar[dict[str, Any]] = {"default_priority": "high"}
    invalid_configs: ClassVar[list[dict[str, Any]]] = [{"default_priority": "urgent"}]

    def failure_cases(self) -> list[tuple[str, dict[str, Any]]]:
        # the network is blocked during the contract checks: an unreachable API must be a ConnectorError
        return [
            ("create_ticket", {"base_url": "https://helpdesk.example.com", "token": "t", "title": "x"}),
            ("create_ticket", {"base_url": "ftp://nope", "token": "t", "title": "x"}),
        ]

    def test_create_ticket_against_a_local_api(self) -> None:
        seen: list[dict[str, Any]] = []

        class Api(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                seen.append({"path": self.path, "auth": self.headers["authorization"], "body": body})
                answer = json.dumps({"id": 7, "url": "https://helpdesk.example.com/t/7"}).encode()
                self.send_response(201)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        server = HTTPServer(("127.0.0.1", 0), Api)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        from django.test import override_settings

        params = {"base_url": f"http://127.0.0.1:{server.server_port}", "token": "tok", "title": "Broken"}
        with override_settings(AUTOMATE_HTTP_ALLOWED_HOSTS=["127.0.0.1:*"]):
            result = self.run_async(
                AcmeTicketsConnector().aexecute("create_ticket", params, self.make_context())
            )
        self.assertEqual(result, {"id": 7, "url": "https://helpdesk.example.com/t/7"})
        self.assertEqual(seen[0]["auth"], "Bearer tok")
        self.assertEqual(seen[0]["body"], {"title": "Broken", "body": "", "priority": "normal"})

    @staticmethod
    def run_async(coro: Any) -> Any:
        import asyncio

        return asyncio.run(coro)


class TestJsonFileSecrets(SecretsBackendContractTest):
    backend_cls = JsonFileSecretsBackend
    secrets: ClassVar[dict[str, str]] = {"HELPDESK_TOKEN": "tok-123456", "MULTI": "line one\nline two"}

    def populate(self, backend: Any) -> None:
        handle, self.path = tempfile.mkstemp(suffix=".json")
        with os.fdopen(handle, "w") as f:
            json.dump(self.secrets, f)
        os.environ["ACME_SECRETS_FILE"] = self.path

    def cleanup(self, backend: Any) -> None:
        os.environ.pop("ACME_SECRETS_FILE", None)
        os.unlink(self.path)

    def test_missing_file_is_unavailable_not_missing(self) -> None:
        from automate_core.exceptions import SecretsBackendUnavailable

        os.environ["ACME_SECRETS_FILE"] = self.path + ".gone"
        with self.assertRaises(SecretsBackendUnavailable):
            JsonFileSecretsBackend().get_secret("HELPDESK_TOKEN")
