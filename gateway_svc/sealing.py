"""HMAC secrets sealed with the deployment's key (API_SECRET_SEAL_KEY), so the database holds
only ciphertext: reading an HMAC key's secret needs both a copy of the database and the key,
which only the gateway's environment has.

AES-256-GCM (cryptography's AESGCM): a sealed secret is a version byte, a random 96-bit nonce,
and the ciphertext with its tag. The API key is the associated data, so a sealed secret moved
onto another key's row does not open. The AES key is derived from the configured passphrase
with HKDF-SHA256, so any long random string will do as the setting.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = b"\x01"
NONCE_BYTES = 12
MIN_PASSPHRASE_CHARS = 32


class Unsealable(Exception):
    """The sealed bytes do not open with this key (another deployment's, or altered)."""


class Sealer:
    def __init__(self, passphrase: str) -> None:
        if len(passphrase) < MIN_PASSPHRASE_CHARS:
            raise ValueError(f"the seal key must be at least {MIN_PASSPHRASE_CHARS} characters")
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"exchange api secret seal v1"
        ).derive(passphrase.encode())
        self._aead = AESGCM(key)

    def seal(self, secret: bytes, api_key: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return VERSION + nonce + self._aead.encrypt(nonce, secret, api_key.encode())

    def open(self, sealed: bytes, api_key: str) -> bytes:
        if sealed[:1] != VERSION:
            raise Unsealable("unknown seal version")
        nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, api_key.encode())
        except InvalidTag:
            raise Unsealable("the sealed secret does not open with this key") from None
