from __future__ import annotations

import os
from argparse import ArgumentParser
from typing import Any, TextIO

HELP = "Serve the web platform (webhooks, admin) with uvicorn."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("--host", default=os.environ.get("AUTOMATE_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("AUTOMATE_PORT", "8000")))
    parser.add_argument("--workers", type=int, default=1, help="Web processes (uvicorn --workers).")
    parser.add_argument("--log-level", default="warning")


def uvicorn_options(options: dict[str, Any]) -> dict[str, Any]:
    return {
        "host": options["host"],
        "port": options["port"],
        "workers": options.get("workers", 1),
        "log_level": options.get("log_level", "warning"),
        "lifespan": "on",
        "proxy_headers": True,
        "server_header": False,
        "timeout_keep_alive": 5,
        "timeout_graceful_shutdown": 30,
    }


def run(options: dict[str, Any], out: TextIO) -> int:
    import uvicorn

    out.write(f"Serving on http://{options['host']}:{options['port']}/\n")
    out.flush()
    uvicorn.run("asgi.asgi:application", **uvicorn_options(options))
    return 0
