"""Settings for the test suite: the deployable project's, with test-only environment defaults.

Without ``DATABASE_URL`` the tests start the embedded PostgreSQL (``.automate/test-pgdata``).
"""

from __future__ import annotations

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("AUTOMATE_HTTP_ALLOWED_HOSTS", "127.0.0.1:*")  # test servers use any port
# the platform processes the tests start read no developer's .env nor the checkout's dev defaults
os.environ.setdefault("AUTOMATE_DOTENV", "0")
os.environ.setdefault("AUTOMATE_SECRETS_BACKENDS", '{"env": {"BACKEND": "env"}}')
if not os.environ.get("DATABASE_URL"):
    from automate_core.embedded import ensure_database_url

    ensure_database_url("test-pgdata")

from asgi.settings import *  # noqa: F403

AUTOMATE_POLL_INTERVAL = 0.2
AUTOMATE_RETRY_BASE_SECONDS = 0.05
AUTOMATE_RETRY_MAX_SECONDS = 0.2
AUTOMATE_SOURCE_CACHE_TTL = 0.0
AUTOMATE_SECRETS_CACHE_TTL = 0.0
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# the test client speaks plain HTTP to "testserver"; the security tests turn HTTPS back on
SECURE_SSL_REDIRECT = False
