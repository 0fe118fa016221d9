"""The engine core compiled to C with mypyc, and the guard that keeps it honest.

The core (engine_svc/core) is strictly typed, so mypyc turns it into native classes and
calls: about twice the commands per second of the interpreted core, with the same outcome.
`python -m engine_svc.compile_core` (run by `make deps`) compiles every core module but the
package's `__init__` and the reference book (the test oracle stays independent) into
`engine_svc/core/_native/`, with the SHA-256 of each source it compiled.

engine_svc/core/__init__.py puts that folder first on the package's search path only when
every source still has the hash it was compiled from. An edited source therefore never runs
as stale machine code: the whole core falls back to Python (with a warning) until the next
build. ENGINE_NATIVE=0 forces the Python core.
"""

import hashlib
import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

CORE = Path(__file__).parent / "core"
NATIVE = CORE / "_native"
MANIFEST = "sources.json"  # {module file name: sha256 of the source compiled}
INTERPRETED = frozenset({"__init__.py", "reference_book.py"})


def compiled_sources(core: Path = CORE) -> list[Path]:
    return sorted(p for p in core.glob("*.py") if p.name not in INTERPRETED)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def is_fresh(native: Path = NATIVE, core: Path = CORE) -> bool:
    """True when `native` holds a build of exactly the core's current sources."""
    try:
        built: dict[str, str] = json.loads((native / MANIFEST).read_text())
    except FileNotFoundError:
        return False
    current = {p.name: digest(p) for p in compiled_sources(core)}
    return built == current


def search_path(package_path: list[str]) -> list[str]:
    """The core package's search path: the compiled modules first when they are fresh."""
    if os.environ.get("ENGINE_NATIVE", "1") == "0":
        return package_path
    if is_fresh():
        return [str(NATIVE), *package_path]
    if (NATIVE / MANIFEST).exists():
        log.warning(
            "engine core sources changed since they were compiled: running them as "
            "Python; `make deps` compiles them again"
        )
    return package_path
