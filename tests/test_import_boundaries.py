"""Services meet only through the contracts, servicekit and tradekit (tests/import_boundaries)."""

from __future__ import annotations

from pathlib import Path

from tests.import_boundaries import crossings

ROOT = Path(__file__).resolve().parent.parent


def test_the_tree_keeps_the_import_rule() -> None:
    found = crossings(ROOT)
    assert not found, "imports across boundaries:\n" + "\n".join(map(str, found))


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
            "chaos/client.py": (
                "from tradekit.backpack import INSTRUCTIONS\nimport gateway_svc.auth\n"
            ),
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
