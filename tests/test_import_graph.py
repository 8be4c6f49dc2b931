"""Which package may import which: the library never reaches up into export, pipelines or bench."""

import ast
import pathlib

import pytest

_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _imported_modules(path: pathlib.Path):
    """Every module an `import` or `from ... import` statement names, lazily imported ones too."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module


def _violations(package: str, forbidden, skip=()):
    found = []
    for path in sorted((_ROOT / package).rglob("*.py")):
        relative = path.relative_to(_ROOT).as_posix()
        if any(relative.startswith(prefix) for prefix in skip):
            continue
        for module in _imported_modules(path):
            if module.split(".")[0] in forbidden:
                found.append(f"{relative} imports {module}")
    return found


def test_the_library_never_imports_export_pipelines_or_bench():
    # The study orchestrates training, audit and export, so it alone may call the exporter.
    assert _violations("mcmia_tf", {"tflite_export", "pipelines", "bench"},
                       skip=("mcmia_tf/study/",)) == []


def test_the_audit_never_imports_the_export_package():
    assert _violations("mcmia_tf/audit", {"tflite_export"}) == []


@pytest.mark.parametrize("package", ["mcmia_tf", "tflite_export"])
def test_no_package_imports_the_command_lines_or_benchmarks(package):
    assert _violations(package, {"pipelines", "bench"}) == []
