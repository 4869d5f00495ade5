"""The NodeMesh servicer: translates protobuf to mesh services and back, keeps no state."""

from __future__ import annotations

from typing import Any

import grpc

from cortex.errors import CortexError
from mesh.agent.pb import mesh_pb2, mesh_pb2_grpc
from mesh.grpc.auth import NODE_ID_KEY, audit_context_of
from mesh.grpc.connection import NodeConnection
from mesh.grpc.hub import StreamHub
from mesh.grpc.status import abort_with, metadata_dict
from mesh.services import aio


class NodeMeshServicer(mesh_pb2_grpc.NodeMeshServicer):
    def __init__(self, hub: StreamHub) -> None:
        self.hub = hub

    async def Join(  # noqa: N802  # gRPC method name
        self, request: mesh_pb2.JoinRequest, context: grpc.aio.ServicerContext
    ) -> mesh_pb2.JoinResponse:
        try:
            node, credential = await aio.invite_exchange(
                node_id=request.node_id,
                invite_token=request.invite_token,
                version=request.version,
                platform=request.platform,
                audit_context=audit_context_of(context),
            )
        except CortexError as exc:
            await abort_with(context, exc)
        return mesh_pb2.JoinResponse(node_id=node.node_id, credential=credential)

    async def Connect(  # noqa: N802  # gRPC method name
        self, request_iterator: Any, context: grpc.aio.ServicerContext
    ) -> None:
        # The interceptor has authenticated this node id before the handler runs.
        node_id = metadata_dict(context.invocation_metadata()).get(NODE_ID_KEY, "")
        await NodeConnection(self.hub, node_id, context).run(request_iterator)
