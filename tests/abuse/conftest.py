"""Abuse tests run against the real stack: fixtures, the Hypothesis profile, the report.

The profile keeps example counts modest so the folder runs in well under a minute;
ABUSE_EXAMPLES raises them for a longer fuzzing run. Counts of every case go to
tests/abuse/artifacts/abuse-report.json and a summary is printed at the end, with the
pass/fail of every authorization case and the figures of the rate-limit flood.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from tests.abuse.tally import TALLY
from tests.engine.conftest import engine
from tests.gateway.conftest import ledger_address, stack, stack_factory
from tests.stream.conftest import live

__all__ = ["engine", "ledger_address", "live", "stack", "stack_factory"]

settings.register_profile(
    "abuse",
    max_examples=int(os.environ.get("ABUSE_EXAMPLES", "60")),
    deadline=None,
    # One stack serves every example of a test: that is the point (state carries over).
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ABUSE = settings.get_profile("abuse")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TALLY.empty:
        return
    path = TALLY.write()
    terminalreporter.section("abuse report")
    for line in TALLY.summary():
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"written to {path}")
