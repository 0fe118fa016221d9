"""What an API key may do and from where: its scopes and its address allowlist.

Every route that takes API-key signatures is tagged with the scope it needs (`requires`);
`admit` is the one check, shared by every dialect and the WebSocket, made once the
signature has verified and before anything reaches the engine or the ledger. A route
without a tag grants nothing to an API key (fail closed). Bearer tokens from log-in are
the account holder in person and hold every scope.

Scopes are fixed when a key is made (the ledger stores them; a new key is the way to get
others): `read` (balances, orders, history), `trade` (place and cancel), `withdraw`
(capital requests).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import TypeVar

from aiohttp import web

from gateway_svc.errors import ApiError

H = TypeVar("H", bound=Callable[..., object])


class Scope(StrEnum):
    READ = "read"
    TRADE = "trade"
    WITHDRAW = "withdraw"


ALL_SCOPES = frozenset(Scope)

_REQUIRED: dict[object, Scope] = {}  # handler -> the scope an API key needs for it


def requires(scope: Scope) -> Callable[[H], H]:
    """Tags a route's handler with the scope an API key needs to call it."""

    def tag(handler: H) -> H:
        _REQUIRED[handler] = scope
        return handler

    return tag


def required_scope(request: web.Request) -> Scope | None:
    """The scope the matched route needs of an API key; None when it grants none."""
    return scope_of(request.match_info.handler)


def scope_of(handler: object) -> Scope | None:
    """The scope a route's handler needs of an API key; None when it grants none."""
    return _REQUIRED.get(handler)


def admit(
    scope: Scope | None,
    granted: Sequence[str],
    allowlist: Sequence[str],
    address: str,
) -> None:
    """403 unless a key with `granted` scopes and `allowlist` may do `scope` from `address`."""
    if scope is None:
        raise ApiError(
            403,
            "FORBIDDEN",
            "this endpoint cannot be called with an API key",
            {"reason": "MISSING_PERMISSION"},
        )
    if scope not in granted:
        raise ApiError(
            403,
            "FORBIDDEN",
            f"this API key lacks the {scope.value!r} permission; create a key that has it",
            {"reason": "MISSING_PERMISSION", "required": scope.value},
        )
    if allowlist and not allowed(tuple(allowlist), address):
        raise ApiError(
            403,
            "FORBIDDEN",
            "this API key may not be used from this address",
            {"reason": "IP_NOT_ALLOWED", "address": address},
        )


def allowed(allowlist: tuple[str, ...], address: str) -> bool:
    """Whether `address` is in one of the networks (an unparsable address is in none)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d
    return any(ip in network for network in _networks(allowlist))


@functools.lru_cache(maxsize=4096)
def _networks(
    allowlist: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry) for entry in allowlist)
