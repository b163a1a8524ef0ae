"""Lazy package exports: served on first use, and never hidden by a submodule of the same name."""

import subprocess
import sys

import pytest

from rdistill._lazy import lazy_exports


def test_export_named_like_a_submodule_is_refused():
    with pytest.raises(ImportError, match="'runner' is also a submodule"):
        lazy_exports("rdistill.evaluate", {"runner": "rdistill.evaluate.options"})


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
