"""Deposit addresses: derived from the deployment's secret, never stored.

An address names its user without a table: its body is the user id masked with a keyed
pad, then a keyed tag over user and network. So every engine holding the same
DEPOSIT_ADDRESS_SECRET gives the same address for a user and network, after any restart,
and only an address this deployment issued resolves back to a user (a typo or a stranger's
address fails the tag). One address per user and network, as on a real chain: every asset
on that network arrives at it.
"""

import hashlib
import hmac

from engine_svc.core.capital_messages import AddressFormat
from engine_svc.core.types import UserId

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_USER_BYTES = 8
_TAG_BYTES = {AddressFormat.EVM: 12, AddressFormat.BASE58: 24}  # 20- and 32-byte bodies


class DepositAddresses:
    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("deposit addresses need a secret")
        self._key = secret.encode()

    def _mac(self, *parts: bytes) -> bytes:
        return hmac.new(self._key, b"|".join(parts), hashlib.sha256).digest()

    def address(self, user: UserId, network: str, fmt: AddressFormat) -> str:
        body = self._body(user, network, fmt)
        return "0x" + body.hex() if fmt is AddressFormat.EVM else _b58encode(body)

    def _body(self, user: UserId, network: str, fmt: AddressFormat) -> bytes:
        raw = user.to_bytes(_USER_BYTES, "big")
        pad = self._mac(b"pad", network.encode())[:_USER_BYTES]
        masked = bytes(a ^ b for a, b in zip(raw, pad, strict=True))
        return masked + self._mac(b"tag", network.encode(), raw)[: _TAG_BYTES[fmt]]

    def user_of(self, address: str, network: str, fmt: AddressFormat) -> UserId | None:
        """The user this deployment gave `address` to on `network`, or None."""
        body = _decode(address, fmt)
        if body is None or len(body) != _USER_BYTES + _TAG_BYTES[fmt]:
            return None
        pad = self._mac(b"pad", network.encode())[:_USER_BYTES]
        user = UserId(
            int.from_bytes(
                bytes(a ^ b for a, b in zip(body[:_USER_BYTES], pad, strict=True)), "big"
            )
        )
        if user <= 0 or not hmac.compare_digest(self._body(user, network, fmt), body):
            return None
        return user


def _decode(address: str, fmt: AddressFormat) -> bytes | None:
    if fmt is AddressFormat.EVM:
        if not address.startswith("0x"):
            return None
        try:
            return bytes.fromhex(address[2:])
        except ValueError:
            return None
    return _b58decode(address)


def _b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def _b58decode(text: str) -> bytes | None:
    if not 0 < len(text) <= 64 or any(ch not in _B58 for ch in text):
        return None
    n = 0
    for ch in text:
        n = n * 58 + _B58.index(ch)
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + (n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b"")
