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

# SQLite test databases live in a per-run file, not shared-cache memory: the turn runner and
# the gRPC servicers write from worker threads, and shared-cache memory databases lock whole
# tables (SQLITE_LOCKED, no busy wait), while a WAL file waits on the busy timeout instead.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    import atexit as _atexit
    import os as _os
    import tempfile as _tempfile

    _TEST_DB = _os.path.join(_tempfile.gettempdir(), f"cortex-test-{_os.getpid()}.sqlite3")
    DATABASES["default"]["TEST"] = {"NAME": _TEST_DB}  # noqa: F405
    # Django's backend plus a test flush that lifts the append-only audit triggers.
    DATABASES["default"]["ENGINE"] = "cortex.testdb.sqlite3"  # noqa: F405

    def _drop_test_db() -> None:
        for suffix in ("", "-wal", "-shm"):
            if _os.path.exists(_TEST_DB + suffix):
                _os.remove(_TEST_DB + suffix)

    _atexit.register(_drop_test_db)

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":  # noqa: F405
    DATABASES["default"]["ENGINE"] = "cortex.testdb.postgresql"  # noqa: F405
