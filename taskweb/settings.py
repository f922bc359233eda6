"""Taskweb site settings, read from the environment.

Everything that differs between a laptop and a cluster comes from environment
variables: DATABASE_URL, SECRET_KEY, DEBUG, ALLOWED_HOSTS, REDIS_URL.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("TASKWEB_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def secret_key() -> str:
    """Use SECRET_KEY from the environment, else one generated once and kept in var/."""
    if key := os.environ.get("SECRET_KEY"):
        return key
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = secret_key()
DEBUG = env_bool("DEBUG")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    # queues comes before channels so that its runworker command wins the name.
    "queues",
    "daphne",
    "channels",
    "django_htmx",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "taskweb",
]
try:
    import django.tasks  # noqa: F401  (Django 6.x ships the Tasks framework)
except ImportError:
    INSTALLED_APPS.append("django_tasks")

MIDDLEWARE = [
    # Outermost, so that every line a request causes carries its id.
    "queues.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "taskweb.urls"
ASGI_APPLICATION = "taskweb.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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


def database_config() -> dict:
    """PostgreSQL (or another engine) from DATABASE_URL; a tuned SQLite file otherwise."""
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'taskweb.sqlite3'}"
    config = dj_database_url.parse(url, conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # IMMEDIATE takes the write lock at BEGIN, so concurrent writers queue on the
        # busy timeout instead of failing with "database is locked" on lock upgrade.
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        config["CONN_MAX_AGE"] = 0 if config["NAME"] == ":memory:" else config["CONN_MAX_AGE"]
        # Worker processes in tests must see the test database: keep it in a file.
        config["TEST"] = {"NAME": str(VAR_DIR / "test_taskweb.sqlite3")}
    config["CONN_HEALTH_CHECKS"] = True
    # Behind PgBouncer in transaction mode a server-side cursor may land on another
    # server connection: set DISABLE_SERVER_SIDE_CURSORS=1 there (docs/deploy.md).
    config["DISABLE_SERVER_SIDE_CURSORS"] = env_bool("DISABLE_SERVER_SIDE_CURSORS")
    return config


DATABASES = {"default": database_config()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

TASKS = {
    "default": {
        "BACKEND": "queues.backend.QueueBackend",
        # An empty list lets the backend accept any queue; the queues table decides.
        "QUEUES": [],
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
SERVE_STATIC = env_bool("SERVE_STATIC", True)

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "taskweb@localhost")

SESSION_COOKIE_HTTPONLY = True
# Behind HTTPS (nginx terminating TLS), cookies are sent over HTTPS only.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES")
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SAMESITE = "Lax"

# Queue behaviour; every value can be overridden from the environment.
QUEUES_AUTO_CREATE = env_bool("QUEUES_AUTO_CREATE")
QUEUES_ENCRYPT_ALL = env_bool("QUEUES_ENCRYPT_ALL")  # keys: TASKWEB_PAYLOAD_KEYS (README)
QUEUES_METRICS_TOKEN = os.environ.get("QUEUES_METRICS_TOKEN", "")
TASKWEB_MEDIA_DIR = VAR_DIR / "media"

# LOG_FORMAT=json writes one JSON object per line (for log shippers); the default
# is plain text. Either way, lines about a job carry its id, queue, task, attempt
# and worker, and lines caused by a request carry the request id.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain").strip().lower()
if LOG_FORMAT not in {"plain", "json"}:
    raise ValueError(f"LOG_FORMAT must be 'plain' or 'json', not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "queues.logs.ContextFilter"}},
    "formatters": {
        "plain": {"()": "queues.logs.PlainFormatter"},
        "json": {"()": "queues.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]}
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Secrets for completion webhooks and the TCP protocol come only from the environment.
QUEUES_WEBHOOK_SECRET = os.environ.get("QUEUES_WEBHOOK_SECRET", "")

# REST API sign-in with an identity provider's JWTs (README "Signing in with an identity
# provider"): off until the issuer, the audience and the JWKS URL are all set.
for _name in (
    "QUEUES_OIDC_ISSUER",
    "QUEUES_OIDC_AUDIENCE",
    "QUEUES_OIDC_JWKS_URL",
    "QUEUES_OIDC_USER_CLAIM",
    "QUEUES_OIDC_USER_FIELD",
    "QUEUES_OIDC_ROLES_CLAIM",
    "QUEUES_OIDC_CREATE_USERS",
):
    if _name in os.environ:
        globals()[_name] = os.environ[_name].strip()
if "QUEUES_OIDC_ROLES" in os.environ:
    # "provider-role=scope,...": a pair without "=" maps to no scope, which `check` reports.
    QUEUES_OIDC_ROLES = {
        role.strip(): scope.strip()
        for role, _, scope in (pair.partition("=") for pair in os.environ["QUEUES_OIDC_ROLES"].split(","))
        if role.strip()
    }

# Worker tuning from the environment (see queues/conf.py for what each one does).
for _name, _cast in {
    "QUEUES_API_MAX_BODY": int,
    "QUEUES_PROTOCOL_MAX_LINE": int,
    "QUEUES_PROTOCOL_LEASE": float,
    "QUEUES_PROTOCOL_AUTH_TIMEOUT": float,
    "QUEUES_PROTOCOL_IDLE_TIMEOUT": float,
    "QUEUES_PROTOCOL_MAX_CONNECTIONS": int,
    "QUEUES_HEARTBEAT_INTERVAL": float,
    "QUEUES_POLL_INTERVAL": float,
    "QUEUES_POLL_MIN": float,
    "QUEUES_POLL_MAX": float,
    "QUEUES_RETRY_BASE": float,
    "QUEUES_SHUTDOWN_GRACE": float,
    "QUEUES_PRUNE_INTERVAL": float,
    "QUEUES_CIRCUIT_FAILURE_RATIO": float,
    "QUEUES_CIRCUIT_MIN_CALLS": int,
    "QUEUES_CIRCUIT_WINDOW": float,
    "QUEUES_CIRCUIT_COOLDOWN": float,
    "QUEUES_AUTOSCALE_IDLE": float,
    "QUEUES_OIDC_LEEWAY": float,
    "QUEUES_LISTEN": lambda value: value.strip().lower() in {"1", "true", "yes", "on"},
}.items():
    if _name in os.environ:
        globals()[_name] = _cast(os.environ[_name])

# --- Security: production profile, Content-Security-Policy, login throttling ----------------
# (README "Security"; docs/deploy.md). Kept together so the whole posture reads in one place.
from datetime import timedelta  # noqa: E402

from csp.constants import NONE, SELF  # noqa: E402

# ninja: the API docs load Swagger UI from its own static files, not from a CDN.
INSTALLED_APPS += ["ninja", "csp", "axes"]
# CSP outside axes, so that the lock-out page carries the policy too; axes last, as it asks.
MIDDLEWARE += ["csp.middleware.CSPMiddleware", "axes.middleware.AxesMiddleware"]

# TASKWEB_PRODUCTION=1: a site behind nginx terminating TLS. Everything `check --deploy`
# asks for, and refusals for what would make it unsafe or break a cluster.
TASKWEB_PRODUCTION = env_bool("TASKWEB_PRODUCTION")
if TASKWEB_PRODUCTION:
    from django.core.exceptions import ImproperlyConfigured

    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be off when TASKWEB_PRODUCTION is on.")
    if not os.environ.get("SECRET_KEY"):
        # A key generated per host would log users out whenever another node answers.
        raise ImproperlyConfigured(
            "TASKWEB_PRODUCTION needs SECRET_KEY in the environment, the same on every host."
        )
    # nginx sets X-Forwarded-Proto on every request it proxies (overwriting a client's), and
    # the web nodes listen only where nginx reaches them.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    # Load balancers and Prometheus probe the web nodes directly, over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^health$", r"^metrics$"]
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    # Turning an HSTS option off is a decision, not an oversight: `check --deploy` stays quiet.
    SILENCED_SYSTEM_CHECKS = [
        *([] if SECURE_HSTS_INCLUDE_SUBDOMAINS else ["security.W005"]),
        *([] if SECURE_HSTS_PRELOAD else ["security.W021"]),
    ]

# Content-Security-Policy on every answer (console, login, admin, API docs), on a laptop too:
# every asset is served from the site itself, so it costs nothing and catches a stray inline
# script before production does.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        # 'self' covers ws:// and wss:// to the same host and port (CSP Level 3): the live socket.
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# Login throttling (django-axes) for the console's and the admin's login pages: after
# LOGIN_FAILURE_LIMIT failures for one username, or from one address, logging in as that
# user or from that address is refused for LOGIN_LOCKOUT_SECONDS, even with the right password.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(seconds=float(os.environ.get("LOGIN_LOCKOUT_SECONDS", "900")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "queues/login_locked.html"
# Failed attempts are kept (that is the throttle); a row per successful login is not needed.
AXES_DISABLE_ACCESS_LOG = True
# Its start-up banner would open the output of every manage.py command.
LOGGING["loggers"]["axes.apps"] = {"level": "WARNING"}
