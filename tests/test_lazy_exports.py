"""Lazy package exports: served on first use, and never hidden by a submodule of the same name."""

import importlib
import pkgutil
import subprocess
import sys

import pytest

LAZY_PACKAGES = ["rdistill.evaluate", "rdistill.pipeline"]


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_no_export_is_named_like_a_submodule(package):
    # Once such a submodule is imported, Python sets the package attribute to the module and hides the export.
    module = importlib.import_module(package)
    submodules = {info.name for info in pkgutil.iter_modules(module.__path__)}
    assert module.__all__ and not set(module.__all__) & submodules


def test_importing_the_module_first_does_not_hide_the_function():
    code = ("import rdistill.evaluate.comparison, rdistill.pipeline.runner, sys\n"
            "from rdistill.evaluate import compare, evaluate\n"
            "from rdistill.pipeline import run_recipe\n"
            "assert callable(compare) and callable(evaluate) and callable(run_recipe)\n"
            "assert not any(m.split('.')[0] in ('torch', 'transformers') for m in sys.modules)\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_name_is_an_attribute_error():
    import rdistill.evaluate

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        rdistill.evaluate.nope  # noqa: B018
