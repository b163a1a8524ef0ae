"""`python -m rdistill.install_check`: run what an install put in place, not just look for its files.

scripts/setup.sh ends with it. Each check runs the real thing (a torch matrix product, `llama-server --version`,
llama.cpp's Python binding) and a failure is one line naming what failed and the fix; the exit status is the
number of failures. `--json` prints the findings as JSON for scripts.
"""

from __future__ import annotations

import json
import sys
from typing import Callable


def _torch() -> str:
    import torch

    a = torch.ones(64, 64)
    if float((a @ a)[0, 0]) != 64.0:
        raise RuntimeError("a 64x64 matrix product gave a wrong result")
    cuda = torch.cuda.is_available()
    return f"torch {torch.__version__} ({'CUDA ' + str(torch.version.cuda) if cuda else 'CPU'})"


def _llama_server() -> str:
    from rdistill.teachers.llama_server import check_llama_server, require_llama_server_binary

    binary = require_llama_server_binary()
    first = next((line for line in check_llama_server(binary).splitlines() if "version" in line), "")
    return f"llama-server runs: {binary} {first.strip()}".strip()


def _llama_cpp_python() -> str:
    import llama_cpp

    return f"llama-cpp-python {llama_cpp.__version__}"


CHECKS: dict[str, Callable[[], str]] = {
    "torch": _torch,
    "llama-server": _llama_server,
    "llama-cpp-python": _llama_cpp_python,
}


def run_checks(names: list[str] | None = None) -> dict[str, dict]:
    findings = {}
    for name in names or list(CHECKS):
        try:
            findings[name] = {"ok": True, "detail": CHECKS[name]()}
        except Exception as exc:  # every failure is reported, none stops the others
            findings[name] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}
    return findings


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    names = [a for a in argv if a != "--json"] or None
    unknown = [n for n in names or [] if n not in CHECKS]
    if unknown:
        print(f"install_check: no check {unknown[0]!r} (checks: {', '.join(CHECKS)})", file=sys.stderr)
        return 2
    findings = run_checks(names)
    if as_json:
        print(json.dumps(findings, indent=2))
    else:
        for name, found in findings.items():
            print(f"{'ok  ' if found['ok'] else 'FAIL'} {name}: {found['detail']}",
                  file=sys.stdout if found["ok"] else sys.stderr)
    return sum(not f["ok"] for f in findings.values())


if __name__ == "__main__":
    raise SystemExit(main())
