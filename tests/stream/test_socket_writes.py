"""bench.socket_writes: the floor of a fan-out write, measured over real loopback sockets."""

from bench.socket_writes import measure


def test_every_write_is_made_and_costs_the_writer_system_time() -> None:
    figures = measure(connections=40, rounds=50, size=1000)
    assert figures["writes"] == 2000
    # 2,000 TCP sends are milliseconds of system time, even where it is counted in ticks.
    assert figures["system_us_per_write"] > 0
    assert figures["user_us_per_write"] >= 0
