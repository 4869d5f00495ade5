"""Backends verify against real loopback servers speaking each provider's protocol."""

from __future__ import annotations

import pytest
from django.test import override_settings

from providers.base import Backend, Parameter
from providers.registry import AlreadyRegistered, NotRegistered, registry
from providers.tests.servers import provider_server

KEY = "sk-test-verify-0123456789abcdef"

# (kind, backend id, base-url suffix, header carrying the key, expected value)
NETWORK_BACKENDS = [
    ("llm", "openai_compatible", "/v1", "authorization", f"Bearer {KEY}"),
    ("tts", "openai_compatible", "/v1", "authorization", f"Bearer {KEY}"),
    ("stt", "openai_compatible", "/v1", "authorization", f"Bearer {KEY}"),
    # This client version sends the key as a bearer token rather than x-api-key.
    ("llm", "anthropic", "", "authorization", f"Bearer {KEY}"),
    ("llm", "gemini", "", "x-goog-api-key", KEY),
    ("tts", "gemini", "", "x-goog-api-key", KEY),
    ("stt", "gemini", "", "x-goog-api-key", KEY),
]
EXPECTED_PATHS = {
    ("llm", "openai_compatible"): ("POST", "/v1/chat/completions"),
    ("tts", "openai_compatible"): ("GET", "/v1/models/test-model"),
    ("stt", "openai_compatible"): ("GET", "/v1/models/test-model"),
    ("llm", "anthropic"): ("POST", "/v1/messages"),
    ("llm", "gemini"): ("POST", "/v1beta/models/test-model:generateContent"),
    ("tts", "gemini"): ("GET", "/v1beta/models/test-model"),
    ("stt", "gemini"): ("GET", "/v1beta/models/test-model"),
}
IDS = [f"{k}-{b}" for k, b, *_ in NETWORK_BACKENDS]


def _values(url: str, suffix: str, model: str = "test-model") -> dict[str, str]:
    return {"base_url": url + suffix, "api_key": KEY, "model": model}


@pytest.mark.parametrize(
    ("kind", "backend_id", "suffix", "header", "expected"), NETWORK_BACKENDS, ids=IDS
)
def test_verify_ok_makes_one_real_call_with_the_key(kind, backend_id, suffix, header, expected):
    with provider_server("ok") as server:
        result = registry.get(kind, backend_id).verify(_values(server.url, suffix), 5)
    assert (result.ok, result.error_code) == (True, "")
    assert result.latency_ms >= 0
    assert len(server.requests) == 1
    request = server.requests[0]
    assert (request["method"], request["path"]) == EXPECTED_PATHS[(kind, backend_id)]
    assert request["headers"][header] == expected
    assert KEY not in request["path"]


@pytest.mark.parametrize(
    ("kind", "backend_id", "suffix", "header", "expected"), NETWORK_BACKENDS, ids=IDS
)
@pytest.mark.parametrize("mode", ["unauthorized", "forbidden"])
def test_verify_refused_key_is_invalid_key(kind, backend_id, suffix, header, expected, mode):
    with provider_server(mode) as server:
        result = registry.get(kind, backend_id).verify(_values(server.url, suffix), 5)
    assert (result.ok, result.error_code) == (False, "invalid_key")
    assert KEY not in result.message


@pytest.mark.parametrize(
    ("kind", "backend_id", "suffix", "header", "expected"), NETWORK_BACKENDS, ids=IDS
)
def test_verify_unknown_model_is_model_not_found(kind, backend_id, suffix, header, expected):
    with provider_server("ok") as server:
        result = registry.get(kind, backend_id).verify(_values(server.url, suffix, "nope"), 5)
    assert (result.ok, result.error_code) == (False, "model_not_found")


@pytest.mark.parametrize(
    ("kind", "backend_id", "suffix", "header", "expected"), NETWORK_BACKENDS, ids=IDS
)
def test_verify_hanging_server_times_out_as_unreachable(kind, backend_id, suffix, header, expected):
    with provider_server("hang") as server:
        result = registry.get(kind, backend_id).verify(_values(server.url, suffix), 0.5)
    # The server answers a success after 10 s: only a client that gave up at its timeout fails.
    assert (result.ok, result.error_code) == (False, "unreachable")


@pytest.mark.parametrize(
    ("kind", "backend_id", "suffix", "header", "expected"), NETWORK_BACKENDS, ids=IDS
)
@pytest.mark.parametrize(
    "target", ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/v1/chat/completions"]
)
def test_verify_redirect_to_private_address_is_refused(
    kind, backend_id, suffix, header, expected, target
):
    with provider_server("redirect", redirect_to=target) as server:
        result = registry.get(kind, backend_id).verify(_values(server.url, suffix), 5)
    # Refused before any connect: a connect to the private address would have ended in
    # `unreachable` at the timeout (nothing answers there), not `blocked_address`.
    assert (result.ok, result.error_code) == (False, "blocked_address")
    assert len(server.requests) == 1


def test_verify_redirect_to_public_address_is_not_followed():
    with provider_server("redirect", redirect_to="http://93.184.215.14/v1") as server:
        result = registry.get("llm", "openai_compatible").verify(_values(server.url, "/v1"), 5)
    assert (result.ok, result.error_code) == (False, "provider_error")
    assert "redirect" in result.message
    assert len(server.requests) == 1


def test_verify_server_error_is_provider_error():
    with provider_server("error") as server:
        result = registry.get("llm", "anthropic").verify(_values(server.url, ""), 5)
    assert (result.ok, result.error_code) == (False, "provider_error")


def test_verify_closed_port_is_unreachable(free_port):
    values = _values(f"http://127.0.0.1:{free_port()}", "/v1")
    result = registry.get("llm", "openai_compatible").verify(values, 2)
    assert (result.ok, result.error_code) == (False, "unreachable")


@override_settings(PROVIDER_ALLOWED_HOSTS=["127.0.0.1"])
def test_connect_time_guard_refuses_a_name_resolving_to_loopback():
    with provider_server("ok") as server:
        url = server.url.replace("127.0.0.1", "localhost")
        result = registry.get("llm", "gemini").verify(_values(url, ""), 5)
    assert (result.ok, result.error_code) == (False, "blocked_address")
    assert server.requests == []


def test_local_backends_need_no_network():
    espeak = registry.get("tts", "espeak")
    sphinx = registry.get("stt", "pocketsphinx")
    assert (espeak.network, sphinx.network) == (False, False)
    assert espeak.verify({}, 1).ok is True
    assert sphinx.verify({}, 1).ok is True


def test_espeak_missing_binary_reports_unreachable(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    result = registry.get("tts", "espeak").verify({}, 1)
    assert (result.ok, result.error_code) == (False, "unreachable")


class _Dummy(Backend):
    kind = "llm"
    id = "dummy"
    parameters = (Parameter("model", required=True),)


def test_registry_register_and_unregister_raise_on_misuse():
    with registry.temporarily(_Dummy()) as backend:
        assert registry.get("llm", "dummy") is backend
        with pytest.raises(AlreadyRegistered):
            registry.register(_Dummy())
    with pytest.raises(NotRegistered):
        registry.unregister("llm", "dummy")
    assert registry.ids("llm") == ["anthropic", "gemini", "openai_compatible"]
    assert registry.ids("tts") == ["espeak", "gemini", "openai_compatible"]
    assert registry.ids("stt") == ["gemini", "openai_compatible", "pocketsphinx"]


def test_every_backend_parameter_is_accepted_by_the_api():
    from preferences.api.serializers import PARAM_FIELDS

    names = {p.name for b in registry.all() for p in b.parameters}
    assert names <= set(PARAM_FIELDS)
    assert {p.name for b in registry.all() for p in b.parameters if p.secret} == {"api_key"}
