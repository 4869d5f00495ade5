"""Production settings: refuse to start without secrets, and pass `check --deploy`."""

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]


def _run(extra_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CORTEX_", "DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS"))
    }
    env.update(DJANGO_SETTINGS_MODULE="cortex.settings", **extra_env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


PROD = {
    "CORTEX_DEBUG": "0",
    "CORTEX_SECRET_KEY": "x" * 20 + "a-long-random-production-secret-key-0123456789",
    "CORTEX_FIELD_KEYS": Fernet.generate_key().decode(),
    "CORTEX_ALLOWED_HOSTS": "hub.example.com",
}


def test_production_settings_pass_check_deploy(tmp_path):
    # A deployment has collected its static files (cortex/tests/test_static.py runs the real
    # collectstatic); the check only looks for the manifest.
    (tmp_path / "staticfiles.json").write_text('{"paths": {}, "version": "1.1", "hash": ""}')
    done = _run(
        {**PROD, "CORTEX_STATIC_ROOT": str(tmp_path)},
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_production_warns_when_static_files_are_not_collected(tmp_path):
    done = _run({**PROD, "CORTEX_STATIC_ROOT": str(tmp_path / "empty")}, "check")
    assert done.returncode == 0  # a warning: runmesh and migrate need no static files
    assert "(cortex.W001) Static files are not collected in " in done.stderr


def test_production_refuses_to_start_without_secret_key():
    env = {k: v for k, v in PROD.items() if k != "CORTEX_SECRET_KEY"}
    done = _run(env, "check")
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        "django.core.exceptions.ImproperlyConfigured: CORTEX_SECRET_KEY must be set when "
        "CORTEX_DEBUG is off."
    )


def test_production_refuses_to_start_without_field_keys():
    env = {k: v for k, v in PROD.items() if k != "CORTEX_FIELD_KEYS"}
    done = _run(env, "check")
    assert done.returncode != 0
    assert "CORTEX_FIELD_KEYS must be set" in done.stderr


def test_development_key_fails_the_deploy_check():
    dev_key = "cortex-development-only-insecure-key-never-used-in-production"
    env = {**PROD, "CORTEX_SECRET_KEY": dev_key}
    done = _run(env, "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode != 0
    assert "cortex.E001" in done.stdout + done.stderr


def test_security_relevant_values_under_production():
    code = (
        "from django.conf import settings as s;"
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS,"
        " s.OIDC_RP_SIGN_ALGO, s.OIDC_USE_PKCE, s.OIDC_USE_NONCE, s.OIDC_TIMEOUT,"
        " s.X_FRAME_OPTIONS)"
    )
    done = _run(PROD, "shell", "--no-imports", "-c", code)
    assert done.returncode == 0, done.stderr
    expected = ["True", "True", "31536000", "RS256", "True", "True", "10", "DENY"]
    assert done.stdout.split() == expected


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_embedded_install_keeps_its_state_private_and_generates_its_own_keys(tmp_path):
    """`make run` without keys: var/ 0700, the database and generated keys 0600, keys reused."""
    var = tmp_path / "var"
    env = {"CORTEX_VAR_DIR": str(var)}
    done = _run(env, "migrate", "--noinput", "-v", "0")
    assert done.returncode == 0, done.stderr
    assert _mode(var) == 0o700
    secret, field = var / "secret_key", var / "field_keys"
    assert (_mode(secret), _mode(field), _mode(var / "cortex.sqlite3")) == (0o600, 0o600, 0o600)
    first = (secret.read_text(), field.read_text())
    Fernet(first[1].strip().encode())  # a real Fernet key
    assert "development" not in first[0]
    # A second start reuses them, and SQLite's -wal/-shm files follow the database's mode.
    code = (
        "from django.conf import settings as s; from django.db import connection;"
        "from pathlib import Path; import os;"
        "connection.ensure_connection();"
        "connection.cursor().execute('CREATE TABLE IF NOT EXISTS t (x int)');"
        "v = Path(os.environ['CORTEX_VAR_DIR']);"
        "print(s.SECRET_KEY == (v / 'secret_key').read_text().strip(),"
        " s.FIELD_KEYS == [(v / 'field_keys').read_text().strip()],"
        " sorted(oct(p.stat().st_mode & 0o777) for p in v.glob('cortex.sqlite3*')))"
    )
    done = _run(env, "shell", "--no-imports", "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().split(None, 2) == ["True", "True", "['0o600', '0o600', '0o600']"]
    assert (secret.read_text(), field.read_text()) == first


def test_an_older_laxer_install_is_tightened(tmp_path):
    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    var.chmod(0o755)
    database = var / "cortex.sqlite3"
    database.touch()
    database.chmod(0o644)
    done = _run({"CORTEX_VAR_DIR": str(var)}, "check")
    assert done.returncode == 0, done.stderr
    assert (_mode(var), _mode(database)) == (0o700, 0o600)


def test_no_key_ships_in_the_code():
    from cortex import settings

    assert not hasattr(settings, "_DEV_FIELD_KEY")
    assert not hasattr(settings, "_DEV_SECRET_KEY")


def test_an_upgraded_install_keeps_the_old_key_for_decryption_only(tmp_path):
    """Secrets stored under the key older versions shipped still open; new ones never use it."""
    from cortex.local_state import LEGACY_DEV_FIELD_KEY

    var = tmp_path / "var"
    var.mkdir()
    (var / "cortex.sqlite3").write_bytes(b"SQLite format 3\x00" + b"\x00" * 84)  # an old database
    code = "from django.conf import settings as s; print(','.join(s.FIELD_KEYS))"
    done = _run({"CORTEX_VAR_DIR": str(var)}, "shell", "--no-imports", "-c", code)
    keys = done.stdout.strip().split(",")
    assert len(keys) == 2 and keys[1] == LEGACY_DEV_FIELD_KEY and keys[0] != LEGACY_DEV_FIELD_KEY
