"""The compiled engine core (engine_svc/native.py): it runs, it decides exactly what the
Python core decides, and an edited source never runs as stale machine code."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import engine_svc
import engine_svc.core.engine
from engine_svc import native
from engine_svc.core.book import OrderBook
from engine_svc.core.engine import Engine
from engine_svc.core.state import state_hash
from tests.engine.core.test_differential import apply, new_engine, stream

REPO = Path(engine_svc.__file__).parent.parent

# Replays a seeded random stream (every command kind, rejections included) and prints a
# digest of every result and the final state hash.
REPLAY = """
import hashlib
import engine_svc.core.engine
from engine_svc.core.state import state_hash
from engine_svc.core.book import OrderBook
from tests.engine.core.test_differential import apply, new_engine, stream
engine = new_engine(OrderBook)
results = hashlib.sha256()
for ts, command in stream(11, 4000):
    results.update(repr(apply(engine, command, ts)).encode())
print(engine_svc.core.engine.__file__, results.hexdigest(), state_hash(engine))
"""


def run_python(code: str, cwd: Path, native_on: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ENGINE_NATIVE": "1" if native_on else "0", "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )


def test_the_suite_runs_the_compiled_core() -> None:
    assert engine_svc.core.engine.__file__.endswith(".so"), (
        "the engine core is not compiled or its build is stale: run `make deps`"
    )


def test_compiled_and_python_cores_give_identical_results_and_state() -> None:
    compiled = run_python(REPLAY, REPO, native_on=True).stdout.split()
    python = run_python(REPLAY, REPO, native_on=False).stdout.split()
    assert compiled[0].endswith(".so")
    assert python[0].endswith("engine.py")
    assert compiled[1:] == python[1:]


def test_a_build_is_fresh_only_for_the_sources_it_was_compiled_from(tmp_path: Path) -> None:
    core, built = tmp_path / "core", tmp_path / "native"
    shutil.copytree(native.CORE, core, ignore=shutil.ignore_patterns("_native*", "__pycache__"))
    assert not native.is_fresh(built, core)  # never built
    shutil.copytree(native.NATIVE, built)
    assert native.is_fresh(built, core)
    with (core / "book.py").open("a") as source:
        source.write("# edited\n")
    assert not native.is_fresh(built, core)
    shutil.copy(native.CORE / "book.py", core / "book.py")
    assert native.is_fresh(built, core)
    (core / "extra.py").write_text("X = 1\n")  # a new module that was never compiled
    assert not native.is_fresh(built, core)
    (core / "extra.py").unlink()
    (core / "reference_book.py").write_text("# the test oracle is never compiled\n")
    assert native.is_fresh(built, core)


def test_an_edited_core_runs_as_python_until_it_is_compiled_again(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(REPO / "engine_svc", copy / "engine_svc")
    where = "import engine_svc.core.engine as e; print(e.__file__)"
    assert run_python(where, copy, native_on=True).stdout.strip().endswith(".so")
    with (copy / "engine_svc" / "core" / "money.py").open("a") as source:
        source.write("# edited\n")
    edited = run_python(where, copy, native_on=True)
    assert edited.stdout.strip() == str(copy / "engine_svc" / "core" / "engine.py")
    assert "changed since they were compiled" in edited.stderr


def test_take_over_makes_an_engine_the_other_one_field_by_field() -> None:
    recovered, running = new_engine(OrderBook), Engine()
    for ts, command in stream(5, 300):
        apply(recovered, command, ts)
    running.take_over(recovered)
    # A compiled class lists its fields in __mypyc_attrs__; a Python one has them in vars().
    fields = getattr(Engine, "__mypyc_attrs__", None) or vars(Engine())
    assert len(fields) > 10
    for name in fields:
        assert getattr(running, name) == getattr(recovered, name), name
    assert state_hash(running) == state_hash(recovered)
