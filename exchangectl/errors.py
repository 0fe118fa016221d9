"""Failures and their exit statuses, so that scripts can tell them apart.

0 done; 1 refused by a service, or a check found a problem (a difference, a service down);
2 bad usage; 3 a service could not be reached or did not answer in time; 4 the admin
credential was missing or wrong.
"""

from __future__ import annotations

import grpc

from exchange.common.v1 import common_pb2 as cpb

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_DENIED = 4

_UNREACHABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


class CtlError(Exception):
    """What went wrong, as a stable code word and a sentence, and the exit status it gives."""

    def __init__(self, code: str, message: str, exit_status: int = EXIT_PROBLEM) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.exit_status = exit_status


def from_rpc(service: str, address: str, exc: grpc.aio.AioRpcError) -> CtlError:
    code = exc.code()
    details = exc.details() or ""
    if code in _UNREACHABLE:
        return CtlError(
            code.name, f"the {service} at {address} did not answer: {details}", EXIT_UNREACHABLE
        )
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return CtlError(
            code.name,
            f"the {service} refused the admin credential ({details}); give the engine's"
            " ENGINE_ADMIN_TOKEN in the environment or with --token-file",
            EXIT_DENIED,
        )
    return CtlError(code.name, f"the {service} at {address}: {details}")


def check_result(code: int, message: str) -> None:
    """Raises for an engine reply whose ResultCode is not OK."""
    if code != cpb.RESULT_CODE_OK:
        raise CtlError(result_name(code), message or "refused by the engine")


def result_name(code: int) -> str:
    try:
        return cpb.ResultCode.Name(code).removeprefix("RESULT_CODE_")  # type: ignore[arg-type]
    except ValueError:
        return str(code)
