"""The client address of a request: the TCP peer, or what a trusted proxy says it forwarded.

`X-Forwarded-For` and its kin are believed only from peers inside `CORTEX_TRUSTED_PROXIES`
(CIDRs, empty by default). From anyone else they are removed before the request reaches Django
or a consumer, so no throttle, audit row or redirect can read a forged one. The ASGI servers
run without their own proxy-header handling (`daphne` without `--proxy-headers`, uvicorn with
`proxy_headers=False`); `TrustedProxyMiddleware` wraps the whole ASGI application instead.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from django.conf import settings

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Headers that only a proxy may set; dropped when the peer is not a trusted proxy.
FORWARDED_HEADERS = frozenset(
    {
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-forwarded-prefix",
        b"x-real-ip",
        b"forwarded",
    }
)


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip())


def trusted_networks() -> tuple[IPNetwork, ...]:
    """`CORTEX_TRUSTED_PROXIES` parsed (validated at settings load)."""
    return _networks(tuple(settings.TRUSTED_PROXIES))


def _parse(value: str) -> IPAddress | None:
    text = value.strip().strip('"')
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "192.0.2.1:443"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d; compare them as IPv4.
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped if mapped is not None else address


def _trusted(address: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    return any(address in net for net in networks if net.version == address.version)


def client_address(peer: str | None, forwarded_for: str | None) -> str | None:
    """The client's address: `peer`, unless it is a trusted proxy forwarding for someone.

    The `X-Forwarded-For` chain is read from the right (each proxy appends the address it
    saw); the first address that is not a trusted proxy is the client. An unparseable entry
    ends the walk: everything left of it could be forged.
    """
    if not peer:
        return None
    networks = trusted_networks()
    parsed_peer = _parse(peer)
    if parsed_peer is None or not networks or not _trusted(parsed_peer, networks):
        return peer
    client = parsed_peer
    for entry in reversed((forwarded_for or "").split(",")):
        address = _parse(entry)
        if address is None:
            break
        client = address
        if not _trusted(address, networks):
            break
    return str(client)


def scope_client_ip(scope: Mapping[str, Any]) -> str | None:
    """The client address of an ASGI scope (already resolved by `TrustedProxyMiddleware`)."""
    client = scope.get("client")
    return str(client[0]) if client else None


def resolve_scope(scope: dict[str, Any]) -> dict[str, Any]:
    """A copy of an HTTP/WebSocket scope whose `client` is the real client, without forwarded
    headers unless a trusted proxy sent them."""
    peer = scope_client_ip(scope)
    headers = list(scope.get("headers") or [])
    peer_address = _parse(peer) if peer else None
    networks = trusted_networks()
    if peer_address is not None and networks and _trusted(peer_address, networks):
        forwarded = ",".join(
            v.decode("latin-1") for k, v in headers if k.lower() == b"x-forwarded-for"
        )
        client = client_address(peer, forwarded)
        if client != peer:
            return {**scope, "client": [client, 0]}
        return scope
    kept = [(k, v) for k, v in headers if k.lower() not in FORWARDED_HEADERS]
    if len(kept) == len(headers):
        return scope
    return {**scope, "headers": kept}


class TrustedProxyMiddleware:
    """ASGI middleware: every HTTP request and WebSocket sees its real client address."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope.get("type") in ("http", "websocket"):
            scope = resolve_scope(scope)
        return await self.app(scope, receive, send)
