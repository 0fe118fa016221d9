"""The publisher's balances follow capital moves: deposits credited by custody and every step
of a withdrawal (lock, release, payment and fee), so pushed balances do not drift."""

from __future__ import annotations

from exchange.common.v1 import common_pb2 as cpb
from stream_svc.mirror import FEE_ACCOUNT, Mirror
from stream_svc.redis_keys import user_channel

USER = 7


def deposit(seq: int, credited: str) -> cpb.EngineEvent:
    return cpb.EngineEvent(
        seq=seq,
        deposit_recorded=cpb.DepositRecorded(
            deposit=cpb.Deposit(user_id=USER, asset="USDT"), credited=credited
        ),
    )


def withdrawal(seq: int, **moves: str) -> cpb.EngineEvent:
    return cpb.EngineEvent(
        seq=seq,
        withdrawal_changed=cpb.WithdrawalChanged(
            withdrawal=cpb.Withdrawal(user_id=USER, asset="USDT"), **moves
        ),
    )


def test_deposits_and_withdrawals_move_the_mirrored_balances() -> None:
    mirror = Mirror({"USDT": 6}, {}, {}, seq=0)
    out = mirror.apply([deposit(1, ""), deposit(2, "10")])  # pending, then credited
    assert mirror.balances[(USER, "USDT")] == [10_000_000, 0]
    pushed = out.channels[user_channel(USER)][-1].balance_update
    assert (pushed.available, pushed.locked) == ("10.000000", "0.000000")

    mirror.apply([withdrawal(3, locked="4"), withdrawal(4, unlocked="4")])  # declined
    assert mirror.balances[(USER, "USDT")] == [10_000_000, 0]

    mirror.apply([withdrawal(5, locked="3")])
    assert mirror.balances[(USER, "USDT")] == [7_000_000, 3_000_000]
    out = mirror.apply([withdrawal(6, paid="2.5", fee_paid="0.5")])  # completed
    assert mirror.balances[(USER, "USDT")] == [7_000_000, 0]
    assert mirror.balances[(FEE_ACCOUNT, "USDT")] == [500_000, 0]
    pushed = out.channels[user_channel(USER)][-1].balance_update
    assert (pushed.available, pushed.locked) == ("7.000000", "0.000000")
