"""Typed errors. The library raises these; the CLI turns each into one line and exit code 2."""

from __future__ import annotations

from pathlib import Path


class RdistillError(Exception):
    """Base class for every error rdistill reports to a user (no traceback in the CLI)."""


class InputError(RdistillError):
    """Bad user input, located as precisely as we can: file, line (1-based) and field."""

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None,
                 field: str | None = None):
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path
            if self.line is not None:
                where += f":{self.line}"
        parts = [p for p in (where, f"field '{self.field}'" if self.field else "") if p]
        prefix = ": ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message


class UnknownNameError(RdistillError):
    """A registry lookup failed (benchmark, task, backend...). Suggests the closest known names."""

    def __init__(self, kind: str, name: str, known: list[str]):
        import difflib

        self.kind, self.name, self.known = kind, name, sorted(known)
        close = difflib.get_close_matches(name, self.known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        super().__init__(f"unknown {kind} {name!r}.{hint} Known: {', '.join(self.known)}.")
