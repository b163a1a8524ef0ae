"""`rdistill.models` sits below every stage: no module in it imports teachers, training or any stage above.

The walk reads each module's source (imports inside functions count too: they run the moment the function does),
so an upward arrow fails here before it can become a cycle."""

import ast
import pkgutil
from pathlib import Path

import rdistill.models

# Packages that stand on rdistill.models; importing any of them from inside it would point an arrow upward.
ABOVE = ("teachers", "train", "generate", "filter", "evaluate", "report", "pipeline", "export", "cli")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            if node.module == "rdistill":  # `from rdistill import train` names the package in the alias
                names.update(f"rdistill.{alias.name}" for alias in node.names)
    return names


def upward_imports(path: Path) -> list[str]:
    return sorted(name for name in imported_modules(path)
                  if name.split(".")[0] == "rdistill" and len(name.split(".")) > 1 and name.split(".")[1] in ABOVE)


def test_no_module_in_models_imports_a_stage_above_it():
    folder = Path(rdistill.models.__file__).parent
    modules = [folder / f"{info.name}.py" for info in pkgutil.iter_modules([str(folder)])]
    assert len(modules) >= 4  # spec, catalog, loading, lora_gguf at least: the walk saw the package
    offenders = {path.name: upward_imports(path) for path in modules if upward_imports(path)}
    assert offenders == {}


def test_the_walk_sees_an_import_inside_a_function(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from rdistill.teachers.registry import get_backend\n"
                      "    from rdistill import train\n    import rdistill.errors\n")
    assert upward_imports(module) == ["rdistill.teachers.registry", "rdistill.train"]
