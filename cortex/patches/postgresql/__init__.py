"""Django's PostgreSQL backend with a pool that refills within a second after an outage
(`base.py`; use it as the database ENGINE `cortex.patches.postgresql`).

The patch: Django builds its psycopg_pool in `DatabaseWrapper.pool` from private pieces
(`_connection_pools`, `_configure_connection`); `base.DatabaseWrapper.pool` is that property
rebuilt around a pool whose `_add_connection` caps psycopg_pool's reconnection back-off.
"""

LIBRARY = "psycopg-pool"
PINNED_VERSION = "3.3.3"
RELIES_ON = (
    "psycopg_pool.ConnectionPool._add_connection",
    "psycopg_pool.base.AttemptWithBackoff.update_delay",
    "django.db.backends.postgresql.base.DatabaseWrapper._connection_pools",
    "django.db.backends.postgresql.base.DatabaseWrapper._configure_connection",
    "django.db.backends.base.base.NO_DB_ALIAS",
)
#: sha256 of the source of Django's `DatabaseWrapper.pool` getter that `base.py` rebuilds.
DJANGO_POOL_SHA256 = "e5c2654fdf2d50900fec9db41948d0b026da988e24d0eba1b4b9a9d4aacb1b17"
