"""The core's enums and result codes mirror exchange.common.v1 value for value, so the service
edge converts with a plain int(). Proto names carry their enum's prefix (SIDE_BUY); each proto
enum also has an UNSPECIFIED zero that the core has no member for (except ResultCode OK = 0)."""

from enum import IntEnum

import pytest
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from engine_svc.core import types
from exchange.common.v1 import common_pb2 as pb

PAIRS = [
    (types.Side, pb.Side, "SIDE_"),
    (types.OrderType, pb.OrderType, "ORDER_TYPE_"),
    (types.TimeInForce, pb.TimeInForce, "TIME_IN_FORCE_"),
    (types.SelfTradePrevention, pb.SelfTradePrevention, "SELF_TRADE_PREVENTION_"),
    (types.OrderStatus, pb.OrderStatus, "ORDER_STATUS_"),
    (types.MarketStatus, pb.MarketStatus, "MARKET_STATUS_"),
    (types.CloseReason, pb.CloseReason, "CLOSE_REASON_"),
    (types.Code, pb.ResultCode, "RESULT_CODE_"),
]


@pytest.mark.parametrize(("core", "proto", "prefix"), PAIRS, ids=[p[0].__name__ for p in PAIRS])
def test_core_enum_matches_proto(core: type[IntEnum], proto: EnumTypeWrapper, prefix: str) -> None:
    from_proto = {
        name.removeprefix(prefix): value
        for name, value in proto.items()
        if name != f"{prefix}UNSPECIFIED"
    }
    assert all(name.startswith(prefix) for name, _ in proto.items())
    assert {m.name: m.value for m in core} == from_proto
