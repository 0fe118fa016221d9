"""The deployed TimescaleDB is the one the ledger's Timescale track is tested with: the
version `make deps` builds, for the tested server's major version, with the same settings."""

from __future__ import annotations

import re
from typing import Any

import yaml

from launcher.postgres import TIMESCALE_SETTINGS, bin_dir
from tests.deploy.manifests import OVERLAYS, REPO, containers, render

VERSION = re.search(r"^TIMESCALE_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.M)
IMAGE = f"timescale/timescaledb:{VERSION and VERSION[1]}-pg{bin_dir().parent.name}"
ARGS = ["postgres", *(arg for item in TIMESCALE_SETTINGS.items() for arg in ("-c", "=".join(item)))]


def test_the_manifests_run_the_tested_version_and_settings() -> None:
    for overlay in OVERLAYS:
        found = [c for _, c in containers(render(overlay)) if c["name"] == "timescaledb"]
        assert [(c["image"], c["args"][: len(ARGS)]) for c in found] == [(IMAGE, ARGS)], overlay
        # After them, prod adds its TLS settings alone (tests/deploy/test_prod_tls.py).
        added = found[0]["args"][len(ARGS) :]
        assert all(a == "-c" or a.startswith("ssl") for a in added), overlay
        assert bool(added) == (overlay == "prod"), overlay


def test_compose_runs_the_same() -> None:
    compose: dict[str, Any] = yaml.safe_load((REPO / "compose.yaml").read_text())
    service = compose["services"]["timescaledb"]
    assert (service["image"], service["command"]) == (IMAGE, ARGS)
