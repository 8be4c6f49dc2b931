"""Which package may import which: the library never reaches up into export, pipelines or bench.

The export package implements the audit's predictor protocol and imports nothing
else of the audit; the recipes (training) never import the audit that consumes them.
"""

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


def _imported_names(path: pathlib.Path):
    """Every dotted name an import binds: `from a.b import c` gives `a.b.c` (module or attribute)."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


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



def _within(name: str, module: str) -> bool:
    return name == module or name.startswith(module + ".")


def _name_violations(package: str, forbidden, allowed=()):
    """Imports in `package` of a name inside a `forbidden` module and outside every `allowed` one."""
    found = []
    for path in sorted((_ROOT / package).rglob("*.py")):
        relative = path.relative_to(_ROOT).as_posix()
        for name in _imported_names(path):
            if (any(_within(name, module) for module in forbidden)
                    and not any(_within(name, module) for module in allowed)):
                found.append(f"{relative} imports {name}")
    return found


def test_the_export_package_imports_only_the_audits_predictor_protocol():
    # `tflite_export.runtime.TFLitePredictor` implements `mcmia_tf.audit.predictors.Predictor`;
    # running an audit (`mcmia_tf.audit.audit_deployed_model`) is the caller's business.
    assert _name_violations("tflite_export", {"mcmia_tf.audit"},
                            allowed={"mcmia_tf.audit.predictors"}) == []


def test_the_recipes_never_import_the_audit_or_the_study():
    # The audit trains reference models with a recipe (audit -> recipes): the reverse
    # edge would be a cycle.
    assert _name_violations("mcmia_tf/recipes", {"mcmia_tf.audit", "mcmia_tf.study"}) == []


def test_the_defences_never_import_the_recipes_audit_or_study():
    # The recipes train with the defences (recipes -> privacy), not the other way round.
    assert _name_violations("mcmia_tf/privacy", {"mcmia_tf.recipes", "mcmia_tf.audit",
                                                 "mcmia_tf.study"}) == []
