"""Ed25519 verification on the loop or the worker thread: right answers (on the thread off
the loop), never a hang."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway_svc.signatures import PublicKey, SignatureChecker, ed25519_key


def public(key: Ed25519PrivateKey) -> PublicKey:
    return ed25519_key(key.public_key().public_bytes_raw())


@pytest.mark.parametrize("on_thread", [True, False])
async def test_a_turn_of_signatures_is_checked_each_on_its_own(on_thread: bool) -> None:
    checker = SignatureChecker(on_thread=on_thread)
    keys = [Ed25519PrivateKey.generate() for _ in range(4)]
    threads: set[int] = set()

    def messages(*candidates: bytes) -> Iterator[bytes]:
        for candidate in candidates:
            threads.add(threading.get_ident())
            yield candidate

    checks = []
    for i in range(60):
        key = keys[i % 4]
        message = f"order {i}".encode()
        signature = key.sign(message)
        if i % 3 == 0:  # signed by another key: refused
            checks.append((keys[(i + 1) % 4], signature, messages(message), False))
        elif i % 3 == 1:  # the second spelling is the signed one
            checks.append((key, signature, messages(b"other", message), True))
        else:
            checks.append((key, signature, messages(message), True))
    try:
        results = await asyncio.gather(*(checker.verify(public(k), s, m) for k, s, m, _ in checks))
        assert results == [expected for *_, expected in checks]
        assert threads
        assert (threading.get_ident() not in threads) == on_thread
        # Later signatures start a new job.
        key = keys[0]
        assert await checker.verify(public(key), key.sign(b"late"), iter([b"late"]))
    finally:
        checker.close()


@pytest.mark.parametrize("on_thread", [True, False])
async def test_a_closed_checker_fails_instead_of_waiting_forever(on_thread: bool) -> None:
    checker = SignatureChecker(on_thread=on_thread)
    checker.close()
    key = Ed25519PrivateKey.generate()
    async with asyncio.timeout(5):
        with pytest.raises(RuntimeError):
            await checker.verify(public(key), key.sign(b"m"), iter([b"m"]))
