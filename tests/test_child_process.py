"""Children tied to their parent: a run killed outright leaves no server behind; SIGTERM unwinds like Ctrl-C."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from rdistill import child_process

linux_only = pytest.mark.skipif(not child_process.supported(), reason="PR_SET_PDEATHSIG is Linux only")

# A parent that starts `sleep` the way the llama-server backend starts servers: from a worker thread that ends.
PARENT = textwrap.dedent("""
    import atexit, signal, sys, threading, time
    from rdistill import child_process
    import rdistill.cli as cli
    signal.signal(signal.SIGTERM, cli._exit_on_sigterm)
    atexit.register(lambda: open(sys.argv[1], "w").write("unwound"))
    box = []
    worker = threading.Thread(target=lambda: box.append(child_process.popen_tied(["sleep", "60"])))
    worker.start(); worker.join()
    time.sleep(0.5)  # the worker thread is gone: the child must still be there
    print(box[0].pid, box[0].poll(), flush=True)
    time.sleep(60)
""")


def _start_parent(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path / "marker")], stdout=subprocess.PIPE,
                              text=True)
    child_pid, status = parent.stdout.readline().split()
    assert status == "None", "the child died when the thread that started it ended"
    return parent, int(child_pid)


def _gone(pid: int, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ")[1].startswith("Z"):  # a zombie: exited, waiting for its reaper
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


@linux_only
def test_child_dies_when_parent_is_killed_outright(tmp_path):
    parent, child = _start_parent(tmp_path)
    try:
        assert not _gone(child, within_s=0.3)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        assert _gone(child), "the tied child outlived a SIGKILLed parent"
        assert not (tmp_path / "marker").exists()  # SIGKILL runs no atexit: the kernel did it
    finally:
        parent.kill()
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass


@linux_only
def test_sigterm_unwinds_the_cli_process(tmp_path):
    parent, child = _start_parent(tmp_path)
    try:
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=10) == 128 + signal.SIGTERM
        assert (tmp_path / "marker").read_text() == "unwound"  # atexit handlers ran
        assert _gone(child)
    finally:
        parent.kill()


def test_popen_tied_passes_through_arguments_and_errors(tmp_path):
    done = child_process.popen_tied([sys.executable, "-c", "import os; print(os.environ['X'])"],
                                    stdout=subprocess.PIPE, text=True, env={**os.environ, "X": "42"})
    assert done.communicate(timeout=30)[0].strip() == "42"
    with pytest.raises(FileNotFoundError):
        child_process.popen_tied([str(tmp_path / "no-such-program")])


def test_run_tied_returns_the_exit_code_and_stops_the_child_when_interrupted(monkeypatch):
    assert child_process.run_tied([sys.executable, "-c", "raise SystemExit(3)"]) == 3
    started = []
    real_popen_tied = child_process.popen_tied

    def popen_then_interrupt(*args, **kwargs):
        proc = real_popen_tied(*args, **kwargs)
        started.append(proc)

        def interrupted_wait(timeout=None):
            if timeout is None:  # the first, unbounded wait: as if Ctrl-C arrived during it
                raise KeyboardInterrupt
            return type(proc).wait(proc, timeout=timeout)
        proc.wait = interrupted_wait
        return proc

    monkeypatch.setattr(child_process, "popen_tied", popen_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        child_process.run_tied(["sleep", "60"], stop_timeout_s=5)
    assert started[0].returncode == -signal.SIGTERM  # terminated, and reaped
