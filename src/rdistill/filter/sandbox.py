"""Run untrusted Python (code in teacher traces) in a separate, limited, network-less process.

`run_python(code, limits)` returns a `SandboxResult` (exit code, capped stdout/stderr, whether it timed
out or flooded its output); it never raises for anything the code does.

What is used, layered, each where this host allows it (`isolation_mechanisms()` says which are on):
- `unshare --net --pid --fork --kill-child --mount-proc` (util-linux): a network namespace with only a
  downed loopback (no connection or DNS query leaves it, not even to the host's 127.0.0.1), a PID
  namespace (the code sees only its own processes, a fresh /proc, and everything in it dies with its
  first process), and a mount namespace in which `sandbox_launcher.py` remounts every inherited mount
  read-only and puts a size-capped, empty tmpfs on /tmp as the working directory (gone with the run).
  Without root, `--user --map-root-user` is added so that an unprivileged user gets the same.
- As root: the code runs under a fresh, otherwise unused uid/gid (not `nobody`, so that concurrent
  sandboxes neither share a process count nor can signal each other) with no supplementary groups, an
  empty capability bounding set and no_new_privs. RLIMIT_NPROC only binds a non-root uid, and this is
  what makes it contain a fork bomb; afterwards every process of that uid is killed.
- rlimits in the worker: RLIMIT_AS (memory), RLIMIT_CPU, RLIMIT_NPROC (processes and threads; 1 means
  no subprocess at all), RLIMIT_FSIZE, RLIMIT_NOFILE, RLIMIT_CORE=0.
- `python -I -S -B` (isolated mode, no site-packages, so only the standard library), a fresh
  environment (PATH, LANG, HOME and TMPDIR pointing at the working directory; nothing inherited), stdin
  closed, output read with a cap, its own session; on timeout or flood the whole process group, every
  descendant and every process of the sandbox uid get SIGKILL.

What this is not: a VM or a seccomp jail. The kernel is shared, so a kernel exploit escapes. Files the
host leaves world-readable (e.g. /etc/passwd, this package's source, anything mode o+r on a path others
may enter) can be read; secrets are protected only by not being world-readable (0600 files, 0700
directories), by the uid drop, and by /root being covered when the interpreter lives below it. CPU time
and memory are per process, so with `max_processes > 1` the totals scale with the count. Without
`unshare` (or without root and user namespaces) there is no network, PID or mount isolation: a warning
is logged and only the uid drop (as root), rlimits and the kill-on-timeout remain.
"""

from __future__ import annotations

import json
import logging
import math
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rdistill.errors import InputError
from rdistill.filter.sandbox_processes import fresh_uid, kill_everything

_log = logging.getLogger(__name__)

LAUNCHER = Path(__file__).with_name("sandbox_launcher.py")
_MINIMAL_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class SandboxLimits:
    wall_seconds: float = 5.0
    cpu_seconds: float | None = None  # None: the wall-clock limit
    memory_mb: int = 256  # address space of each process (RLIMIT_AS)
    disk_mb: int = 16  # the tmpfs working directory, and the largest file any write may make
    max_output_bytes: int = 64 * 1024  # per stream; more and the run is killed
    max_processes: int = 1  # processes + threads of the sandbox uid; 1 = no subprocess, no thread
    max_open_files: int = 64

    def __post_init__(self):
        for name in ("wall_seconds", "memory_mb", "disk_mb", "max_output_bytes", "max_processes",
                     "max_open_files"):
            if not getattr(self, name) > 0:
                raise InputError(f"must be > 0, got {getattr(self, name)!r}", field=f"sandbox {name}")


@dataclass(frozen=True)
class SandboxResult:
    returncode: int | None  # negative: killed by that signal; None: never started
    stdout: str
    stderr: str
    timed_out: bool = False
    output_truncated: bool = False
    error: str | None = None  # the sandbox itself could not be set up
    isolation: tuple[str, ...] = ()
    uid: int | None = None  # the uid the code ran as (when the sandbox could choose one)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not (self.timed_out or self.output_truncated or self.error)

    @property
    def failure(self) -> str | None:
        """Why the run does not count, in a few words; None when it is `ok`."""
        if self.error:
            return f"sandbox error: {self.error}"
        if self.timed_out:
            return "timed out"
        if self.output_truncated:
            return "output limit exceeded"
        if self.returncode is not None and self.returncode < 0:
            return f"killed by {signal.Signals(-self.returncode).name}" if -self.returncode in _SIGNALS else \
                f"killed by signal {-self.returncode}"
        if self.returncode != 0:
            last = self.stderr.strip().splitlines()[-1:] or [""]
            return f"exit code {self.returncode}" + (f": {last[0][:200]}" if last[0] else "")
        return None


