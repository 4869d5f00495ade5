"""Every HTTP route, WebSocket route and gRPC method refuses a caller without (valid) credentials.

The three lists are read from the running configuration (the URL conf, the Channels router,
the protobuf service descriptors), so a route or method added later is crawled too: one that
answers without credentials fails this suite, and so does one the crawler cannot reach.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse
from google.protobuf import message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rest_framework.test import APIClient

from accounts.tests.test_url_protection import (
    CATCH_ALL_NAMES,
    METHODS,
    _is_login_redirect,
    _is_public,
    _sample,
    _walk,
)
from mesh.agent.pb import mesh_pb2
from tests.trust.figures import record

ORIGIN = (b"origin", b"http://testserver")
BOGUS = "bogus-credential-0000000000000000000000000000"

# Beyond the accounts walk's public list: sign-in pages are public by design. (Static files
# are answered by cortex.static before the URL configuration and hold no data.)
PUBLIC_PAGE_PREFIXES: tuple[str, ...] = ()
SIGN_IN_NAMES = ("console:login",)


def _sign_in_pages() -> tuple[str, ...]:
    """Every sign-in page a refused caller may be sent to."""
    pages = [settings.LOGIN_URL, "/admin/login/", "/oidc/authenticate/"]
    for name in SIGN_IN_NAMES:
        try:
            pages.append(reverse(name))
        except NoReverseMatch:
            continue
    return tuple(pages)


def _is_sign_in_redirect(response: Any) -> bool:
    location = response.get("Location", "")
    return response.status_code in (301, 302) and location.startswith(_sign_in_pages())


# gRPC: the node's credential guards every method but these (each still checks its own input).
GRPC_PUBLIC = {"/cortex.mesh.v1.NodeMesh/Join"}


def _refused(path: str, pattern: URLPattern, response: Any) -> bool:
    """Whether a response refuses the caller (same rules as accounts/tests/test_url_protection)."""
    status = response.status_code
    if path.startswith("/admin/"):
        location = response.get("Location", "")
        return (
            (status in (301, 302) and location.startswith("/admin/"))
            or status in (404, 405)
            or (path == "/admin/login/" and status == 200)
        )
    if pattern.name in CATCH_ALL_NAMES:
        return status in (404, 405)
    return status == 401 or _is_login_redirect(response) or _is_sign_in_redirect(response)


def _clients() -> dict[str, APIClient]:
    """Callers without a valid credential: none, a bogus bearer token, a bogus session cookie."""
    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {BOGUS}")
    scheme = APIClient()
    scheme.credentials(HTTP_AUTHORIZATION=f"Token {BOGUS}")
    cookie = APIClient()
    cookie.cookies["sessionid"] = BOGUS
    return {
        "anonymous": APIClient(),
        "bogus-bearer": bearer,
        "bogus-scheme": scheme,
        "bogus-cookie": cookie,
    }


def _http_offenders(routes: list[tuple[str, URLPattern]]) -> tuple[set[str], int]:
    """Calls (caller, method, path) that were not refused; and how many calls were made."""
    offenders: set[str] = set()
    checked = 0
    for label, client in _clients().items():
        for path, pattern in routes:
            if (
                _is_public(path)
                or path in _sign_in_pages()
                or path.startswith(PUBLIC_PAGE_PREFIXES)
            ):
                continue
            for method in METHODS:
                response = getattr(client, method)(path)
                checked += 1
                if not _refused(path, pattern, response):
                    offenders.add(f"{label} {method.upper()} {path} -> {response.status_code}")
    return offenders, checked


@pytest.mark.django_db
def test_every_http_route_refuses_missing_and_wrong_credentials():
    routes = _walk(get_resolver())
    offenders, checked = _http_offenders(routes)
    record(
        "unprotected_routes",
        len(offenders),
        checked=checked,
        detail="\n".join(sorted(offenders)),
        source="tests/trust/test_route_crawl.py (HTTP: anonymous, bogus bearer, bogus cookie)",
    )
    assert len(routes) > 60
    assert not offenders, "routes answer without valid credentials:\n" + "\n".join(
        sorted(offenders)
    )


@pytest.mark.django_db
def test_a_route_added_without_protection_is_caught(settings):
    """The crawl is not a list: a new open route (here from a test URL conf) is found."""
    settings.ROOT_URLCONF = "tests.trust.leaky_urls"
    offenders, _ = _http_offenders(_walk(get_resolver("tests.trust.leaky_urls")))
    assert {o.split(" -> ")[0] for o in offenders if "/leak/" in o} == {
        f"{label} {method.upper()} /leak/" for label in _clients() for method in METHODS
    }
    assert all("/leak/" in o for o in offenders)


@pytest.mark.django_db
def test_public_http_routes_serve_no_user_data_to_a_wrong_bearer():
    """A wrong bearer token is refused even on public routes (never treated as anonymous)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {BOGUS}")
    assert client.get("/api/v1/users/me/").status_code == 401
    assert client.post("/api/v1/auth/login/", {}, format="json").status_code == 401


def _ws_routes(
    patterns: list[URLPattern | URLResolver] | None = None, prefix: str = "/"
) -> list[str]:
    from cortex.routing import websocket_urlpatterns

    found: list[str] = []
    for entry in websocket_urlpatterns if patterns is None else patterns:
        path = prefix + _sample(entry.pattern)
        if isinstance(entry, URLResolver):
            found.extend(_ws_routes(entry.url_patterns, path))
        else:
            found.append(path)
    return found


