"""The base URL guard: refused address classes, the allow-list, and the verify pre-check."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from django.test import override_settings

from accounts.models import AuditEvent
from preferences.models import Scope
from preferences.services import config_verify
from providers import http, ssrf
from providers.errors import BlockedAddress


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://10.0.0.1/v1",
        "http://192.168.1.10/v1",
        "http://172.16.0.1/v1",
        "http://127.0.0.2:11434/v1",
        "http://[::1]/v1",
        "http://[::ffff:127.0.0.1]/v1",
        "http://0.0.0.0/v1",
        "http://224.0.0.1/v1",
        "http://240.0.0.1/v1",
        "http://100.64.0.1/v1",
        "http://169.254.10.10/v1",
    ],
)
def test_refused_addresses(url):
    with pytest.raises(BlockedAddress):
        ssrf.check_url(url)
    with pytest.raises(BlockedAddress):
        ssrf.check_url(url, resolve=False)


def test_public_literal_and_allow_list():
    ssrf.check_url("https://93.184.215.14/v1")
    ssrf.check_url("http://127.0.0.1:11434/v1")  # allowed in the test settings
    with override_settings(PROVIDER_ALLOWED_HOSTS=[]), pytest.raises(BlockedAddress):
        ssrf.check_url("http://127.0.0.1:11434/v1")
    with override_settings(PROVIDER_ALLOWED_HOSTS=["10.0.0.5"]):
        ssrf.check_url("http://10.0.0.5/v1")


def test_names_are_resolved_when_checking():
    with override_settings(PROVIDER_ALLOWED_HOSTS=[]), pytest.raises(BlockedAddress) as caught:
        ssrf.check_url("http://localhost:11434/v1")
    assert "CORTEX_PROVIDER_ALLOWED_HOSTS" in caught.value.message
    # Saving does not resolve names; the connect-time guard still applies.
    with override_settings(PROVIDER_ALLOWED_HOSTS=[]):
        ssrf.check_url("http://localhost:11434/v1", resolve=False)


@pytest.mark.parametrize("url", ["ftp://example.com/", "http:///v1", "not a url"])
def test_non_http_urls_are_refused(url):
    with pytest.raises(BlockedAddress):
        ssrf.check_url(url, resolve=False)


@pytest.mark.django_db
def test_verify_refuses_stored_name_that_resolves_to_loopback(user, set_layer):
    set_layer(
        Scope.USER,
        "llm",
        {"provider": "openai_compatible", "base_url": "http://localhost:9/v1", "model": "m"},
        user=user,
    )
    with override_settings(PROVIDER_ALLOWED_HOSTS=[]):
        provider, result = config_verify(actor=user, kind="llm", timeout=1)
    assert (provider, result.ok, result.error_code) == (
        "openai_compatible",
        False,
        "blocked_address",
    )
    event = AuditEvent.objects.get(action="preferences.verify")
    assert event.details["error_code"] == "blocked_address"


# -- the async guarded transport (connect-time check for the async provider clients) ----------


class _Hello(BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def do_GET(self) -> None:  # noqa: N802
        _Hello.seen.append(self.path)
        self.send_response(200)
        self.send_header("content-length", "5")
        self.end_headers()
        self.wfile.write(b"hello")


@pytest.fixture
def hello_server() -> Iterator[int]:
    _Hello.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.mark.parametrize("module", ["httpx", "httpx2"])
async def test_async_transport_refuses_a_name_that_resolves_to_loopback(hello_server, module):
    make = http.httpx_async_client if module == "httpx" else http.httpx2_async_client
    with override_settings(PROVIDER_ALLOWED_HOSTS=["127.0.0.1"]):
        async with make(5.0) as client:
            with pytest.raises(BlockedAddress) as caught:
                await client.get(f"http://localhost:{hello_server}/secret")
    assert "refused address" in caught.value.message
    assert _Hello.seen == []


@pytest.mark.parametrize("module", ["httpx", "httpx2"])
async def test_async_transport_connects_to_allowed_hosts(hello_server, module):
    make = http.httpx_async_client if module == "httpx" else http.httpx2_async_client
    with override_settings(PROVIDER_ALLOWED_HOSTS=["localhost"]):
        async with make(5.0) as client:
            response = await client.get(f"http://localhost:{hello_server}/ok")
    assert (response.status_code, response.content) == (200, b"hello")
    assert _Hello.seen == ["/ok"]


async def test_async_transport_refuses_literal_private_address():
    with override_settings(PROVIDER_ALLOWED_HOSTS=[]):
        async with http.httpx2_async_client(5.0) as client:
            with pytest.raises(BlockedAddress):
                await client.get("http://169.254.169.254/latest/meta-data/")
