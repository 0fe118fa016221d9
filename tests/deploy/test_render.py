"""Every overlay builds with `kubectl kustomize` and its output validates, strictly (no
unknown field) and offline, against the Kubernetes schemas of every version from 1.29 to the
newest that kubernetes-validate ships; yamllint passes on k8s/ and compose.yaml."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
from kubernetes_validate.utils import SchemaNotFoundError, all_versions
from packaging.version import Version

from tests.deploy.manifests import OVERLAYS, REPO, find, render

OLDEST = Version("1.29")
VERSIONS = sorted({v for v in all_versions() if Version(v) >= OLDEST}, key=Version)
YAMLLINT = str(Path(sys.executable).with_name("yamllint"))
YAMLLINT_CONFIG = Path(__file__).with_name("yamllint.yaml")


def problems(overlay: str, version: str) -> list[str]:
    found = []
    for o in render(overlay):
        where = f"{o['kind']}/{o['metadata']['name']}"
        try:
            kubernetes_validate.validate(o, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            found.append(f"{where}: {path}: {exc.message}")
        except SchemaNotFoundError as exc:
            found.append(f"{where}: {exc.message}")
    return found


def test_schemas_span_the_supported_versions() -> None:
    assert Version(VERSIONS[0]) == OLDEST
    assert len(VERSIONS) >= 5, VERSIONS


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", VERSIONS)
def test_overlay_validates_strictly(overlay: str, version: str) -> None:
    assert problems(overlay, version) == []


def test_validation_rejects_an_unknown_field() -> None:
    gateway = copy.deepcopy(find(render("prod"), "Deployment", "gateway"))
    gateway["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="livenesProbe"):
        kubernetes_validate.validate(gateway, VERSIONS[-1], strict=True)


def test_yaml_is_lint_free() -> None:
    result = subprocess.run(
        [YAMLLINT, "--strict", "-f", "parsable", "-c", str(YAMLLINT_CONFIG), "k8s", "compose.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