_SIGNALS = {s.value for s in signal.Signals}


@dataclass(frozen=True)
class _Plan:
    """How sandboxes are started on this host; worked out once per process."""

    prefix: tuple[str, ...]  # the unshare command, or () to start the launcher directly
    private_mounts: bool
    drop_uid: bool
    mechanisms: tuple[str, ...] = field(default=())


_plan: _Plan | None = None
_plan_lock = threading.Lock()


def _namespace_prefix() -> tuple[str, ...] | None:
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    user = () if os.geteuid() == 0 else ("--user", "--map-root-user")
    return (unshare, *user, "--net", "--pid", "--fork", "--kill-child", "--mount-proc")


def _make_plan() -> _Plan:
    root = os.geteuid() == 0
    prefix = _namespace_prefix()
    if prefix is not None:
        plan = _Plan(prefix, True, root, _mechanisms(True, root))
        probe = _run(plan, "print(6 * 7)", SandboxLimits(wall_seconds=20))
        if probe.ok and probe.stdout.strip() == "42":
            return plan
        _log.warning("sandbox: namespaces unavailable (%s); code runs WITHOUT network, PID or mount "
                     "isolation", probe.failure or f"unexpected output {probe.stdout[:80]!r}")
    else:
        _log.warning("sandbox: `unshare` (util-linux) not found; code runs WITHOUT network, PID or mount "
                     "isolation")
    if not root:
        _log.warning("sandbox: not running as root, so the code runs as this user (no uid drop)")
    return _Plan((), False, root, _mechanisms(False, root))


def _mechanisms(namespaces: bool, drop_uid: bool) -> tuple[str, ...]:
    found = ["rlimits(as,cpu,nproc,fsize,nofile,core)", "own session, group kill", "python -I -S",
             "fresh environment", "stdin closed", "output cap"]
    if namespaces:
        found[:0] = ["network namespace", "pid namespace", "mount namespace (read-only mounts, tmpfs /tmp)"]
    if drop_uid:
        found.insert(0, "fresh unprivileged uid, no capabilities, no_new_privs")
    return tuple(found)


def _current_plan() -> _Plan:
    global _plan
    with _plan_lock:
        if _plan is None:
            _plan = _make_plan()
        return _plan


def isolation_mechanisms() -> tuple[str, ...]:
    """The isolation layers sandboxes get on this host (runs a one-off probe the first time)."""
    return _current_plan().mechanisms


