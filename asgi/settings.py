"""Settings for the deployable project, read from the environment (12-factor).

Environment variables:

``DATABASE_URL``   PostgreSQL URL (``postgresql://user:pass@host:5432/db``). Required; ``automate``
                   commands start an embedded PostgreSQL and set it when it is missing.
``SECRET_KEY``     Django's signing key. Required when ``DEBUG`` is off; ``automate serve`` refuses a
                   weak one (under 50 characters, the development default, a placeholder).
``REPLICA_DATABASE_URL`` A streaming replica for the console's reads (``DATABASES["replica"]``).
``DEBUG``          ``1``/``true`` turns on debug pages. Off by default.
``ALLOWED_HOSTS``  Comma-separated host names. Defaults to local names only.
``LOG_LEVEL``      Root log level (``INFO``). ``LOG_FORMAT``: ``json`` or ``plain`` (default: plain
                   on a terminal, json otherwise).
``AUTOMATE_METRICS_TOKEN``, ``AUTOMATE_METRICS_ALLOWED_IPS`` (none by default unless ``DEBUG``),
``AUTOMATE_WORKER_METRICS_PORT``, ``AUTOMATE_WORKER_METRICS_HOST``: who may read ``/metrics``, and
the worker's metrics port
                   (docs/operations.md).
``AUTOMATE_*``     Platform settings, typed and checked at start; see ``automate_core.conf``.
``AUTOMATE_HOME``  The project's data folder (default: the nearest ``.automate/``); see
                   ``automate_core.embedded``.

The ``automate`` command also reads these from the project's ``.env`` file (the real environment
wins; ``automate_core.cli.devenv``); ``uvicorn asgi.asgi:application`` reads only the environment.
"""

from __future__ import annotations

import os

from automate_core.conf import Defaults, database_from_url, env_bool, env_int, env_list, settings_from_environ
from automate_core.embedded import home as project_home
from automate_core.observability.logs import default_format, logging_config

DEBUG = env_bool("DEBUG", default=False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and os.environ.get("AUTOMATE_ALLOW_DEV_SECRET_KEY") != "1":
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment (for example "
            "SECRET_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(50))')), "
            "or set DEBUG=1 for local development."
        )
    SECRET_KEY = "django-insecure-dev-only-" + "x" * 40

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "servestatic",
    "ninja",  # the API's docs page (/api/v1/docs) with its own Swagger UI files, no CDN
    "automate_core",
    "automate_governance",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",  # /static/ under uvicorn, DEBUG or not
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "automate_core.db_router.ReplicaReadsMiddleware",  # GET/HEAD reads on DATABASES["replica"]
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "asgi.urls"
ASGI_APPLICATION = "asgi.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": database_from_url(os.environ.get("DATABASE_URL", ""))}
# A streaming replica for the console's and the API's reads (automate_core.db_router), and
# PgBouncer in transaction mode in front of DATABASE_URL (docs/operations.md, "Scaling past one
# machine"): Django's server-side cursors (.iterator()) need a session, so they are turned off.
if os.environ.get("REPLICA_DATABASE_URL"):
    DATABASES["replica"] = database_from_url(os.environ["REPLICA_DATABASE_URL"])
    DATABASES["replica"]["OPTIONS"].setdefault("connect_timeout", 2)
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
if env_bool("AUTOMATE_DB_TRANSACTION_POOLING", default=False):
    for _alias in DATABASES.values():
        _alias["DISABLE_SERVER_SIDE_CURSORS"] = True
DATABASE_ROUTERS = ["automate_core.db_router.ReplicaRouter"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = os.environ.get("STATIC_ROOT") or str(project_home(create=False) / "static")
# The admin's CSS and JS are served by the web processes themselves (ServeStatic, an async
# middleware: no thread hop under uvicorn), straight from the installed packages: no collectstatic
# step, and it works on a read-only filesystem. Files are indexed once at startup and sent with
# a one-minute Cache-Control (not hashed names: nothing to build). Behind a CDN or a proxy that
# serves /static/ itself, run collectstatic into STATIC_ROOT and serve that directory instead.
SERVESTATIC_USE_FINDERS = True

# One JSON object per line with the event's trace_id, secrets masked (plain lines on a terminal,
# or with LOG_FORMAT=plain); see automate_core.observability.logs.
LOGGING = logging_config(os.environ.get("LOG_LEVEL", "INFO"), default_format())

# Django's tasks framework (@task functions) runs on the outbox workers: automate_core.tasks.
TASKS = {"default": {"BACKEND": "automate_core.tasks.backend.OutboxTaskBackend"}}

# Hosts (names, addresses or networks) the http connector may call although they are private;
# who may read /metrics (docs/operations.md), and where a worker serves its own. The defaults;
# AUTOMATE_* environment variables (typed, checked) are applied below.
AUTOMATE_HTTP_ALLOWED_HOSTS = list(Defaults.HTTP_ALLOWED_HOSTS)
AUTOMATE_METRICS_TOKEN = Defaults.METRICS_TOKEN
# none by default in production: a reverse proxy on the same host would make every visitor loopback
AUTOMATE_METRICS_ALLOWED_IPS = ["127.0.0.1", "::1"] if DEBUG else list(Defaults.METRICS_ALLOWED_IPS)
AUTOMATE_WORKER_METRICS_PORT = Defaults.WORKER_METRICS_PORT
AUTOMATE_WORKER_METRICS_HOST = Defaults.WORKER_METRICS_HOST

# --- HTTPS and security headers: what `manage.py check --deploy` asks for -----------------------
# On unless DEBUG is on (local development over plain HTTP; `automate up` sets DEBUG=1).
# Behind a load balancer that terminates TLS, set AUTOMATE_BEHIND_PROXY=1 so Django trusts its
# X-Forwarded-Proto header; set it only when the proxy overwrites that header on every request.
_HTTPS = env_bool("AUTOMATE_HTTPS", default=not DEBUG)
SECURE_SSL_REDIRECT = _HTTPS
SESSION_COOKIE_SECURE = _HTTPS
CSRF_COOKIE_SECURE = _HTTPS
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", default=31536000 if _HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _HTTPS
# Preloading is an operator's decision that cannot be undone quickly (browsers ship the list);
# opt in with SECURE_HSTS_PRELOAD=1. Its deploy-check warning (security.W021) is silenced for that reason.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", default=[])
if env_bool("AUTOMATE_BEHIND_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Every platform setting can also come from the environment (AUTOMATE_<NAME>, typed; see
# automate_core/conf.py). Applied last, so the environment wins over the defaults above.
globals().update(settings_from_environ())
