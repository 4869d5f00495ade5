"""Settings for Cortex Hub, read through one django-environ object (12-factor).

The embedded default needs no environment at all: SQLite under ./var/, the in-memory channel
layer, and a secret key and field key generated once for this install into var/ (0600). With
CORTEX_DEBUG off the hub refuses to start without CORTEX_SECRET_KEY and CORTEX_FIELD_KEYS.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Callable
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from servestatic.compress import Compressor

from cortex import local_state

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(str(BASE_DIR / ".env"), overwrite=False)

# Local state of the embedded install (SQLite, media, generated keys): private to this user.
VAR_DIR: Path = Path(env.str("CORTEX_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG: bool = env.bool("CORTEX_DEBUG", default=True)


def _required_in_production(name: str, generate: Callable[[], str]) -> str:
    value = env.str(name, default="")
    if value:
        return value
    if DEBUG:
        # An embedded install generates its own key once into var/ (0600); none ships in code.
        file_name = name.removeprefix("CORTEX_").lower()
        return local_state.install_secret(local_state.private_dir(VAR_DIR), file_name, generate)
    # One line, naming the variable: the operator sees exactly what is missing.
    raise ImproperlyConfigured(f"{name} must be set when CORTEX_DEBUG is off.")


SECRET_KEY: str = _required_in_production("CORTEX_SECRET_KEY", local_state.new_secret_key)
SECRET_KEY_FALLBACKS: list[str] = env.list("CORTEX_SECRET_KEY_FALLBACKS", default=[])
_DEFAULT_SQLITE = VAR_DIR / "cortex.sqlite3"
FIELD_KEYS: list[str] = [
    k.strip()
    for k in _required_in_production(
        "CORTEX_FIELD_KEYS", local_state.field_keys_generator(_DEFAULT_SQLITE)
    ).split(",")
    if k.strip()
]

ALLOWED_HOSTS: list[str] = env.list(
    "CORTEX_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"]
)
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CORTEX_CSRF_TRUSTED_ORIGINS", default=[])
PUBLIC_URL: str = env.str("CORTEX_PUBLIC_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "servestatic",  # its configuration checks; files are served by cortex.static in cortex.asgi
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc as static files (no CDN)
    "channels",
    "mozilla_django_oidc",
    "cortex.apps.CortexConfig",
    "accounts",
    "providers",
    "preferences",
    "mesh",
    "tools",
    "sessions_app",
    "agents",
    "workspaces",
    "console",
]

# `cortex.patches.django_middleware.*` are Django's own with their hooks run on the event loop
# (no thread hop each). Security, CSRF and X-Frame-Options stay Django's: `check --deploy` looks
# for those exact paths before it checks the settings they read.
MIDDLEWARE = [
    "cortex.middleware.RequestIdMiddleware",
    "cortex.middleware.ApiErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "cortex.patches.django_middleware.SessionMiddleware",
    "cortex.patches.django_middleware.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "cortex.patches.django_middleware.AuthenticationMiddleware",
    "cortex.patches.django_middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "cortex.urls"
ASGI_APPLICATION = "cortex.asgi.application"
AUTH_USER_MODEL = "accounts.User"

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

DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{_DEFAULT_SQLITE}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The database holds live session keys: 0600 (and its -wal/-shm with it), var/ 0700.
    if Path(DATABASES["default"]["NAME"]) == _DEFAULT_SQLITE:
        local_state.private_dir(VAR_DIR)
    local_state.private_sqlite(Path(DATABASES["default"]["NAME"]))
    # WAL and a busy timeout let the web and gRPC threads of one process share the file.
    # synchronous=NORMAL is SQLite's recommended pairing with WAL: a commit survives any crash
    # of the hub and the file stays consistent, but the last commits before a power cut or an
    # OS crash may be lost. FULL syncs the log on every commit (about 0.25 ms each here);
    # CORTEX_SQLITE_SYNCHRONOUS=FULL chooses it. PostgreSQL follows its own settings.
    # A checkpoint every 4,000 log pages (16 MB) instead of 1,000: a heartbeat flush rewrites
    # the same node rows each second, so fewer checkpoints copy each page fewer times.
    sqlite_sync = env.str("CORTEX_SQLITE_SYNCHRONOUS", default="NORMAL").upper()
    if sqlite_sync not in ("NORMAL", "FULL", "EXTRA"):
        raise ImproperlyConfigured("CORTEX_SQLITE_SYNCHRONOUS must be NORMAL, FULL or EXTRA.")
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": (
                f"PRAGMA journal_mode=WAL; PRAGMA synchronous={sqlite_sync};"
                " PRAGMA wal_autocheckpoint=4000; PRAGMA journal_size_limit=33554432;"
            ),
        }
    )
# The gRPC and web processes run many short units of work; reconnecting for each one costs
# more than the work. runmesh does its database work in one thread, which keeps a persistent
# connection. Under ASGI, Django runs every request in a thread of its own, so a persistent
# connection would be opened per request and dropped with its thread: PostgreSQL gets a pool
# that the process's threads share instead (Django requires CONN_MAX_AGE=0 with it).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CORTEX_DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DB_POOL_SIZE: int = env.int("CORTEX_DB_POOL_SIZE", default=10)
    if DB_POOL_SIZE > 0:
        # A request waits this long for a pooled connection; while the database is down it
        # then answers 503 `database_unavailable` (with Retry-After), never hangs for long.
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": DB_POOL_SIZE,
            "timeout": env.float("CORTEX_DB_POOL_TIMEOUT", default=10.0),
            # Keep trying to refill the pool through a long outage (psycopg_pool's default
            # gives up on a slot after 5 minutes).
            "reconnect_timeout": 24 * 3600.0,
        }
        DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Django's backend whose pool refills quickly after an outage (cortex/patches/postgresql/).
    DATABASES["default"]["ENGINE"] = "cortex.patches.postgresql"
    # Every connection is checked before use (with the pool: on checkout, which psycopg_pool
    # does for Django when this is on), so a connection the server dropped (a restart,
    # "terminating connection due to administrator command") is replaced, not handed to a
    # request.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # A database host that does not answer fails a connection attempt in seconds, not minutes.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("CORTEX_DB_CONNECT_TIMEOUT", default=5)
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL: str = env.str("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "cortex.patches.channels_redis_layer.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "capacity": 1000, "expiry": 30},
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1000}}
    }

CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# `collectstatic` writes here (`make run` and the image build run it); served by cortex.static.
STATIC_ROOT = env.path("CORTEX_STATIC_ROOT", default=str(VAR_DIR / "static"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed names (cache forever, busted on change) plus gzip and Brotli copies.
    "staticfiles": {"BACKEND": "servestatic.storage.CompressedManifestStaticFilesStorage"},
}
# While DEBUG, files come from the apps' static/ folders; otherwise from the collected manifest.
# The table is built once at startup (a restart picks up edits): no lookup thread per request.
SERVESTATIC_AUTOREFRESH = False
SERVESTATIC_ALLOW_ALL_ORIGINS = False  # only the hub's own pages load them
# Source maps (only a browser's developer tools fetch them) are not worth compressing.
SERVESTATIC_SKIP_COMPRESS_EXTENSIONS = (
    *Compressor.SKIP_COMPRESS_EXTENSIONS,
    "map",
)
MEDIA_ROOT = env.path("CORTEX_MEDIA_ROOT", default=str(VAR_DIR / "media"))
MEDIA_URL = "media/"
# Uploads and staged pushes to nodes are readable by the hub's user only.
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700
LOGIN_URL = "/console/login/"  # password form + OIDC link; leads to /console/

# --- security -------------------------------------------------------------------------------
# Proxies (CIDRs) whose X-Forwarded-For / -Proto headers are believed; from any other peer
# those headers are dropped (cortex/proxies.py). Empty: the TCP peer is the client.
TRUSTED_PROXIES: list[str] = [
    c.strip() for c in env.list("CORTEX_TRUSTED_PROXIES", default=[]) if c.strip()
]
for _cidr in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_cidr, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"CORTEX_TRUSTED_PROXIES: {_cidr!r} is not a CIDR.") from None
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("CORTEX_SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("CORTEX_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]

# --- REST -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "cortex.api.authentication.CsrfSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "cortex.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "cortex.api.schema.CortexAutoSchema",
    "EXCEPTION_HANDLER": "cortex.api.exceptions.exception_handler",
    "DEFAULT_METADATA_CLASS": "cortex.api.metadata.CortexMetadata",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Throttles key on REMOTE_ADDR, which cortex.proxies already resolved: never re-read XFF.
    "NUM_PROXIES": 0,
    "DEFAULT_THROTTLE_RATES": {
        "login_ip": env.str("CORTEX_LOGIN_RATE_IP", default="30/min"),
        "login_account": env.str("CORTEX_LOGIN_RATE_ACCOUNT", default="5/min"),
        "speech": env.str("CORTEX_SPEECH_RATE", default="60/min"),
        "transcribe": env.str("CORTEX_TRANSCRIBE_RATE", default="30/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Cortex Hub API",
    "DESCRIPTION": "Self-hosted hub for AI agents that act on real machines.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Chats and the user default share one choice set (ask, auto): one enum in the schema.
    "ENUM_NAME_OVERRIDES": {"ApprovalPolicyEnum": "sessions_app.models.sessions.ApprovalPolicy"},
    "APPEND_COMPONENTS": {
        "schemas": {
            "ErrorBody": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": {"type": "string"},
                            "message": {"type": "string"},
                            "fields": {
                                "type": "object",
                                "additionalProperties": {
                                    "type": "array",
                                    "items": {"type": "string"},
                                },
                            },
                        },
                    }
                },
            }
        }
    },
    # Swagger UI and Redoc from drf-spectacular-sidecar's static files: the docs work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "cortex.api.schema.add_error_responses",
    ],
}

# --- request limits -------------------------------------------------------------------------
# Largest request body on an ordinary route (JSON); upload routes take their own limits
# (cortex/body_limits.py). Refused with 413 from the declared length before Django reads any of
# it. Also Django's own cap on a body read into memory; the spool threshold is kept at least as
# large, so a body refused on an ordinary route never reaches the disk.
REQUEST_MAX_BODY_BYTES: int = env.int("CORTEX_MAX_BODY_BYTES", default=2621440)
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_MAX_BODY_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = max(2621440, REQUEST_MAX_BODY_BYTES)
# Long polls (`GET /api/v1/tasks/{id}/?wait=`) held at once, per user and in all, by one hub
# process; past either cap the request answers 429 `too_many_waits` with Retry-After.
LONGPOLL_PER_USER: int = env.int("CORTEX_LONGPOLL_PER_USER", default=20)
LONGPOLL_PER_PROCESS: int = env.int("CORTEX_LONGPOLL_PER_PROCESS", default=500)

# --- voice ----------------------------------------------------------------------------------
VOICE_MAX_TEXT_CHARS: int = env.int("CORTEX_VOICE_MAX_TEXT_CHARS", default=4000)
VOICE_MAX_UPLOAD_BYTES: int = env.int("CORTEX_VOICE_MAX_UPLOAD_BYTES", default=25 * 1024 * 1024)
VOICE_MAX_AUDIO_SECONDS: int = env.int("CORTEX_VOICE_MAX_AUDIO_SECONDS", default=300)
VOICE_PROVIDER_TIMEOUT: float = env.float("CORTEX_VOICE_TIMEOUT", default=60.0)

# --- mesh -----------------------------------------------------------------------------------
GRPC_ADDRESS: str = env.str("CORTEX_GRPC_ADDRESS", default="127.0.0.1:50051")
GRPC_TLS_CERT: str = env.str("CORTEX_GRPC_TLS_CERT", default="")
GRPC_TLS_KEY: str = env.str("CORTEX_GRPC_TLS_KEY", default="")
PUBLIC_GRPC_ADDRESS: str = env.str("CORTEX_PUBLIC_GRPC_ADDRESS", default=GRPC_ADDRESS)
MESH_HEARTBEAT_INTERVAL: float = env.float("CORTEX_HEARTBEAT_INTERVAL", default=30.0)
MESH_RECONNECT_GRACE: float = env.float("CORTEX_RECONNECT_GRACE", default=60.0)
MESH_INVITE_TTL: int = env.int("CORTEX_INVITE_TTL_SECONDS", default=3600)
MESH_OUTPUT_CAP_BYTES: int = env.int("CORTEX_TASK_OUTPUT_CAP_BYTES", default=4 * 1024 * 1024)
MESH_TERMINAL_RECORD_CAP_BYTES: int = env.int(
    "CORTEX_TERMINAL_RECORD_CAP_BYTES", default=64 * 1024 * 1024
)
MESH_TERMINAL_MAX_OPEN: int = env.int("CORTEX_TERMINAL_MAX_OPEN", default=16)
MESH_TERMINAL_LOST_AFTER: float = env.float("CORTEX_TERMINAL_LOST_AFTER", default=900.0)
# Keystroke and resize frames a terminal may have stored and not yet sent to its node (a node
# away, a hub restarting); past it terminal.input answers terminal_input_backlog.
MESH_TERMINAL_INPUT_BACKLOG: int = env.int("CORTEX_TERMINAL_INPUT_BACKLOG", default=1024)
# Seconds a task may wait for its node before it ends `timed_out` / `not_delivered` (never run
# later); a task may ask for its own (`delivery_timeout`, 1 s to a day).
MESH_TASK_DELIVERY_TIMEOUT: float = env.float("CORTEX_TASK_DELIVERY_TIMEOUT", default=300.0)
# Largest file pushed to a node (POST /api/v1/nodes/{id}/files/), staged in MEDIA_ROOT.
MESH_FILE_PUSH_MAX_BYTES: int = env.int("CORTEX_FILE_PUSH_MAX_BYTES", default=1024**3)
# Shared workspaces: the hub mirror (content-addressed blobs) lives under this folder, through
# Django's storage API; put it on a shared volume when several hub processes run.
WORKSPACE_ROOT: Path = Path(env.str("CORTEX_WORKSPACE_ROOT", default=str(VAR_DIR / "workspaces")))
# Largest total of one session's workspace, and of one file in it (413 past either).
WORKSPACE_MAX_BYTES: int = env.int("CORTEX_WORKSPACE_MAX_BYTES", default=1024**3)
WORKSPACE_MAX_FILE_BYTES: int = env.int("CORTEX_WORKSPACE_MAX_FILE_BYTES", default=256 * 1024**2)
# Per-node output rate on the stream (bytes/s); a faster node is slowed down, never cut off.
MESH_OUTPUT_RATE_BYTES: int = 1024 * 1024
#: During a flood of output, live frames to watchers go at most this often (seconds).
MESH_LIVE_FRAME_INTERVAL: float = 0.05

# --- metrics --------------------------------------------------------------------------------
# `GET /metrics` (web) and runmesh's metrics port admit a scraper that presents this bearer
# token, or whose address is inside one of these CIDRs; with neither set, loopback only.
METRICS_TOKEN: str = env.str("CORTEX_METRICS_TOKEN", default="")
METRICS_ALLOW: list[str] = [
    c.strip() for c in env.list("CORTEX_METRICS_ALLOW", default=[]) if c.strip()
]
for _cidr in METRICS_ALLOW:
    try:
        ipaddress.ip_network(_cidr, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"CORTEX_METRICS_ALLOW: {_cidr!r} is not a CIDR.") from None
# HOST:PORT where `runmesh` serves its own metrics (empty: none); `--metrics-address` wins.
MESH_METRICS_ADDRESS: str = env.str("CORTEX_MESH_METRICS_ADDRESS", default="")

# --- WebSocket consoles ----------------------------------------------------------------------
# Grants, sign-in and activity are re-checked this often on open sockets (closing within 5 s).
WS_RECHECK_SECONDS: float = env.float("CORTEX_WS_RECHECK_SECONDS", default=2.0)
# A socket's outgoing queue bound; past it the client gets one `resync` frame and refetches.
WS_QUEUE_FRAMES: int = env.int("CORTEX_WS_QUEUE_FRAMES", default=1000)
WS_QUEUE_BYTES: int = env.int("CORTEX_WS_QUEUE_BYTES", default=4 * 1024 * 1024)

# --- accounts -------------------------------------------------------------------------------
# Refusals (policy-refused commands, refused WebSockets) are audited once per actor and reason
# per window of this many seconds; the rest of the window is counted (AuditRefusalWindow).
AUDIT_REFUSAL_WINDOW_SECONDS: int = 60
ADMIN_EMAIL: str = env.str("CORTEX_ADMIN_EMAIL", default="")
ADMIN_PASSWORD: str = env.str("CORTEX_ADMIN_PASSWORD", default="")
ALLOW_PASSWORD_LOGIN: bool = env.bool("CORTEX_ALLOW_PASSWORD_LOGIN", default=True)

OIDC_RP_CLIENT_ID: str = env.str("OIDC_RP_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET: str = env.str("OIDC_RP_CLIENT_SECRET", default="")
OIDC_OP_DISCOVERY_URL: str = env.str("OIDC_OP_DISCOVERY_URL", default="")
OIDC_OP_AUTHORIZATION_ENDPOINT: str = env.str("OIDC_OP_AUTHORIZATION_ENDPOINT", default="")
OIDC_OP_TOKEN_ENDPOINT: str = env.str("OIDC_OP_TOKEN_ENDPOINT", default="")
OIDC_OP_USER_ENDPOINT: str = env.str("OIDC_OP_USER_ENDPOINT", default="")
OIDC_OP_JWKS_ENDPOINT: str = env.str("OIDC_OP_JWKS_ENDPOINT", default="")
OIDC_OP_ISSUER: str = env.str("OIDC_OP_ISSUER", default="")
OIDC_GROUPS_CLAIM: str = env.str("OIDC_GROUPS_CLAIM", default="")
OIDC_RP_SIGN_ALGO = "RS256"
OIDC_RP_SCOPES: str = env.str("OIDC_RP_SCOPES", default="openid email profile")
OIDC_USE_PKCE = True
OIDC_PKCE_CODE_CHALLENGE_METHOD = "S256"
OIDC_USE_NONCE = True
OIDC_TIMEOUT = env.int("OIDC_TIMEOUT", default=10)
OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS = env.int("OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS", default=900)
OIDC_ENABLED: bool = bool(OIDC_RP_CLIENT_ID and (OIDC_OP_DISCOVERY_URL or OIDC_OP_TOKEN_ENDPOINT))
OIDC_AUTHENTICATE_CLASS = "accounts.oidc.OIDCAuthenticateView"
OIDC_CALLBACK_CLASS = "accounts.oidc.OIDCCallbackView"
OIDC_EXEMPT_URLS = [
    "/api/v1/auth/login/",
    "/api/v1/auth/logout/",
    "/healthz",
    "/readyz",
    "/metrics",
]
if OIDC_ENABLED:
    # The backend and the session-refresh middleware (a user disabled at the provider is signed
    # out within OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS) exist only when OIDC is configured.
    AUTHENTICATION_BACKENDS = [*AUTHENTICATION_BACKENDS, "accounts.oidc.OIDCBackend"]
    MIDDLEWARE.insert(
        MIDDLEWARE.index("cortex.patches.django_middleware.AuthenticationMiddleware") + 1,
        "accounts.oidc.OIDCSessionRefresh",
    )
LOGIN_REDIRECT_URL = "/console/"
LOGOUT_REDIRECT_URL = "/"
LOGIN_REDIRECT_URL_FAILURE = "/admin/login/"

# --- preferences ----------------------------------------------------------------------------
PROVIDER_ALLOWED_HOSTS: list[str] = env.list("CORTEX_PROVIDER_ALLOWED_HOSTS", default=[])
# Initial system-layer values, e.g. CORTEX_LLM_PROVIDER, CORTEX_LLM_MODEL, CORTEX_LLM_API_KEY;
# the system layer that admins edit wins field by field.
PREFERENCES_ENV_DEFAULTS: dict[str, dict[str, str]] = {
    kind: {
        name: value
        for name in ("provider", "model", "base_url", "api_key", "voice", "language")
        if (value := env.str(f"CORTEX_{kind.upper()}_{name.upper()}", default=""))
    }
    for kind in ("llm", "tts", "stt")
}

# --- chat sessions --------------------------------------------------------------------------
SESSIONS_MAX_STEPS: int = env.int("CORTEX_SESSIONS_MAX_STEPS", default=12)
SESSIONS_TURN_DEADLINE: float = env.float("CORTEX_SESSIONS_TURN_DEADLINE", default=900.0)
SESSIONS_APPROVAL_TIMEOUT: float = env.float("CORTEX_SESSIONS_APPROVAL_TIMEOUT", default=300.0)
SESSIONS_STALE_AFTER: float = env.float("CORTEX_SESSIONS_STALE_AFTER", default=60.0)
SESSIONS_LLM_TIMEOUT: float = env.float("CORTEX_SESSIONS_LLM_TIMEOUT", default=120.0)

# --- scheduled agents -----------------------------------------------------------------------
AGENT_MIN_INTERVAL_S: float = env.float("CORTEX_AGENT_MIN_INTERVAL_S", default=60.0)
AGENT_SCHEDULER: bool = env.bool("CORTEX_AGENT_SCHEDULER", default=True)
AGENT_TICK_S: float = env.float("CORTEX_AGENT_TICK_S", default=1.0)
AGENT_HEARTBEAT_S: float = env.float("CORTEX_AGENT_HEARTBEAT_S", default=5.0)
AGENT_LOST_AFTER_S: float = env.float("CORTEX_AGENT_LOST_AFTER_S", default=45.0)
AGENT_LATE_GRACE_S: float = env.float("CORTEX_AGENT_LATE_GRACE_S", default=30.0)
AGENT_WEBHOOK_WINDOW_S: int = env.int("CORTEX_AGENT_WEBHOOK_WINDOW_S", default=300)

# --- logging --------------------------------------------------------------------------------
LOG_JSON: bool = env.bool("CORTEX_LOG_JSON", default=False)
LOG_LEVEL: str = env.str("CORTEX_LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "cortex.logging.RequestIdFilter"},
        "outage": {"()": "cortex.logging.OutageFilter"},
    },
    "formatters": {
        "json": {"()": "cortex.logging.JsonFormatter"},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": sys.stdout,
            "filters": ["request_id"],
            "formatter": "json" if LOG_JSON else "plain",
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # A request that failed for an outage answered 503 and was logged in one line.
        "django.request": {"filters": ["outage"]},
        "daphne": {"level": "WARNING"},
        "asyncio": {"level": "WARNING"},
    },
}
