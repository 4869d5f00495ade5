"""Settings for the test suite: the project settings with faster hashing and loopback providers."""

from cortex.settings import *  # noqa: F403
from cortex.settings import REST_FRAMEWORK

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Loopback servers speaking provider protocols stand in for the real providers in tests.
PROVIDER_ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
REST_FRAMEWORK = {**REST_FRAMEWORK}
# A fresh checkout has no collected manifest: tests serve and link the apps' static folders
# as they are (the manifest path is tested against collectstatic in cortex/tests/test_static.py).
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
SERVESTATIC_USE_FINDERS = True
# In-process tests drive the agent scheduler by hand; live hubs that need it set the variable.
AGENT_SCHEDULER = env.bool("CORTEX_AGENT_SCHEDULER", default=False)  # noqa: F405

# SQLite test databases live in a file under the checkout's var/, not shared-cache memory: the
# turn runner and the gRPC servicers write from worker threads, and shared-cache memory databases
# lock whole tables (SQLITE_LOCKED, no busy wait), while a WAL file waits on the busy timeout
# instead. The name is fixed so that `--reuse-db` keeps it between runs; pytest-django adds a
# `_gwN` suffix for each xdist worker.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    _TEST_DB_DIR = BASE_DIR / "var" / "test-db"  # noqa: F405
    _TEST_DB_DIR.parent.mkdir(mode=0o700, exist_ok=True)
    _TEST_DB_DIR.mkdir(mode=0o700, exist_ok=True)
    DATABASES["default"]["TEST"] = {"NAME": str(_TEST_DB_DIR / "cortex-test.sqlite3")}  # noqa: F405
    # Django's backend plus a test flush that lifts the append-only audit triggers.
    DATABASES["default"]["ENGINE"] = "cortex.testdb.sqlite3"  # noqa: F405

if DATABASES["default"]["ENGINE"] in (  # noqa: F405
    "django.db.backends.postgresql",
    "cortex.patches.postgresql",
):
    DATABASES["default"]["ENGINE"] = "cortex.testdb.postgresql"  # noqa: F405
