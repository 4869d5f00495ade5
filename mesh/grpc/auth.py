"""The interceptor that checks the node credential before any handler but Join and health;
every handler it returns parses requests and maps errors through `decoding.guarded`."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import grpc
from asgiref.sync import sync_to_async
from django.db import close_old_connections

from accounts.context import AuditContext
from mesh.grpc.decoding import guarded
from mesh.grpc.status import ERROR_CODE_KEY, metadata_dict
from mesh.services import aio

NODE_ID_KEY = "cortex-node-id"
CREDENTIAL_KEY = "cortex-node-credential"
JOIN_METHOD = "/cortex.mesh.v1.NodeMesh/Join"
HEALTH_PREFIX = "/grpc.health.v1.Health/"

_close = sync_to_async(close_old_connections, thread_sensitive=True)


def _with_fresh_connections(behaviour: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    async def run(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await _close()
        try:
            return await behaviour(request, context)
        finally:
            await _close()

    return run


def peer_ip(context: grpc.aio.ServicerContext) -> str | None:
    """The peer's IP from gRPC's peer string: `ipv4:1.2.3.4:5` or `ipv6:%5B::1%5D:5`."""
    peer = unquote(context.peer() or "")
    if not peer.startswith(("ipv4:", "ipv6:")):
        return None
    host = peer.split(":", 1)[1].rsplit(":", 1)[0].strip("[]")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def audit_context_of(context: grpc.aio.ServicerContext) -> AuditContext:
    """The audit context of a node's call: transport "grpc" and the peer's address."""
    return AuditContext.grpc(peer_ip(context))


def _refuse(node_id: str, credential: str) -> Callable[[Any], Callable[..., Any]]:
    """A behaviour that audits the refusal (aggregated, see `refusals`) and aborts."""

    def wrap(_behaviour: Any) -> Callable[..., Any]:
        async def run(request: Any, context: grpc.aio.ServicerContext) -> None:
            await aio.credential_refusal_record(
                node_id=node_id, credential=credential, audit_context=audit_context_of(context)
            )
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "A valid node credential is required.",
                trailing_metadata=((ERROR_CODE_KEY, "invalid_credential"),),
            )

        return run

    return wrap


class NodeCredentialInterceptor(grpc.aio.ServerInterceptor):
    """Refuse (UNAUTHENTICATED) any call without a valid `cortex-node-id`/credential pair."""

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        if method.startswith(HEALTH_PREFIX):
            return guarded(handler)
        if method != JOIN_METHOD:
            metadata = metadata_dict(handler_call_details.invocation_metadata)
            await _close()
            node_id = metadata.get(NODE_ID_KEY, "")
            credential = metadata.get(CREDENTIAL_KEY, "")
            node = await aio.credential_authenticate(node_id=node_id, credential=credential)
            if node is None:
                return guarded(handler, _refuse(node_id, credential))
        return guarded(handler, _with_fresh_connections)
