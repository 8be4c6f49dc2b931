"""Bazel BUILD files: every target's deps resolve and every .py file belongs to a target.

Runs only where `bazel` is on PATH (CI installs Debian's `bazel-bootstrap`).
Implicit deps of `py_test` / `py_binary` (launcher, coverage tools) would need
downloads, so the closure is taken over the libraries, plus the declared deps of
tests and binaries.
"""

import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON_TREES = ("mcmia_tf", "tflite_export", "pipelines", "bench", "tests")

pytestmark = pytest.mark.skipif(shutil.which("bazel") is None and not os.environ.get("CI"),
                                reason="bazel is not installed")


def _query(expression: str) -> set:
    result = subprocess.run(
        ["bazel", "query", expression, "--noimplicit_deps", "--output=label"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"bazel query {expression!r} failed:\n{result.stderr[-3000:]}"
    return {line.strip() for line in result.stdout.splitlines() if line.strip()}


def _label_to_path(label: str) -> str:
    package, name = label.lstrip("/").split(":", 1)
    return os.path.normpath(os.path.join(package, name))


def test_all_declared_deps_resolve():
    # The libraries' closure, plus the direct deps of tests and binaries (resolving a
    # label fails the query when it does not exist).
    labels = _query('deps(kind(py_library, //...)) union '
                    'labels(deps, kind("py_(test|binary)", //...))')
    assert "//:mcmia_tf/compat.py" in labels


def test_every_python_file_is_in_a_target():
    in_targets = {_label_to_path(label) for label in _query("labels(srcs, //...)")}
    on_disk = set()
    for tree in PYTHON_TREES:
        for folder, _, files in os.walk(os.path.join(ROOT, tree)):
            on_disk.update(os.path.relpath(os.path.join(folder, f), ROOT)
                           for f in files if f.endswith(".py"))
    missing = sorted(on_disk - in_targets)
    assert not missing, f"Python files in no Bazel target (add them to a BUILD file): {missing}"
