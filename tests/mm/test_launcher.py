"""`make run` starts the market maker and the flow after the gateway, unless EXCHANGE_MM=off."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.stack import StackSettings, exchange_specs


def test_the_maker_and_the_flow_start_last_by_default(tmp_path: Path) -> None:
    specs = exchange_specs(StackSettings.from_env({"ENGINE_GRPC_PORT": "6000"}, cwd=tmp_path))
    gateway = [spec.name for spec in specs].index("gateway")
    maker, flow = specs[gateway + 1 :]
    assert maker.argv[1:] == ("-m", "mm_svc")
    assert flow.argv[1:] == ("-m", "mm_svc.flow")
    assert maker.env["ENGINE_ADDRESS"] == flow.env["ENGINE_ADDRESS"] == "127.0.0.1:6000"
    assert (maker.health_address, flow.health_address) == ("127.0.0.1:50061", "127.0.0.1:50062")
    assert (maker.env["MM_METRICS_PORT"], flow.env["MM_METRICS_PORT"]) == ("9161", "9162")


@pytest.mark.parametrize("value", ["off", "OFF", "false", "0"])
def test_exchange_mm_off_leaves_them_out(tmp_path: Path, value: str) -> None:
    specs = exchange_specs(StackSettings.from_env({"EXCHANGE_MM": value}, cwd=tmp_path))
    assert not {"mm", "flow"} & {spec.name for spec in specs}


def test_a_wrong_exchange_mm_is_named() -> None:
    with pytest.raises(ValueError, match="EXCHANGE_MM='sometimes' must be on or off"):
        StackSettings.from_env({"EXCHANGE_MM": "sometimes"})
