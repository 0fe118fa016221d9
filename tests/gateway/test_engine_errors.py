"""The one table that turns the engine's result codes into API errors covers all of them."""

from __future__ import annotations

from exchange.common.v1 import common_pb2 as cpb
from gateway_svc.errors import engine_error


def test_every_engine_result_code_is_a_client_or_availability_error_with_its_reason() -> None:
    for name, number in cpb.ResultCode.items():
        if number == cpb.RESULT_CODE_OK:
            continue
        error = engine_error(number, "refused")
        assert error.status in (400, 404, 409, 503), name
        assert error.details["reason"] == name.removeprefix("RESULT_CODE_")


def test_an_unknown_engine_code_is_a_server_error() -> None:
    error = engine_error(123_456, "?")
    assert (error.status, error.code, error.details["reason"]) == (500, "SERVER_ERROR", "123456")
