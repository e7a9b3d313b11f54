"""The ASGI application that uvicorn serves: ``uvicorn asgi.asgi:application``."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asgi.settings")

from automate_core.asgi import build_application

application = build_application()
