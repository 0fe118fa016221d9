"""The client's address: the socket's peer, or what a trusted proxy says it forwarded.

`X-Forwarded-For` is believed only when the peer is one of GATEWAY_TRUSTED_PROXIES (the
ingress), and then read from the right: each proxy appends the address it received from,
so the first hop from the right that is not a trusted proxy is the client. Anything to its
left was written by the client and is ignored, so the header cannot be spoofed from outside.
With no trusted proxies (the default, and `make run`), no header is read at all.

The middleware gives every later middleware and handler that address as `request.remote`
(rate limits per address, API-key allowlists, the audit log).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway_svc.errors import Handler

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Sequence[str]) -> tuple[Network, ...]:
    """CIDR networks (an address alone is its /32 or /128); ValueError names a bad one."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP network such as 10.0.0.0/8") from None
    return tuple(networks)


def _trusted(address: str, proxies: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in proxies)


def client_address(peer: str, forwarded_for: Sequence[str], proxies: tuple[Network, ...]) -> str:
    """The client behind `peer`, given the X-Forwarded-For headers of its request."""
    if not forwarded_for or not _trusted(peer, proxies):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    nearest = peer
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return nearest  # garbled: keep the last address a trusted proxy vouched for
        if not _trusted(hop, proxies):
            return hop
        nearest = hop
    return nearest


def client_address_middleware(proxies: tuple[Network, ...]) -> Middleware:
    """Outermost middleware: later ones and handlers see the client as `request.remote`."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        peer = request.remote or ""
        forwarded = request.headers.getall("X-Forwarded-For", [])
        if proxies and forwarded:
            address = client_address(peer, forwarded, proxies)
            if address != peer:
                request = request.clone(remote=address)
        return await handler(request)

    return middleware
