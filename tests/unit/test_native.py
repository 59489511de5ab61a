"""Building and loading the C tree kernel, and falling back to numpy when it cannot be had.

Its numbers are tested in tests/unit/test_trees.py, where every test runs on both evaluators.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fraud.runtime import native
from tests.conftest import REPO, fake_tool


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """native.kernel() working on a copy of the source and a library path under tmp_path."""
    source = shutil.copy(native.SOURCE, tmp_path / "_treewalk.c")
    monkeypatch.setattr(native, "SOURCE", Path(source))
    monkeypatch.setattr(native, "LIBRARY", tmp_path / "_treewalk.so")
    monkeypatch.delenv("FRAUD_NATIVE", raising=False)
    native.kernel.cache_clear()
    yield tmp_path
    native.kernel.cache_clear()


def test_the_kernel_builds_here_and_is_used() -> None:
    native.kernel.cache_clear()
    if os.environ.get("FRAUD_NATIVE") == "0":
        pytest.skip("FRAUD_NATIVE=0 forces numpy")
    assert native.kernel() is not None


def test_a_missing_library_is_built_on_first_use(sandbox: Path) -> None:
    lib = native.kernel()
    assert lib is not None
    assert (sandbox / "_treewalk.so").is_file()
    assert lib.treewalk_digest().decode() == native.build_digest(sandbox / "_treewalk.c")
    assert not [p for p in sandbox.iterdir() if p.name.startswith(".")]  # no temp file left


def test_a_library_from_another_source_is_refused_then_rebuilt(sandbox: Path) -> None:
    source, library = sandbox / "_treewalk.c", sandbox / "_treewalk.so"
    native.build(library, source)
    source.write_text(source.read_text() + "/* changed */\n")
    with pytest.raises(native.NativeError, match=r"built from another version of _treewalk\.c"):
        native.load(library, source)
    lib = native.kernel()
    assert lib is not None
    assert lib.treewalk_digest().decode() == native.build_digest(source)


def test_without_a_compiler_numpy_is_used_with_a_warning(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CC", str(sandbox / "no-such-compiler"))
    with caplog.at_level(logging.WARNING, logger="fraud.runtime.native"):
        assert native.kernel() is None
    assert "using numpy" in caplog.text
    assert "no-such-compiler" in caplog.text or "No such file" in caplog.text
    assert not (sandbox / "_treewalk.so").exists()


def test_a_failing_compiler_is_reported_with_its_output(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = fake_tool(sandbox, "badcc", '#!/bin/sh\necho "fatal: out of coffee" >&2; exit 3\n')
    monkeypatch.setenv("CC", str(bin_dir / "badcc"))
    with pytest.raises(native.NativeError) as raised:
        native.build(sandbox / "_treewalk.so", sandbox / "_treewalk.c")
    message = str(raised.value)
    for part in ("_treewalk.c", "exit 3", "out of coffee"):
        assert part in message
    assert sorted(p.name for p in sandbox.iterdir()) == ["_treewalk.c", "bin"]


def test_an_unwritable_install_falls_back_to_numpy(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # no directory can be made under /proc, not even by root
    monkeypatch.setattr(native, "LIBRARY", Path("/proc/self/no-such-dir/_treewalk.so"))
    with caplog.at_level(logging.WARNING, logger="fraud.runtime.native"):
        assert native.kernel() is None
    assert "cannot build /proc/self/no-such-dir/_treewalk.so" in caplog.text


def test_cc_may_carry_words(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC", "env cc")  # as ccache gcc would be
    assert native.kernel() is not None
    monkeypatch.setenv("CC", "'unbalanced")
    with pytest.raises(native.NativeError, match="cannot build"):
        native.build(sandbox / "other.so", sandbox / "_treewalk.c")


def test_fraud_native_0_forces_numpy(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUD_NATIVE", "0")
    assert native.kernel() is None
    assert not (sandbox / "_treewalk.so").exists()


def test_a_corrupt_library_is_rebuilt(sandbox: Path) -> None:
    library = sandbox / "_treewalk.so"
    library.write_bytes(b"\x7fELF not really" + native.build_digest(native.SOURCE).encode())
    with pytest.raises(native.NativeError, match="cannot load"):
        native.load(library, native.SOURCE)
    assert native.kernel() is not None


def test_the_command_reports_a_build_failure(tmp_path: Path) -> None:
    env = {**os.environ, "CC": str(tmp_path / "no-such-compiler")}
    done = subprocess.run(
        [sys.executable, "-m", "fraud.runtime.native"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: cannot build")
    assert "_treewalk.c" in done.stderr


def test_the_library_is_readable_by_other_users(sandbox: Path) -> None:
    path = native.build(sandbox / "_treewalk.so", sandbox / "_treewalk.c")
    assert path.stat().st_mode & 0o005 == 0o005  # the image runs as another user


def test_a_large_batch_goes_through_in_blocks() -> None:
    from fraud.runtime.trees import CompiledTrees

    trees = CompiledTrees(
        feature=np.array([0, 0, 0]),
        threshold=np.array([0.5, 0, 0], dtype=np.float32),
        left=np.array([1, -1, -1]),
        right=np.array([2, -1, -1]),
        default_left=np.array([True, False, False]),
        leaf_value=np.array([0, -1, 1], dtype=np.float32),
        cover=np.array([2, 1, 1], dtype=np.float32),
        roots=np.array([0]),
        base_margin=0.0,
        n_features=1,
        max_depth=1,
    )
    x = np.arange(1000, dtype=np.float64)[:, None] % 2  # 0, 1, 0, 1, ...
    np.testing.assert_array_equal(trees.margin(x), np.where(x[:, 0] >= 0.5, 1.0, -1.0))
