"""Child processes that die with this one, even when this one is killed with SIGKILL.

A run killed hard (SIGKILL from a batch scheduler, the out-of-memory killer, `kill -9`) runs no atexit handler, so
the llama-server children it started would live on as orphans, each holding its model and KV cache in memory. On
Linux, `popen_tied` asks the kernel to send the child SIGTERM when its parent goes (prctl PR_SET_PDEATHSIG).

The kernel sends that signal when the *thread* that forked the child exits, not the process. Servers are started
from short-lived worker threads (asyncio.to_thread), so every tied child is forked from one daemon spawner thread
that lives as long as the process. Elsewhere (macOS, Windows) `popen_tied` is plain `subprocess.Popen`, and the
atexit clean-up of the callers is all there is.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from concurrent.futures import Future
from typing import Any

_PR_SET_PDEATHSIG = 1
_lock = threading.Lock()
_requests: "queue.SimpleQueue[tuple[tuple, dict, Future]]" = queue.SimpleQueue()
_spawner: threading.Thread | None = None
_prctl: Any = None


def supported() -> bool:
    return sys.platform.startswith("linux")


def popen_tied(*args, **kwargs) -> subprocess.Popen:
    """subprocess.Popen(*args, **kwargs), with the child sent SIGTERM when this process dies (Linux)."""
    if not supported():
        return subprocess.Popen(*args, **kwargs)
    done: Future = Future()
    _requests.put((args, kwargs, done))
    _ensure_spawner()
    return done.result()


def run_tied(args, *, stop_timeout_s: float = 30.0, **kwargs) -> int:
    """Run a tied child to its end and return its exit code. If this process is interrupted meanwhile (Ctrl-C,
    SIGTERM as SystemExit) the child is terminated, then killed after `stop_timeout_s`, before the error goes on."""
    proc = popen_tied(args, **kwargs)
    try:
        return proc.wait()
    except BaseException:
        proc.terminate()
        try:
            proc.wait(timeout=stop_timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise


def _ensure_spawner() -> None:
    global _spawner, _prctl
    with _lock:
        if _spawner is not None and _spawner.is_alive():  # after a fork() the child's copy is not alive
            return
        if _prctl is None:
            import ctypes

            # Resolved here, in the parent: the child between fork and exec should only call it.
            _prctl = ctypes.CDLL(None, use_errno=True).prctl
        _spawner = threading.Thread(target=_serve, name="rdistill-child-spawner", daemon=True)
        _spawner.start()


def _serve() -> None:
    while True:
        args, kwargs, done = _requests.get()
        if not done.set_running_or_notify_cancel():
            continue
        try:
            done.set_result(subprocess.Popen(*args, preexec_fn=_tie_to_parent(os.getpid()), **kwargs))
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            done.set_exception(e)


def _tie_to_parent(parent_pid: int):
    prctl = _prctl

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec
