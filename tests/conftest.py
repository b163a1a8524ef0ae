"""Shared test helpers, and the rule that CI cannot pass by skipping.

With the environment variable CI set (`.ci/run` sets CI=true), a test that skips *fails* instead, unless its skip
reason matches an entry of ALLOWED_SKIPS below: in CI a skip almost always means that a dependency, data file or
binary the test needs was not installed, and a suite that skips it proves nothing. Skips at collection time (a
module-level `pytest.skip(..., allow_module_level=True)` or `pytest.importorskip`) become collection errors. The
allowed skips that happened are listed at the end of the run. Without CI, skips stay skips (`-ra` lists them).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python -m rdistill ARGS` in a fresh process, exactly as a user would."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "rdistill", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"benchmark copies not found at {SHARED_DATA}")
    return SHARED_DATA


# ------------------------------------------------------------------------- CI: a skip is a failure

# The only skips CI accepts: regular expressions searched for in the skip reason. Each needs a reason why no
# `.ci/run` on a CPU machine can make the test run. Keep this list short.
ALLOWED_SKIPS = [
    # GPU-only code paths (CUDA kernels, bf16 on a device, several GPUs): CI runs on a CPU-only machine, and no
    # package installs a GPU.
    r"needs a CUDA GPU",
]

SKIP_IN_CI = ("skipped in CI: {reason} — a missing dependency, data file or binary must be installed by .ci/run "
              "(scripts/setup.sh --dev); if it truly cannot run anywhere CI runs, add its reason to ALLOWED_SKIPS "
              "in tests/conftest.py, with why")

_allowed_skips_seen = pytest.StashKey[list]()


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_reason(report) -> str:
    """The reason a skipped report gives: its longrepr is (path, line, "Skipped: REASON")."""
    longrepr = report.longrepr
    message = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return message.removeprefix("Skipped: ")


def allowed_skip(reason: str) -> str | None:
    return next((pattern for pattern in ALLOWED_SKIPS if re.search(pattern, reason)), None)


def _judge_skip(report, config) -> None:
    """Under CI, turn a skipped report whose reason is not allowed into a failed one (in place)."""
    if not report.skipped or hasattr(report, "wasxfail"):  # an expected failure is reported as skipped too
        return
    reason = skip_reason(report)
    if allowed_skip(reason):
        config.stash.setdefault(_allowed_skips_seen, []).append((report.nodeid, reason))
        return
    report.outcome = "failed"
    report.longrepr = SKIP_IN_CI.format(reason=reason)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Skips in setup (skipif marks, fixtures that skip), in the test itself, or in teardown."""
    report = yield
    if in_ci():
        _judge_skip(report, item.config)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    """Skips while a module is collected (module-level pytest.skip / pytest.importorskip): a collection error."""
    report = yield
    if in_ci():
        _judge_skip(report, collector.config)
    return report


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    seen = config.stash.get(_allowed_skips_seen, [])
    if in_ci() and seen:
        terminalreporter.section("skips allowed in CI (ALLOWED_SKIPS in tests/conftest.py)")
        for nodeid, reason in seen:
            terminalreporter.line(f"{nodeid}: {reason}")
