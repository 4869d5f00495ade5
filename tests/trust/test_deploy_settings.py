"""Production settings: `check --deploy` clean, and every security-relevant value as it must be.

cortex/tests/test_settings.py covers the deploy check and a few values; this adds the rest
(HSTS details, TLS redirect behind the proxy, cookie flags, origin checks for HTTP and
WebSocket, OIDC verification, password hashing, API defaults) and records the figure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

from tests.trust.figures import record

ROOT = Path(__file__).resolve().parents[2]
PROD = {
    "CORTEX_DEBUG": "0",
    "CORTEX_SECRET_KEY": "x" * 20 + "a-long-random-production-secret-key-0123456789",
    "CORTEX_FIELD_KEYS": Fernet.generate_key().decode(),
    "CORTEX_ALLOWED_HOSTS": "hub.example.com",
    # OIDC configured, so its settings are the ones in force.
    "OIDC_RP_CLIENT_ID": "cortex",
    "OIDC_RP_CLIENT_SECRET": "a-client-secret-for-the-settings-test",
    "OIDC_OP_DISCOVERY_URL": "https://idp.example.com/.well-known/openid-configuration",
}
READ = """
import json
from django.conf import settings as s
from django.utils.module_loading import import_string
import cortex.asgi
from channels.security.websocket import OriginValidator
ws = cortex.asgi.router.application_mapping["websocket"]


def _has_middleware(s, path):
    wanted = import_string(path)
    return any(issubclass(import_string(m), wanted) for m in s.MIDDLEWARE)

print(json.dumps({
    "DEBUG": s.DEBUG,
    "ALLOWED_HOSTS": s.ALLOWED_HOSTS,
    "SESSION_COOKIE_SECURE": s.SESSION_COOKIE_SECURE,
    "CSRF_COOKIE_SECURE": s.CSRF_COOKIE_SECURE,
    "SESSION_COOKIE_HTTPONLY": s.SESSION_COOKIE_HTTPONLY,
    "SESSION_COOKIE_SAMESITE": s.SESSION_COOKIE_SAMESITE,
    "CSRF_COOKIE_SAMESITE": s.CSRF_COOKIE_SAMESITE,
    "SECURE_HSTS_SECONDS": s.SECURE_HSTS_SECONDS,
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": s.SECURE_HSTS_INCLUDE_SUBDOMAINS,
    "SECURE_HSTS_PRELOAD": s.SECURE_HSTS_PRELOAD,
    "SECURE_SSL_REDIRECT": s.SECURE_SSL_REDIRECT,
    "SECURE_PROXY_SSL_HEADER": list(s.SECURE_PROXY_SSL_HEADER or []),
    "SECURE_CONTENT_TYPE_NOSNIFF": s.SECURE_CONTENT_TYPE_NOSNIFF,
    "SECURE_REFERRER_POLICY": s.SECURE_REFERRER_POLICY,
    "X_FRAME_OPTIONS": s.X_FRAME_OPTIONS,
    "CSRF_TRUSTED_ORIGINS": s.CSRF_TRUSTED_ORIGINS,
    "csrf_middleware": _has_middleware(s, "django.middleware.csrf.CsrfViewMiddleware"),
    "security_middleware": _has_middleware(s, "django.middleware.security.SecurityMiddleware"),
    "OIDC_ENABLED": s.OIDC_ENABLED,
    "OIDC_RP_SIGN_ALGO": s.OIDC_RP_SIGN_ALGO,
    "OIDC_USE_PKCE": s.OIDC_USE_PKCE,
    "OIDC_PKCE_CODE_CHALLENGE_METHOD": s.OIDC_PKCE_CODE_CHALLENGE_METHOD,
    "OIDC_USE_NONCE": s.OIDC_USE_NONCE,
    "OIDC_TIMEOUT": s.OIDC_TIMEOUT,
    "OIDC_VERIFY_SSL": getattr(s, "OIDC_VERIFY_SSL", True),
    "OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS": s.OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS,
    "first_hasher": s.PASSWORD_HASHERS[0] if getattr(s, "PASSWORD_HASHERS", None) else "",
    "password_validators": len(s.AUTH_PASSWORD_VALIDATORS),
    "auth_first": s.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"][0],
    "permission": s.REST_FRAMEWORK["DEFAULT_PERMISSION_CLASSES"],
    "ws_guard": "OriginValidator" if isinstance(ws, OriginValidator) else type(ws).__name__,
}))
"""
EXPECTED = {
    "DEBUG": False,
    "ALLOWED_HOSTS": ["hub.example.com"],
    "SESSION_COOKIE_SECURE": True,
    "CSRF_COOKIE_SECURE": True,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "CSRF_COOKIE_SAMESITE": "Lax",
    "SECURE_HSTS_SECONDS": 31536000,
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
    "SECURE_HSTS_PRELOAD": True,
    "SECURE_SSL_REDIRECT": True,
    "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
    "SECURE_CONTENT_TYPE_NOSNIFF": True,
    "SECURE_REFERRER_POLICY": "same-origin",
    "X_FRAME_OPTIONS": "DENY",
    "CSRF_TRUSTED_ORIGINS": [],
    "csrf_middleware": True,
    "security_middleware": True,
    "OIDC_ENABLED": True,
    "OIDC_RP_SIGN_ALGO": "RS256",
    "OIDC_USE_PKCE": True,
    "OIDC_PKCE_CODE_CHALLENGE_METHOD": "S256",
    "OIDC_USE_NONCE": True,
    "OIDC_TIMEOUT": 10,
    "OIDC_VERIFY_SSL": True,
    "OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS": 900,
    "first_hasher": "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "password_validators": 4,
    "auth_first": "accounts.authentication.BearerTokenAuthentication",
    "permission": ["rest_framework.permissions.IsAuthenticated"],
    # WebSocket connects are checked against ALLOWED_HOSTS (the Origin header) first.
    "ws_guard": "OriginValidator",
}


def _run(*args: str, static_root: str = "") -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CORTEX_", "OIDC_", "DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS"))
    }
    env.update(DJANGO_SETTINGS_MODULE="cortex.settings", **PROD)
    if static_root:
        env["CORTEX_STATIC_ROOT"] = static_root
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_settings_are_secure_and_pass_check_deploy(tmp_path):
    # A deployment has collected its static files (cortex/tests/test_static.py runs the real
    # collectstatic); the check only looks for the manifest.
    (tmp_path / "staticfiles.json").write_text('{"paths": {}, "version": "1.1", "hash": ""}')
    deploy = _run("check", "--deploy", "--fail-level", "WARNING", static_root=str(tmp_path))
    findings = [
        line for line in (deploy.stdout + deploy.stderr).splitlines() if line.startswith("?:")
    ]
    read = _run("shell", "--no-imports", "-c", READ)
    assert read.returncode == 0, read.stderr
    actual = json.loads(read.stdout.strip().splitlines()[-1])
    wrong = {k: (actual.get(k), v) for k, v in EXPECTED.items() if actual.get(k) != v}
    issues = len(findings) + len(wrong) + (deploy.returncode != 0 and not findings)
    record(
        "deploy_check_issues",
        issues,
        checked=len(EXPECTED) + 1,
        detail="\n".join(findings + [f"{k}: {a!r} (must be {e!r})" for k, (a, e) in wrong.items()]),
        source="tests/trust/test_deploy_settings.py (check --deploy, production settings values)",
    )
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    assert not wrong, wrong
