"""The deployable Django project that serves Django Automate (settings, URLs, ASGI app)."""
