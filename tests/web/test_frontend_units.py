"""The front end's own unit tests (vitest, web/test/): exact decimals, number formatting,
the order book's sequence-id merging, and the order form's validation and sizing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

WEB = Path(__file__).parents[2] / "web"


def test_the_front_end_unit_tests_pass() -> None:
    npm = shutil.which("npm")
    if npm is None or not (WEB / "node_modules" / ".bin" / "vitest").exists():
        pytest.fail("web/ is not installed: run `make web` (or `make test`)")
    result = subprocess.run(
        [npm, "test", "--silent", "--", "--reporter=verbose"],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=240,
        env={"PATH": str(Path(npm).parent) + ":/usr/bin:/bin", "CI": "true", "NO_COLOR": "1"},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert " passed" in output, output
    assert " failed" not in output, output