def run_python(code: str, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run `code` as a Python program in a sandbox; stdout and stderr come back capped."""
    return _run(_current_plan(), code, limits or SandboxLimits())


# ------------------------------------------------------------------------------------------ one run


def _run(plan: _Plan, code: str, limits: SandboxLimits) -> SandboxResult:
    uid = fresh_uid() if plan.drop_uid else None
    host_dir = Path(tempfile.mkdtemp(prefix="rdistill-sandbox-"))
    try:
        return _run_in(plan, code, limits, uid, host_dir)
    finally:
        shutil.rmtree(host_dir, ignore_errors=True)


def _run_in(plan: _Plan, code: str, limits: SandboxLimits, uid: int | None, host_dir: Path) -> SandboxResult:
    python = _python_for(plan, uid)
    if python is None:
        return SandboxResult(None, "", "", error="no Python interpreter the sandbox uid may run", uid=uid)
    if plan.private_mounts:
        workdir, code_path = "/tmp", host_dir / "main.py"
    else:
        workdir = str(host_dir / "work")
        code_path = Path(workdir) / "main.py"
        os.mkdir(workdir, 0o700)
        if uid is not None:
            os.chmod(host_dir, 0o711)  # enterable, not listable, so the worker can reach its directory
            os.chown(workdir, uid, uid)
    code_path.write_text(code, encoding="utf-8")
    os.chmod(code_path, 0o644)
    env = {"PATH": _MINIMAL_PATH, "LANG": "C.UTF-8", "HOME": workdir, "TMPDIR": workdir}
    status_read, status_write = os.pipe()
    cfg = {"code_path": str(code_path), "private_mounts": plan.private_mounts, "workdir": workdir,
           "tmpfs_kib": limits.disk_mb * 1024, "expose": _installation_dirs(python) if plan.private_mounts else [],
           "uid": uid, "gid": uid, "python": python, "env": env, "status_fd": status_write,
           "rlimits": _rlimits(limits)}
    argv = [*plan.prefix, sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(cfg)]
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env, cwd=host_dir, start_new_session=True, pass_fds=(status_write,))
    except OSError as exc:
        os.close(status_read)
        os.close(status_write)
        return SandboxResult(None, "", "", error=f"could not start: {exc}", uid=uid)
    os.close(status_write)
    try:
        stdout, stderr, timed_out, truncated = _collect(proc, limits)
    finally:
        kill_everything(proc, uid)
        status = _read_status(status_read)
    returncode = status.get("returncode")
    if returncode is None and not status.get("error") and not (timed_out or truncated):
        returncode = proc.returncode  # the launcher itself died (e.g. killed): report that
    return SandboxResult(returncode, stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace"),
                         timed_out=timed_out, output_truncated=truncated, error=status.get("error"),
                         isolation=plan.mechanisms, uid=uid)


def _rlimits(limits: SandboxLimits) -> dict[str, tuple[int, int]]:
    cpu = math.ceil(limits.cpu_seconds if limits.cpu_seconds is not None else limits.wall_seconds)
    memory = limits.memory_mb * 1024 * 1024
    fsize = limits.disk_mb * 1024 * 1024
    # Soft below hard for CPU: SIGXCPU first, then the kernel's SIGKILL one second later.
    return {"AS": (memory, memory), "CPU": (cpu, cpu + 1), "FSIZE": (fsize, fsize),
            "NOFILE": (limits.max_open_files, limits.max_open_files),
            "NPROC": (limits.max_processes, limits.max_processes), "CORE": (0, 0)}


def _installation_dirs(python: str) -> list[str]:
    """The interpreter's installation, which the launcher re-exposes if it lies in a closed directory."""
    prefix = os.path.realpath(sys.base_prefix)
    real = os.path.realpath(python)
    dirs = [prefix]
    if not real.startswith(prefix + os.sep):
        dirs.append(os.path.dirname(real))
    return dirs


def _python_for(plan: _Plan, uid: int | None) -> str | None:
    """This interpreter, unless the sandbox uid could not reach it and no mounts can fix that."""
    python = os.path.realpath(sys.executable)
    if plan.private_mounts or uid is None or _reachable_by_others(python):
        return python
    for name in (f"python{sys.version_info.major}.{sys.version_info.minor}", "python3"):
        other = shutil.which(name, path=_MINIMAL_PATH)
        if other and _reachable_by_others(os.path.realpath(other)):
            _log.warning("sandbox: %s is closed to other users; running sandboxed code with %s", python, other)
            return os.path.realpath(other)
    return None


def _reachable_by_others(path: str) -> bool:
    """Whether a uid with no rights of its own may run `path`: every directory enterable, file r-x."""
    enterable = all(os.stat(parent).st_mode & 0o001 for parent in Path(path).parents)
    return enterable and (os.stat(path).st_mode & 0o005) == 0o005


def _collect(proc: subprocess.Popen, limits: SandboxLimits) -> tuple[bytes, bytes, bool, bool]:
    """Read stdout and stderr until both close and the process ends, the deadline, or the cap.

    Once the launcher has exited, whatever is still holding the pipes open (a daemon that escaped a
    sandbox without a PID namespace) is not waited for: what is already written is read, then cleanup
    kills it.
    """
    deadline = time.monotonic() + limits.wall_seconds
    buffers = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    timed_out = truncated = False
    with selectors.DefaultSelector() as sel:
        for fd in buffers:
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map() and not truncated:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            exited = proc.poll() is not None
            ready = sel.select(0 if exited else min(remaining, 0.1))
            if exited and not ready:
                break
            for key, _ in ready:
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                buf = buffers[key.fd]
                room = limits.max_output_bytes - len(buf)
                buf += chunk[:room]
                truncated = truncated or len(chunk) > room
    if not (timed_out or truncated):
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
    return bytes(buffers[proc.stdout.fileno()]), bytes(buffers[proc.stderr.fileno()]), timed_out, truncated


def _read_status(fd: int) -> dict:
    with os.fdopen(fd, "rb") as fh:
        raw = fh.read(65536)
    try:
        return json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        return {}
