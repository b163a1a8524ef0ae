"""Packages that import their modules on first use (PEP 562), so that `import rdistill.x` stays cheap."""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], list[str]]:
    """A module `__getattr__` serving each name of `exports` (name -> module holding it) from its module on first
    access, and the matching `__all__`. Use: `__getattr__, __all__ = lazy_exports(__name__, {...})`.

    A name must not be that of a submodule of the package: once the submodule is imported, Python sets the package
    attribute of that name to the module, which then hides the exported object for good (tests/test_lazy_exports.py
    checks every lazy package for that)."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__, sorted(exports)
