"""Fixtures that wire the hub to a loopback OIDC issuer."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests
from django.test import Client, override_settings

from accounts.tests.oidc.issuer import CLIENT_ID, CLIENT_SECRET, Issuer

BACKENDS = ["django.contrib.auth.backends.ModelBackend", "accounts.oidc.OIDCBackend"]


def oidc_settings(discovery_url: str, **extra: object) -> override_settings:
    values: dict[str, object] = {
        "OIDC_ENABLED": True,
        "OIDC_RP_CLIENT_ID": CLIENT_ID,
        "OIDC_RP_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_OP_DISCOVERY_URL": discovery_url,
        "OIDC_TIMEOUT": 5,
        "AUTHENTICATION_BACKENDS": BACKENDS,
    }
    return override_settings(**{**values, **extra})


@pytest.fixture
def issuer(db) -> Iterator[Issuer]:  # type: ignore[no-untyped-def]
    server = Issuer().start()
    with oidc_settings(
        f"{server.url}/.well-known/openid-configuration", OIDC_GROUPS_CLAIM="groups"
    ):
        yield server
    server.stop()


def run_flow(client: Client, *, next_path: str | None = "/console/", tamper_state: bool = False):  # type: ignore[no-untyped-def]
    """Drive authenticate -> provider -> callback; returns the callback response."""
    start = "/oidc/authenticate/" + (f"?next={next_path}" if next_path else "")
    response = client.get(start)
    assert response.status_code == 302, response.content
    at_provider = requests.get(response["Location"], allow_redirects=False, timeout=5)
    assert at_provider.status_code == 302
    back = urlsplit(at_provider.headers["Location"])
    query = back.query
    if tamper_state:
        query = query.replace("state=", "state=x")
    return client.get(f"{back.path}?{query}")
