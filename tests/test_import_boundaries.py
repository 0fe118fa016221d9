"""Services meet only through the contracts, servicekit and tradekit (tests/import_boundaries)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.import_boundaries import crossings

ROOT = Path(__file__).resolve().parent.parent


def test_the_tree_keeps_the_import_rule() -> None:
    # In a process of its own: CPython 3.11.7's ast.parse can raise a spurious SystemError
    # ("AST constructor recursion depth mismatch") while another thread parses too.
    run = subprocess.run(
        [sys.executable, "-m", "tests.import_boundaries"], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 0, "imports across boundaries:\n" + run.stdout + run.stderr


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_crossing_is_reported(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            "gateway_svc/__init__.py": "",
            "gateway_svc/upstream.py": "import asyncio\nfrom stream_svc.hub import StreamHub\n",
            "gateway_svc/bench_x.py": "from launcher.ports import free_port\n",
            "gateway_svc/app.py": "from launcher.ports import free_port\n",
            "gateway_svc/rest.py": "from . import upstream\nfrom ..ledger_svc import db\n",
            "engine_svc/__init__.py": "",
            "engine_svc/core/__init__.py": "from engine_svc.native import search_path\n",
            "engine_svc/core/engine.py": (
                "from engine_svc.core.book import Book\nfrom tradekit.money import parse_units\n"
                "from engine_svc.journal import Journal\n"
                "def f() -> None:\n    from tradekit.engine_client import EngineClient\n"
            ),
            "tradekit/__init__.py": "",
            "tradekit/topics.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from stream_svc.hub import StreamHub\n",
            "chaos/client.py": "from tradekit import backpack\nimport gateway_svc.auth\n",
            "bench/orders.py": "from launcher.supervisor import Supervisor\nfrom tests import x\n",
        },
    )
    found = {(str(c.path), c.line, c.imported) for c in crossings(tmp_path)}
    assert found == {
        ("gateway_svc/upstream.py", 2, "stream_svc.hub"),
        ("gateway_svc/app.py", 1, "launcher.ports"),  # only a service's benches start processes
        ("gateway_svc/rest.py", 2, "ledger_svc"),
        ("engine_svc/core/engine.py", 3, "engine_svc.journal"),
        ("engine_svc/core/engine.py", 5, "tradekit.engine_client"),
        ("tradekit/topics.py", 3, "stream_svc.hub"),
        ("chaos/client.py", 2, "gateway_svc.auth"),
        ("bench/orders.py", 2, "tests"),
    }
