"""Server-side request forgery guard for provider base URLs.

Names are resolved and every address is checked: loopback, private, link-local, multicast,
reserved and cloud-metadata addresses are refused unless the host is listed in
settings.PROVIDER_ALLOWED_HOSTS (an admin pointing at a local Ollama on purpose). The check runs
again at connect time inside the HTTP transport, and the connection goes to the address that was
checked, so a name that re-resolves elsewhere (DNS rebinding) cannot slip through. Provider calls
never follow redirects.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from providers.errors import BlockedAddress

METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _allowed_hosts() -> set[str]:
    return {h.strip().lower().strip("[]") for h in settings.PROVIDER_ALLOWED_HOSTS if h.strip()}


def host_is_allowed(host: str) -> bool:
    """Whether the admin listed this host (name or literal address) as a permitted target."""
    return host.lower().strip("[]").rstrip(".") in _allowed_hosts()


def address_is_refused(address: IPAddress) -> bool:
    """True for any address that is not a plain public unicast address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address in METADATA_ADDRESSES
        or address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def resolve_checked(host: str, port: int) -> list[str]:
    """Resolve a host and return its addresses; raises BlockedAddress if any is refused."""
    literal = _literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            # Resolution failure is "unreachable", decided by the caller's connect attempt.
            return []
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    refused = [a for a in addresses if address_is_refused(a)]
    if refused:
        raise BlockedAddress(
            f"Host {host!r} resolves to a refused address ({refused[0]}); an admin can allow "
            "it in CORTEX_PROVIDER_ALLOWED_HOSTS."
        )
    return [str(a) for a in addresses]


def check_url(url: str, *, resolve: bool = True) -> None:
    """Validate a provider base URL; raises BlockedAddress for refused targets.

    With resolve=False only literal addresses are judged (used when saving, so an offline
    resolver does not block edits; the connect-time check still applies).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BlockedAddress("Base URLs must be http(s) URLs with a host.")
    host = parts.hostname
    if host_is_allowed(host):
        return
    if not resolve and _literal(host) is None:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    resolve_checked(host, port)


def guarded_transport(httpx_module: Any) -> Any:
    """An HTTP transport (for httpx or httpx2) whose every TCP connect passes the guard."""
    transport = httpx_module.HTTPTransport(trust_env=False)
    pool = transport._pool  # noqa: SLF001  # no public hook for the network backend
    base_backend = type(pool._network_backend)  # noqa: SLF001

    class GuardedBackend(base_backend):  # type: ignore[misc, valid-type]
        """Connects only to addresses that passed the guard, and to exactly those."""

        def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
            if isinstance(host, bytes):
                host = host.decode("ascii")
            if host_is_allowed(host):
                return super().connect_tcp(host, port, *args, **kwargs)
            addresses = resolve_checked(host, port)
            target = addresses[0] if addresses else host
            return super().connect_tcp(target, port, *args, **kwargs)

    pool._network_backend = GuardedBackend()  # noqa: SLF001
    return transport


def guarded_async_transport(httpx_module: Any) -> Any:
    """The async counterpart of `guarded_transport`, for httpx or httpx2 AsyncClients.

    The name is resolved in a worker thread (getaddrinfo blocks) and the connection goes to the
    address that passed; TLS still verifies the certificate against the original host name.
    """
    import anyio.to_thread

    transport = httpx_module.AsyncHTTPTransport(trust_env=False)
    pool = transport._pool  # noqa: SLF001  # no public hook for the network backend
    base_backend = type(pool._network_backend)  # noqa: SLF001

    class GuardedAsyncBackend(base_backend):  # type: ignore[misc, valid-type]
        """Connects only to addresses that passed the guard, and to exactly those."""

        async def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
            if isinstance(host, bytes):
                host = host.decode("ascii")
            if host_is_allowed(host):
                return await super().connect_tcp(host, port, *args, **kwargs)
            addresses = await anyio.to_thread.run_sync(resolve_checked, host, port)
            target = addresses[0] if addresses else host
            return await super().connect_tcp(target, port, *args, **kwargs)

    pool._network_backend = GuardedAsyncBackend()  # noqa: SLF001
    return transport
