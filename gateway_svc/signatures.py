"""Ed25519 verification, on the event loop or on a worker thread.

Verifying a signature is the costliest step of a signed request, and libsodium (PyNaCl)
does it in about half the time OpenSSL (`cryptography`) takes — measured side by side on
this machine — and without holding the GIL.

On the loop it costs its own time (65-80 µs here) and stalls other requests for that long.
On a worker thread it runs on another core while the loop parses, routes and answers, but
the hand-off costs a thread wake-up each way: 115 µs of CPU more per signature when each
goes alone, 30-65 µs when eight go together (reports/order-path-profile.md). The thread
pays only when a core is free for it: one gateway process on a host with cores to spare.
With a process per core (`GATEWAY_REUSE_PORT`, or replicas limited to a core each) there
is none, and the loop is cheaper; that is the default (`GATEWAY_VERIFY_ON_THREAD`).

On the thread, the signatures of one turn of the loop go together: the first one of a
turn schedules the job, the rest of that turn join it, and signatures that arrive while a
job runs wait for it to end and go in the next one. At most one job is in flight: one
thread, whose work never competes with itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

PublicKey = VerifyKey
SIGNATURE_BYTES = 64

# (key, signature, messages it may sign): valid if it signs any one of them.
Check = tuple[PublicKey, bytes, Iterable[bytes]]


def ed25519_key(raw: bytes) -> PublicKey:
    """The Ed25519 public key of 32 raw bytes (ValueError when it is not one)."""
    return VerifyKey(raw)


def _valid(key: PublicKey, signature: bytes, messages: Iterable[bytes]) -> bool:
    if len(signature) != SIGNATURE_BYTES:  # libsodium raises on it rather than refusing
        return False
    for message in messages:
        try:
            key.verify(message, signature)
        except BadSignatureError:
            continue
        return True
    return False


def _run(checks: list[Check]) -> list[bool]:
    return [_valid(*check) for check in checks]


class SignatureChecker:
    def __init__(self, *, on_thread: bool) -> None:
        self._on_thread = on_thread
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ed25519")
        self._waiting: list[tuple[Check, asyncio.Future[bool]]] = []
        self._busy = False  # a job is scheduled or running
        self._closed = False

    async def verify(self, key: PublicKey, signature: bytes, messages: Iterable[bytes]) -> bool:
        """True if `signature` is `key`'s over one of `messages` (tried in order, lazily)."""
        if not self._on_thread:
            if self._closed:
                raise RuntimeError("the signature checker is closed")
            return _valid(key, signature, messages)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._waiting.append(((key, signature, messages), future))
        if not self._busy:
            self._busy = True
            loop.call_soon(self._start)  # the rest of this turn joins the job
        return await future

    def close(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _start(self) -> None:
        taken, self._waiting = self._waiting, []
        loop = asyncio.get_running_loop()
        try:
            job = loop.run_in_executor(self._executor, _run, [check for check, _ in taken])
        except RuntimeError as error:  # closed: the application is shutting down
            job = loop.create_future()
            job.set_exception(error)
        job.add_done_callback(lambda done: self._finish(taken, done))

    def _finish(
        self, taken: list[tuple[Check, asyncio.Future[bool]]], done: asyncio.Future[list[bool]]
    ) -> None:
        if done.cancelled():
            results: list[bool] | BaseException = asyncio.CancelledError()
        else:
            results = done.exception() or done.result()
        for i, (_, future) in enumerate(taken):
            if future.done():  # its request went away
                continue
            if isinstance(results, BaseException):
                future.set_exception(results)
            else:
                future.set_result(results[i])
        if self._waiting:
            self._start()
        else:
            self._busy = False
