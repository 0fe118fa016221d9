import pytest

from tests.engine.core.driver import Exchange


@pytest.fixture
def ex() -> Exchange:
    """An engine with the markets of engine_svc/markets.toml (TATA_INR: tick 0.01 INR,
    step 1 TATA, maker 10 bps, taker 20 bps) and no balances."""
    return Exchange()
