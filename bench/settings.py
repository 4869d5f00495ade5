"""Settings for hub processes under benchmark: the project's, with knobs the harness turns.

BENCH_MIDDLEWARE=none empties MIDDLEWARE (goal 6 compares the same view with and without it);
BENCH_OUTPUT_RATE lifts the per-node output rate limit (goal 4 measures the handler, not the cap);
BENCH_LAYER=redis|memory picks the channel layer regardless of REDIS_URL.
"""

import os

from cortex.settings import *  # noqa: F403
from cortex.settings import CHANNEL_LAYERS, MIDDLEWARE

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
SECRET_KEY = "bench-only-not-secret"  # noqa: S105  # loopback throwaway processes
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}

MIDDLEWARE = [] if os.environ.get("BENCH_MIDDLEWARE") == "none" else list(MIDDLEWARE)
# The admin wants its middleware; the no-middleware server only answers the API view.
SILENCED_SYSTEM_CHECKS = ["admin.E408", "admin.E409", "admin.E410"] if not MIDDLEWARE else []
if os.environ.get("BENCH_OUTPUT_RATE"):
    MESH_OUTPUT_RATE_BYTES = int(os.environ["BENCH_OUTPUT_RATE"])
if os.environ.get("BENCH_LAYER") == "memory":
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1000}}
    }
else:
    CHANNEL_LAYERS = dict(CHANNEL_LAYERS)
