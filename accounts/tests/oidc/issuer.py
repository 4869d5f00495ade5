"""A small OIDC issuer on loopback (http.server + PyJWT + RSA keys) for tampering tests.

It serves discovery, JWKS, an auto-approving authorization endpoint (PKCE S256 checked), a
token endpoint and userinfo. `mode` chooses how the next ID token is spoiled.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID = "cortex-test"
CLIENT_SECRET = "test-client-secret-value-long-enough-for-hs256"


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Issuer:
    """Starts in a thread on 127.0.0.1:<free port>; `stop()` shuts it down."""

    def __init__(self) -> None:
        self.key = _rsa_key()
        self.other_key = _rsa_key()
        self.kid = "key-1"
        self.mode = "ok"
        self.claims: dict[str, Any] = {
            "sub": "user-sub-1",
            "email": "oidc.user@example.com",
            "email_verified": True,
            "name": "Oidc User",
        }
        self.codes: dict[str, dict[str, Any]] = {}
        self.token_requests = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                if parts.path == "/.well-known/openid-configuration":
                    self._json(200, issuer.discovery())
                elif parts.path == "/jwks":
                    self._json(200, issuer.jwks())
                elif parts.path == "/authorize":
                    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                    location = issuer.authorize(query)
                    self.send_response(302)
                    self.send_header("Location", location)
                    self.end_headers()
                elif parts.path == "/userinfo":
                    self._json(200, issuer.claims)
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                status, body = issuer.token(form)
                self._json(status, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> Issuer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "userinfo_endpoint": f"{self.url}/userinfo",
            "jwks_uri": f"{self.url}/jwks",
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        }

    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        public.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return {"keys": [public]}

    def authorize(self, query: dict[str, str]) -> str:
        assert query["client_id"] == CLIENT_ID
        assert query["response_type"] == "code"
        assert query["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "nonce": query.get("nonce"),
            "challenge": query["code_challenge"],
            "redirect_uri": query["redirect_uri"],
        }
        params = {"code": code, "state": query["state"]}
        return f"{query['redirect_uri']}?{urlencode(params)}"

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.token_requests += 1
        grant = self.codes.pop(form.get("code", ""), None)
        if grant is None or form.get("client_secret") != CLIENT_SECRET:
            return 400, {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
        if (
            digest.decode() != grant["challenge"]
            or form.get("redirect_uri") != grant["redirect_uri"]
        ):
            return 400, {"error": "invalid_grant"}
        return 200, {
            "access_token": secrets.token_urlsafe(16),
            "token_type": "Bearer",
            "id_token": self.id_token(grant["nonce"]),
        }

    def id_token(self, nonce: str | None) -> str:
        now = int(time.time())
        claims = {
            **self.claims,
            "iss": self.url,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
        }
        headers = {"kid": self.kid}
        if self.mode == "expired":
            claims.update(iat=now - 7200, exp=now - 3600)
        if self.mode == "wrong_nonce":
            claims["nonce"] = "not-the-session-nonce"
        if self.mode == "wrong_audience":
            claims["aud"] = "someone-else"
        if self.mode == "other_key":
            return jwt.encode(claims, self.other_key, algorithm="RS256", headers=headers)
        if self.mode == "hs256":
            return jwt.encode(claims, CLIENT_SECRET, algorithm="HS256", headers=headers)
        if self.mode == "none":
            head = {"alg": "none", "typ": "JWT", "kid": self.kid}

            def b64(d: dict[str, Any]) -> str:
                return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

            return f"{b64(head)}.{b64(claims)}."
        return jwt.encode(claims, self.key, algorithm="RS256", headers=headers)
