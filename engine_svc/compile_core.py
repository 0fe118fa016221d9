"""Compiles the engine core with mypyc into engine_svc/core/_native (see engine_svc/native.py).

Run by `make deps`; needs mypy (a dev dependency) and a C compiler.
"""

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from mypyc.build import mypycify
from setuptools import Distribution  # type: ignore[import-untyped]

from engine_svc.native import CORE, MANIFEST, NATIVE, compiled_sources, digest, is_fresh


def build(core: Path = CORE, native: Path = NATIVE) -> None:
    """Compiles the core into `native`, replacing the previous build only once this one is
    complete (a failed build leaves the old one, which the hash check then ignores)."""
    sources = compiled_sources(core)
    manifest = {p.name: digest(p) for p in sources}
    repo = core.parent.parent
    with tempfile.TemporaryDirectory(prefix="engine-native-") as work:
        with contextlib.chdir(repo):  # mypy reads pyproject.toml and names modules from here
            extensions = mypycify(
                [str(p.relative_to(repo)) for p in sources],
                opt_level="3",
                group_name="engine_svc.core.native",
                target_dir=f"{work}/c",
            )
            dist = Distribution(
                {"ext_modules": extensions, "script_args": ["--quiet", "build_ext"]}
            )
            dist.parse_command_line()
            command = dist.get_command_obj("build_ext")
            command.build_lib = f"{work}/lib"
            command.build_temp = f"{work}/tmp"
            dist.run_commands()
        # Staged next to the target, so that the swap below is two renames on one filesystem.
        staged = native.with_name(f"{native.name}.new-{os.getpid()}")
        staged.mkdir()
        for library in (Path(work) / "lib" / "engine_svc" / "core").glob("*.so"):
            shutil.move(library, staged / library.name)
        (staged / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    retired = native.with_name(f"{native.name}.old-{os.getpid()}")
    if native.exists():
        native.rename(retired)
    staged.rename(native)
    shutil.rmtree(retired, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--if-stale", action="store_true", help="only when a source changed")
    args = parser.parse_args()
    if args.if_stale and is_fresh():
        return
    build()
    print(f"compiled {len(compiled_sources())} engine core modules into {NATIVE}", file=sys.stderr)


if __name__ == "__main__":
    main()
