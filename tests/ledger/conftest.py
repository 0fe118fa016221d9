"""Fixtures for the ledger: the engine's in-process server, reused from its own tests."""

from tests.engine.conftest import engine

__all__ = ["engine"]
