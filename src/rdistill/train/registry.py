"""Training methods by name: each is one module of this package that defines `METHOD = Method(...)`.

Modules are found by scanning the package, so a new method (logit KD, DPO, STaR...) is one new file and nothing
else changes. A method's knobs are the fields of its options dataclass; the CLI passes them from their own flags or
from `-O key=value`, converted here to the field's type.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import pkgutil
import typing
from dataclasses import dataclass
from typing import Any, Callable

from rdistill.errors import RdistillError, UnknownNameError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NoOptions:
    """For methods without knobs of their own."""


@dataclass(frozen=True)
class Method:
    name: str
    summary: str  # what the student learns, in a few words
    # run(data: TraceData, settings: TrainSettings, options, on_progress) -> TrainResult
    run: Callable[..., Any]
    options: type = NoOptions  # a frozen dataclass with defaults; __post_init__ may raise ValueError
    # A multi-task method's tasks that a trained student can be asked a bare question through (step_by_step: label,
    # rationale); evaluation can ask through any of them (`rdistill eval --student-task`, a recipe's `eval_tasks`).
    tasks: tuple[str, ...] = ()
    # Pair methods (contrastive, dpo) read the wrong "rejected" side of contrastive pairs; every other method imitates
    # its traces, so those are kept from it (train_student drops them).
    pairwise: bool = False

    def option_names(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self.options)]


_registry: dict[str, Method] = {}


def methods() -> dict[str, Method]:
    if not _registry:
        _discover()
    return dict(_registry)


def method_names() -> list[str]:
    return sorted(methods())


def get_method(name: str) -> Method:
    found = methods().get(name.strip().lower().replace("-", "_"))
    if found is None:
        raise UnknownNameError("training method", name, method_names())
    return found


def parse_options(method: Method, values: dict[str, Any]) -> Any:
    """The method's options object from `values` (typed values, or strings as given with -O key=value)."""
    hints = typing.get_type_hints(method.options)
    known = method.option_names()
    kwargs = {}
    for key, value in values.items():
        name = key.strip().lower().replace("-", "_")
        if name not in known:
            if not known:
                raise RdistillError(f"method {method.name} takes no options (got {key!r})")
            raise UnknownNameError(f"option of method {method.name}", name, known)
        kwargs[name] = _convert(value, hints[name], f"{method.name} option {name!r}")
    try:
        return method.options(**kwargs)
    except ValueError as e:
        raise RdistillError(f"method {method.name}: {e}") from None


def parse_key_values(pairs: list[str]) -> dict[str, str]:
    """["stages=3", "difficulty=length"] -> {"stages": "3", "difficulty": "length"}."""
    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise RdistillError(f"method option {pair!r}: write it as KEY=VALUE")
        parsed[key.strip()] = value.strip()
    return parsed


def register(method: Method) -> None:
    """Add a method defined outside this package (a plugin, a notebook experiment)."""
    methods()
    if method.name in _registry and _registry[method.name] is not method:
        raise RdistillError(f"a training method named {method.name!r} is already registered")
    _registry[method.name] = method


def _discover() -> None:
    import rdistill.train as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        method = getattr(module, "METHOD", None)
        if isinstance(method, Method):
            _registry[method.name] = method


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _convert(value: Any, annotation: Any, what: str) -> Any:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union or type(annotation).__name__ == "UnionType":  # Optional[X] / X | None
        if value is None or (isinstance(value, str) and value.lower() in ("", "none", "null")):
            return None
        annotation = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        if value not in args:
            raise UnknownNameError(f"value for {what}", str(value), [str(a) for a in args])
        return value
    if not isinstance(value, str):
        return value
    try:
        if annotation is bool:
            if value.lower() not in _TRUE | _FALSE:
                raise ValueError(value)
            return value.lower() in _TRUE
        if annotation in (int, float):
            return annotation(value)
    except ValueError:
        raise RdistillError(f"{what}: {value!r} is not a {annotation.__name__}") from None
    return value