async def _ws_refused(path: str, headers: list[tuple[bytes, bytes]]) -> tuple[bool, str]:
    """Connect; refused means closed at once with 4401/4403 and no frame sent (README: refused
    connects complete the handshake and close with the code, never an HTTP 403)."""
    from cortex.asgi import application

    ws = WebsocketCommunicator(application, path, headers=headers)
    try:
        connected, code = await ws.connect(timeout=10)
        if not connected:
            return False, f"closed before accept ({code}): an HTTP 403, not 4401/4403"
        frame = await ws.receive_output(timeout=1)
        if frame.get("type") == "websocket.close" and frame.get("code") in (4401, 4403):
            return True, f"closed {frame['code']}"
        return False, f"accepted, then {frame.get('type')}"
    except TimeoutError:
        return False, "accepted and kept open"
    finally:
        await ws.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_every_websocket_route_refuses_missing_and_wrong_credentials():
    routes = _ws_routes()
    assert routes, "no WebSocket routes found"
    callers = {
        "anonymous": ("", [ORIGIN]),
        "bogus-ticket": (f"?ticket={BOGUS}", [ORIGIN]),
        "bogus-cookie": ("", [ORIGIN, (b"cookie", f"sessionid={BOGUS}".encode())]),
        "foreign-origin": ("", [(b"origin", b"https://evil.example")]),
    }
    offenders = []
    checked = 0
    for path in routes:
        for label, (query, headers) in callers.items():
            refused, how = await _ws_refused(path + query, headers)
            checked += 1
            if not refused:
                offenders.append(f"{label} {path}: {how}")
    record(
        "unprotected_routes",
        len(offenders),
        checked=checked,
        detail="\n".join(offenders),
        source="tests/trust/test_route_crawl.py (WebSocket: no/bogus ticket, cookie, origin)",
    )
    assert not offenders, "WebSocket routes accept without credentials:\n" + "\n".join(offenders)


def _grpc_methods() -> list[tuple[str, Any]]:
    """Every method of every service in the mesh protobuf package, as (path, descriptor)."""
    methods = []
    for service in mesh_pb2.DESCRIPTOR.services_by_name.values():
        for method in service.methods:
            methods.append((f"/{service.full_name}/{method.name}", method))
    return methods


async def _grpc_call(address: str, path: str, method: Any, metadata: tuple) -> grpc.StatusCode:
    """Call `path` with an empty request; the status it ends with."""
    request_cls = message_factory.GetMessageClass(method.input_type)
    response_cls = message_factory.GetMessageClass(method.output_type)
    call: Any
    kwargs: dict[str, Any] = {
        "request_serializer": request_cls.SerializeToString,
        "response_deserializer": response_cls.FromString,
    }
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            if method.client_streaming and method.server_streaming:
                call = channel.stream_stream(path, **kwargs)(
                    iter([request_cls()]), metadata=metadata, timeout=10
                )
                async for _ in call:
                    return grpc.StatusCode.OK
                return await call.code()
            if method.client_streaming:
                await channel.stream_unary(path, **kwargs)(
                    iter([request_cls()]), metadata=metadata, timeout=10
                )
            elif method.server_streaming:
                call = channel.unary_stream(path, **kwargs)(
                    request_cls(), metadata=metadata, timeout=10
                )
                async for _ in call:
                    return grpc.StatusCode.OK
                return await call.code()
            else:
                await channel.unary_unary(path, **kwargs)(
                    request_cls(), metadata=metadata, timeout=10
                )
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


async def test_every_grpc_method_refuses_missing_and_wrong_credentials(mesh_address, make_node):
    from asgiref.sync import sync_to_async

    node, invite = await sync_to_async(make_node)("crawl-node")
    methods = _grpc_methods()
    assert "/cortex.mesh.v1.NodeMesh/Connect" in dict(methods)
    callers = {
        "no-metadata": (),
        "wrong-credential": (("cortex-node-id", node.node_id), ("cortex-node-credential", BOGUS)),
        "invite-as-credential": (
            ("cortex-node-id", node.node_id),
            ("cortex-node-credential", invite),
        ),
        "unknown-node": (("cortex-node-id", "no-such-node"), ("cortex-node-credential", BOGUS)),
    }
    offenders = []
    checked = 0
    for path, method in methods:
        for label, metadata in callers.items():
            code = await _grpc_call(mesh_address, path, method, metadata)
            checked += 1
            # Public methods refuse their own bad input (an empty invite); others refuse the caller.
            expected = (
                {
                    grpc.StatusCode.UNAUTHENTICATED,
                    grpc.StatusCode.INVALID_ARGUMENT,
                    grpc.StatusCode.PERMISSION_DENIED,
                    grpc.StatusCode.NOT_FOUND,
                }
                if path in GRPC_PUBLIC
                else {grpc.StatusCode.UNAUTHENTICATED}
            )
            if code not in expected:
                offenders.append(f"{label} {path} -> {code.name}")
    # Join with a wrong invite for a real node: refused, and no credential is issued.
    async with grpc.aio.insecure_channel(mesh_address) as channel:
        join = channel.unary_unary(
            "/cortex.mesh.v1.NodeMesh/Join",
            request_serializer=mesh_pb2.JoinRequest.SerializeToString,
            response_deserializer=mesh_pb2.JoinResponse.FromString,
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await join(mesh_pb2.JoinRequest(node_id=node.node_id, invite_token=BOGUS), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # The health service is public by design and says nothing but SERVING.
        health = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=5
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
    from mesh.models import NodeCredential

    assert await sync_to_async(NodeCredential.objects.filter(node=node).count)() == 0
    record(
        "unprotected_routes",
        len(offenders),
        checked=checked + 1,
        detail="\n".join(offenders),
        source="tests/trust/test_route_crawl.py (gRPC: every NodeMesh method from the descriptor)",
    )
    assert not offenders, "gRPC methods answer without a valid credential:\n" + "\n".join(offenders)
