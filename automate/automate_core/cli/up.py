from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
from argparse import ArgumentParser
from collections.abc import Iterator
from importlib import resources
from typing import Any, TextIO

from django.core.management import call_command

from automate_core import embedded

HELP = "Run everything for local use: migrate, load the demo, serve web and worker in one process."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("--host", default=os.environ.get("AUTOMATE_HOST", "127.0.0.1"))
    parser.add_argument(
        "--port",
        type=int,
        default=os.environ.get("AUTOMATE_PORT", "8000"),
        help="(default $AUTOMATE_PORT or 8000)",
    )
    parser.add_argument("--no-demo", action="store_true", help="Do not load the demo workflow.")


def _kept_secret(name: str, size: int = 24) -> str:
    path = embedded.home() / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(size))
        path.chmod(0o600)
    return path.read_text().strip()


def _admin_password() -> str:
    from django.contrib.auth import get_user_model

    password = _kept_secret("admin-password", 12)
    user_model = get_user_model()
    user = user_model.objects.filter(username="admin").first()
    if user is None:
        user_model.objects.create_superuser("admin", "admin@localhost", password)
    return password


def _instructions(host: str, port: int, password: str, demo_secret: str | None) -> str:
    from automate_core.start import demo_curl

    base = f"http://{host}:{port}"
    lines = [
        "",
        f"Django Automate is running on {base}/ (web and worker; Ctrl-C stops both).",
        f"  Admin:  {base}/admin/   user: admin   password: {password}",
        f"          (the password is kept in {embedded.home() / 'admin-password'})",
    ]
    if demo_secret:
        lines += [
            "  Send a signed test webhook:",
            *("    " + line for line in demo_curl(base, demo_secret).splitlines()),
            "  Then see the run:  .venv/bin/automate runs    (or the console)",
        ]
    from automate_core.cli import devenv

    env_file = devenv.dotenv_path() or embedded.home().parent / ".env"
    lines += [
        f"  Settings and secrets: {env_file} (read again when it changes: no restart needed)",
        f"    http steps may call: {os.environ.get('AUTOMATE_HTTP_ALLOWED_HOSTS', '') or 'public hosts only'}"
        "  (AUTOMATE_HTTP_ALLOWED_HOSTS)",
        '    a new secret: printf %s "$VALUE" | automate secrets set NAME'
        "   (or AUTOMATE_SECRET_NAME=... in .env)",
    ]
    return "\n".join(lines) + "\n"


def run(options: dict[str, Any], out: TextIO) -> int:
    call_command("migrate", interactive=False, verbosity=0)
    demo_secret = None
    if not options["no_demo"]:
        from automate_core import definitions

        demo_secret = os.environ.setdefault(
            "AUTOMATE_SECRET_DEMO_WEBHOOK", _kept_secret("demo-webhook-secret")
        )
        with resources.as_file(resources.files("automate_core.demo") / "demo.yaml") as path:
            definitions.load_file(path)
    password = _admin_password()
    out.write(_instructions(options["host"], options["port"], password, demo_secret))
    out.flush()
    asyncio.run(serve_all(options["host"], options["port"]))
    return 0


async def serve_all(host: str, port: int) -> None:
    """uvicorn and the worker pool in one event loop; SIGINT/SIGTERM stop both gracefully."""
    import uvicorn

    from automate_core import db
    from automate_core.worker.pool import WorkerPool

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # signals are handled below
            yield

    config = uvicorn.Config("asgi.asgi:application", host=host, port=port, log_level="warning", lifespan="on")
    server = Server(config)
    pool = WorkerPool()

    def on_signal() -> None:
        server.should_exit = True
        pool.stop()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    worker = asyncio.create_task(pool.run())
    from automate_core.schedules import service as schedules

    scheduler = asyncio.create_task(schedules.run(pool.stopping))
    from automate_core.cli import devenv

    watcher = asyncio.create_task(devenv.watch_dotenv(pool.stopping), name="automate-dotenv")
    try:
        await server.serve()
    finally:
        pool.stop()
        await worker
        await scheduler
        await watcher
        await db.close_pool()
