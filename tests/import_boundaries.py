"""The import rule of the tree, checked over the AST of every module (tests are exempt).

- A service (engine_svc, ledger_svc, gateway_svc, stream_svc, mm_svc) imports only the
  generated contracts (`exchange`), `servicekit`, `tradekit` and its own modules; its
  benches (`bench*.py`, each measuring that service alone) may also use the tools that
  start processes and make workloads (`launcher`, `bench`).
- The engine core (engine_svc/core) imports only itself and tradekit's values (not
  `tradekit.engine_client`), plus `engine_svc.native`, which loads its compiled build.
- `tradekit` and `servicekit` import only `exchange`, `servicekit` and `tradekit`.
- Tools (chaos, exchangectl, launcher) and the cross-service benches (bench/) never import
  a service's modules.

Anything that is not a package of this project (the standard library, dependencies) is
allowed everywhere. Imports inside functions and under TYPE_CHECKING count too.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SERVICES = frozenset({"engine_svc", "ledger_svc", "gateway_svc", "stream_svc", "mm_svc"})
SHARED = frozenset({"exchange", "servicekit", "tradekit"})
TOOLS = frozenset({"chaos", "exchangectl", "launcher", "bench"})
PROJECT = SERVICES | SHARED | TOOLS | {"tests"}
CORE = "engine_svc.core"
CORE_MAY_IMPORT = ("engine_svc.core", "engine_svc.native", "tradekit")
CORE_MAY_NOT_IMPORT = ("tradekit.engine_client",)
# (module, import) -> why it is allowed for now. Only what another change in flight removes.
PENDING: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Crossing:
    path: Path
    line: int
    module: str  # the importing module, dotted
    imported: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.module} imports {self.imported}"


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def allowed(module: str, imported: str) -> bool:
    """Whether `module` (dotted) may import `imported` (dotted, absolute)."""
    owner, target = module.split(".")[0], imported.split(".")[0]
    if target not in PROJECT or (module, imported) in PENDING:
        return True
    if _within(module, (CORE,)):
        return _within(imported, CORE_MAY_IMPORT) and not _within(imported, CORE_MAY_NOT_IMPORT)
    if target == owner:
        return True
    if target == "tests":
        return False
    if owner in SERVICES:
        if target in SHARED:
            return True
        return target in {"launcher", "bench"} and module.split(".")[-1].startswith("bench")
    if owner in SHARED:
        return target in SHARED
    return target not in SERVICES


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if node.module:
                    yield node.lineno, node.module
                continue
            parts = module.split(".")
            base = parts[: len(parts) - node.level + (1 if is_package else 0)]
            yield node.lineno, ".".join([*base, *([node.module] if node.module else [])])


def crossings(root: Path) -> list[Crossing]:
    """Every import under `root` (the project's root) that breaks the rule."""
    found: list[Crossing] = []
    for top in sorted(SERVICES | SHARED | TOOLS):
        if top == "exchange":
            continue  # generated
        for path in sorted((root / top).rglob("*.py")):
            relative = path.relative_to(root)
            if "_native" in relative.parts or "build" in relative.parts:
                continue
            is_package = path.name == "__init__.py"
            parts = relative.with_suffix("").parts
            module = ".".join(parts[:-1] if is_package else parts)
            tree = ast.parse(path.read_text(), filename=str(path))
            for line, imported in _imports(tree, module, is_package):
                if not allowed(module, imported):
                    found.append(Crossing(relative, line, module, imported))
    return found


def main() -> int:
    found = crossings(Path(__file__).resolve().parent.parent)
    for crossing in found:
        print(crossing)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
