"""Where an action comes from: the audit context a transport builds once and hands to services.

Services used to end in `request: Any = None, source: str = "api"` and dig the client address
out of whatever `request` was. Now each transport builds one `AuditContext` (a viewset's
`self.audit_context`, `AuditContext.admin(request)`, a consumer's `self.audit_context`,
`AuditContext.grpc(...)` in servicers, `AuditContext.command(...)` in management commands,
`AuditContext.system(...)` for background work) and services pass it to `audit_record`, which
writes `transport` as the audit row's `source`, plus `client_ip` and `user_agent`. Who acts is
the service's `actor` argument (None for commands and system work, named here by `label`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

from cortex.proxies import scope_client_ip

# Every value the audit log's `source` column holds; a new transport is added here.
Transport = Literal[
    "api",  # REST calls
    "admin",  # the Django admin
    "ws",  # WebSocket handshakes (refusals)
    "console",  # commands sent over a node's live console socket
    "grpc",  # node agents
    "command",  # management commands
    "system",  # background work (sweeper, scheduler, timeouts)
    "oidc",  # the OIDC sign-in flow
    "chat",  # a chat session's own decisions (approval rules)
    "tool",  # LLM tools acting for the chat user
    "install_link",  # the unauthenticated install script and bundle
    "import",  # preferences imported from YAML (the layers it writes)
    "webhook",  # a signed webhook starting an agent run
]
TRANSPORTS: tuple[str, ...] = get_args(Transport)

USER_AGENT_MAX = 512  # the audit column's width


@dataclass(frozen=True, slots=True)
class AuditContext:
    """Through which transport, from which address and client an action arrives."""

    transport: Transport = "api"
    client_ip: str | None = None
    user_agent: str = ""
    label: str = ""  # the command or background job acting without a user (not stored)

    def via(self, transport: Transport) -> AuditContext:
        """The same client, recorded under another transport (e.g. an import's layer writes)."""
        return replace(self, transport=transport)

    @classmethod
    def from_request(cls, request: Any, transport: Transport = "api") -> AuditContext:
        """From a Django or DRF request; REMOTE_ADDR was resolved by `cortex.proxies`."""
        meta = getattr(request, "META", None) or {}
        return cls(
            transport=transport,
            client_ip=meta.get("REMOTE_ADDR") or None,
            user_agent=str(meta.get("HTTP_USER_AGENT", ""))[:USER_AGENT_MAX],
        )

    @classmethod
    def admin(cls, request: Any) -> AuditContext:
        """For a Django admin view or action."""
        return cls.from_request(request, "admin")

    @classmethod
    def from_scope(cls, scope: Mapping[str, Any], transport: Transport = "ws") -> AuditContext:
        """From a Channels scope (the client address resolved like HTTP's)."""
        agent = ""
        for name, value in scope.get("headers") or ():
            if name == b"user-agent":
                agent = value.decode("latin-1")
        return cls(
            transport=transport,
            client_ip=scope_client_ip(scope),
            user_agent=agent[:USER_AGENT_MAX],
        )

    @classmethod
    def grpc(cls, client_ip: str | None) -> AuditContext:
        """For a node agent's call; `client_ip` is `mesh.grpc.auth.peer_ip(context)`."""
        return cls(transport="grpc", client_ip=client_ip)

    @classmethod
    def command(cls, name: str = "") -> AuditContext:
        """For a management command (`name` is the command's)."""
        return cls(transport="command", label=name)

    @classmethod
    def system(cls, name: str) -> AuditContext:
        """For background work with no user behind it, e.g. `AuditContext.system("sweeper")`."""
        return cls(transport="system", label=name)


# What a service records when no transport handed it a context (tests, shells): the same as
# the old `request=None, source="api"` default.
DEFAULT_CONTEXT = AuditContext()
# Work that arrives with no client to describe, one per fixed transport.
GRPC_CONTEXT = AuditContext(transport="grpc")  # a node's call whose peer address is not at hand
OIDC_CONTEXT = AuditContext(transport="oidc")
CHAT_CONTEXT = AuditContext(transport="chat")  # a chat turn deciding for its owner
TOOL_CONTEXT = AuditContext(transport="tool")  # an LLM tool acting under the chat user's grants
INSTALL_LINK_CONTEXT = AuditContext(transport="install_link")
