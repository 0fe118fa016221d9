"""A service refuses to start on bad configuration, saying which variable is wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

from servicekit.process import start_process
from servicekit.settings import SettingsError


@dataclass(frozen=True)
class Settings:
    log_level: str


def test_bad_settings_exit_with_the_message() -> None:
    def read() -> Settings:
        raise SettingsError("LEDGER_GRPC_PORT must be an integer, got 'x'")

    with pytest.raises(SystemExit) as info:
        start_process("ledger", read)
    assert (
        info.value.code
        == "ledger_svc: configuration error: LEDGER_GRPC_PORT must be an integer, got 'x'"
    )


def test_good_settings_are_returned() -> None:
    assert start_process("ledger", lambda: Settings("WARNING")) == Settings("WARNING")


@pytest.mark.parametrize(
    ("module", "env", "message"),
    [
        ("gateway_svc", {"GATEWAY_TOKEN_SECRET": "short"}, "GATEWAY_TOKEN_SECRET must be set"),
        ("ledger_svc", {"DATABASE_URL": "mysql://db/x"}, "DATABASE_URL must be a postgresql://"),
        ("engine_svc", {"ENGINE_GRPC_PORT": "port"}, "ENGINE_GRPC_PORT must be an integer"),
    ],
)
def test_each_service_refuses_bad_configuration(
    module: str, env: dict[str, str], message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert f"{module}: configuration error: {message}" in result.stderr
