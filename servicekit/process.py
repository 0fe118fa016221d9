"""The start of every service process: settings, logs, event loop."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Protocol, TypeVar

from servicekit.logs import configure_logging
from servicekit.settings import SettingsError


class _Settings(Protocol):
    @property
    def log_level(self) -> str: ...


S = TypeVar("S", bound=_Settings)


def start_process(service: str, read_settings: Callable[[], S]) -> S:
    """Read the settings (exit with a message naming what is wrong), configure JSON logs as
    `service`, and install uvloop when it is available."""
    try:
        settings = read_settings()
    except SettingsError as exc:
        sys.exit(f"{service}_svc: configuration error: {exc}")
    configure_logging(service, settings.log_level)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    return settings
