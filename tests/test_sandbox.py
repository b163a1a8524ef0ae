"""The code sandbox against hostile programs: each one is stopped or refused, and the host is untouched.

Every test runs a real program in the real sandbox (no mocks) and then checks the canaries: files the
program tried to read, change or delete, processes it tried to leave behind. Tests that rely on a layer
this host may lack (namespaces, the uid drop as root) are skipped where it is missing, so a failure
here means a layer that claims to work does not.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import stat
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from rdistill.filter.sandbox import SandboxLimits, isolation_mechanisms, run_python

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox needs Linux")

REPO = Path(__file__).resolve().parents[1]
FAST = SandboxLimits(wall_seconds=1.5)


def mechanisms() -> str:
    return " | ".join(isolation_mechanisms()) if sys.platform.startswith("linux") else ""


needs_namespaces = pytest.mark.skipif("namespace" not in mechanisms(), reason="no namespaces on this host")
needs_uid_drop = pytest.mark.skipif("fresh unprivileged uid" not in mechanisms(), reason="not running as root")


def run(code: str, limits: SandboxLimits = FAST):
    return run_python(textwrap.dedent(code), limits)


def processes_of(uid: int) -> list[int]:
    """Live processes of `uid` (zombies are dead; their new parent reaps them when it will)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                status = Path(entry.path, "status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            if int(fields["Uid"].split()[0]) == uid and not fields["State"].strip().startswith("Z"):
                found.append(int(entry.name))
    return found


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Host:
    """Canaries planted before a hostile run; `assert_untouched(result)` checks all of them after it."""

    def __init__(self, tmp_path: Path):
        self.tag = uuid.uuid4().hex[:12]
        self.secret_file = tmp_path / "secret.txt"
        self.secret_file.write_text(f"top-secret-{self.tag}")
        self.secret_file.chmod(0o600)
        # World-writable, in a world-writable directory: only the read-only mounts protect this one.
        self.open_canary = Path("/var/tmp") / f"rdistill-canary-{self.tag}.txt"
        self.open_canary.write_text("canary")
        self.open_canary.chmod(0o666)
        self.repo_canary = REPO / "pyproject.toml"
        self.hashes = {p: sha(p) for p in (self.secret_file, self.open_canary, self.repo_canary)}
        self.escapes = [tmp_path / f"escape-{self.tag}", REPO / f"escape-{self.tag}",
                        Path("/tmp") / f"escape-{self.tag}", Path("/var/tmp") / f"escape-{self.tag}",
                        Path("/dev/shm") / f"escape-{self.tag}", Path.home() / f"escape-{self.tag}"]

    def assert_untouched(self, result=None) -> None:
        for path, digest in self.hashes.items():
            assert path.exists() and sha(path) == digest, f"{path} was changed"
        for path in self.escapes:
            assert not path.exists(), f"the sandbox wrote {path}"
        if result is not None and result.uid is not None:
            assert processes_of(result.uid) == [], "processes of the sandbox uid outlived the run"

    def cleanup(self) -> None:
        self.open_canary.unlink(missing_ok=True)
        for path in self.escapes:
            if path.exists():
                path.unlink()


@pytest.fixture
def host(tmp_path):
    h = Host(tmp_path)
    yield h
    try:
        h.assert_untouched()
    finally:
        h.cleanup()


# ------------------------------------------------------------------------------------ benign


def test_a_plain_program_runs_and_prints(host):
    r = run("print(sum(range(10)))")
    assert r.ok and r.stdout == "45\n" and r.stderr == "" and r.failure is None
    host.assert_untouched(r)


@pytest.mark.skipif(os.geteuid() != 0, reason="the full set needs root")
def test_this_host_gets_every_layer():
    if not Path("/usr/bin/unshare").exists() and not Path("/bin/unshare").exists():
        pytest.skip("no unshare here")
    m = mechanisms()
    for layer in ("fresh unprivileged uid", "network namespace", "pid namespace", "mount namespace"):
        assert layer in m


# ------------------------------------------------------------------------------------ CPU and time


def test_infinite_loop_is_stopped_by_the_wall_clock(host):
    r = run("while True:\n    pass")
    assert r.timed_out and not r.ok and r.failure == "timed out"
    host.assert_untouched(r)


def test_cpu_limit_kills_a_spinning_program_before_the_wall_clock(host):
    r = run("while True:\n    pass", SandboxLimits(wall_seconds=20, cpu_seconds=1))
    assert not r.timed_out
    assert r.returncode in (-signal.SIGXCPU, -signal.SIGKILL)
    host.assert_untouched(r)


def test_sleeping_forever_with_stdout_closed_is_killed(host):
    r = run("""
        import os, time
        os.close(1)
        os.close(2)
        time.sleep(3600)
    """)
    assert r.timed_out
    host.assert_untouched(r)


# ------------------------------------------------------------------------------------ processes


def test_subprocesses_and_threads_are_refused(host):
    r = run("""
        import os, subprocess, threading
        for name, attempt in [("subprocess", lambda: subprocess.run(["/bin/echo", "SPAWNED"])),
                              ("system", lambda: os.system("echo SPAWNED")),
                              ("spawn", lambda: os.posix_spawn("/bin/echo", ["echo", "SPAWNED"], {})),
                              ("fork", os.fork),
                              ("thread", lambda: threading.Thread(target=print, args=("THREAD",)).start())]:
            try:
                result = attempt()
                print(name, "returned", result)
            except Exception as e:
                print(name, "refused", type(e).__name__)
    """)
    assert r.ok, r.stderr
    assert "SPAWNED" not in r.stdout and "THREAD" not in r.stdout
    for name in ("subprocess", "spawn", "fork", "thread"):
        assert f"{name} refused" in r.stdout
    # glibc's system() reports a shell it could not start as exit status 127 (32512 as a wait status).
    assert "system returned 32512" in r.stdout or "system returned -1" in r.stdout
    host.assert_untouched(r)


def test_fork_bomb_is_contained_and_leaves_nothing_behind(host):
    # First prove the process limit binds here, with one harmless fork; only then set off the bomb.
    probe = run("import os\nos.fork()", SandboxLimits(wall_seconds=5, max_processes=1))
    assert "BlockingIOError" in probe.stderr, "RLIMIT_NPROC does not bind: refusing to run the fork bomb"
    limit = 8
    r = run("""
        import os, time
        print("p", flush=True)
        while True:
            try:
                if os.fork() == 0:
                    print("p", flush=True)
            except OSError:
                time.sleep(0.01)
    """, SandboxLimits(wall_seconds=2, max_processes=limit))
    assert r.timed_out
    assert 1 <= r.stdout.count("p") <= limit  # never more processes than the limit, ever
    host.assert_untouched(r)


@needs_namespaces
def test_daemon_that_leaves_the_session_and_parent_death_signal_is_still_killed(host):
    r = run("""
        import ctypes, os, time
        if os.fork() == 0:
            os.setsid()
            ctypes.CDLL(None).prctl(1, 0, 0, 0, 0)  # PR_SET_PDEATHSIG off
            if os.fork() == 0:
                time.sleep(3600)
            os._exit(0)
        time.sleep(0.3)
        print("parent done")
    """, SandboxLimits(wall_seconds=5, max_processes=4))
    assert r.ok and "parent done" in r.stdout
    host.assert_untouched(r)  # includes: no process of the sandbox uid is left


def test_signals_at_the_parent_and_everyone_do_not_reach_the_host(host):
    r = run("""
        import os, signal
        for target in (os.getppid(), 1, -1):
            try:
                os.kill(target, signal.SIGKILL)
                print(target, "sent")
            except OSError as e:
                print(target, type(e).__name__)
        print("alive", flush=True)
        os.killpg(0, signal.SIGKILL)
    """)
    assert "alive" in r.stdout
    assert r.returncode == -signal.SIGKILL  # its own group kill took only itself
    host.assert_untouched(r)


# ------------------------------------------------------------------------------------ exits


@pytest.mark.parametrize("code, returncode", [
    ("print(42, flush=True)\nimport sys\nsys.exit(3)", 3),
    ("raise SystemExit('42')", 1),
    ("import os\nprint(42, flush=True)\nos._exit(7)", 7),
])
def test_exit_games_are_failures_whatever_was_printed(host, code, returncode):
    r = run(code)
    assert r.returncode == returncode and not r.ok and r.failure.startswith(f"exit code {returncode}")
    host.assert_untouched(r)


def test_an_atexit_hook_that_hangs_is_timed_out(host):
    r = run("""
        import atexit, time
        atexit.register(lambda: time.sleep(3600))
        print(42)
    """)
    assert r.timed_out and not r.ok
    host.assert_untouched(r)


# ------------------------------------------------------------------------------------ memory, files, output


@pytest.mark.parametrize("code", ["b = bytearray(4 * 1024 ** 3)",
                                  "x = []\nwhile True:\n    x.append(bytearray(10 ** 7))"])
def test_huge_memory_allocation_fails_inside_the_sandbox(host, code):
    r = run(code, SandboxLimits(wall_seconds=10, memory_mb=128))
    assert r.returncode == 1 and "MemoryError" in r.stderr
    host.assert_untouched(r)


def test_huge_output_is_capped_and_the_writer_killed(host):
    limits = SandboxLimits(wall_seconds=10, max_output_bytes=4096)
    r = run("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)", limits)
    assert r.output_truncated and not r.ok and len(r.stdout) == 4096
    r2 = run("import sys\nwhile True:\n    sys.stderr.write('y' * 65536)", limits)
    assert r2.output_truncated and len(r2.stderr) == 4096
    host.assert_untouched(r2)


def test_file_descriptors_and_file_sizes_are_limited(host):
    r = run("""
        files = []
        try:
            while True:
                files.append(open("f%d" % len(files), "w"))
        except OSError as e:
            print("files", len(files), type(e).__name__)
        try:
            with open("big", "wb") as fh:
                fh.write(b"x" * (64 * 1024 * 1024))
            print("WROTE BIG")
        except OSError as e:
            print("big", e.errno)
    """, SandboxLimits(wall_seconds=10, max_open_files=32, disk_mb=4))
    assert r.ok, r.stderr
    count = int(r.stdout.split()[1])
    assert count < 32 and "WROTE BIG" not in r.stdout
    host.assert_untouched(r)


# ------------------------------------------------------------------------------------ network


@needs_namespaces
def test_no_connection_or_dns_query_reaches_the_host(host):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    resolver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        resolver.bind(("127.0.0.1", 0))
        tcp_port, udp_port = listener.getsockname()[1], resolver.getsockname()[1]
        r = run(f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {tcp_port}), timeout=2)
                print("CONNECTED")
            except OSError as e:
                print("tcp", type(e).__name__)
            try:
                query = b"\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x07example\\x03com\\x00\\x00\\x01\\x00\\x01"
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(query, ("127.0.0.1", {udp_port}))
                print("SENT")
            except OSError as e:
                print("udp", type(e).__name__)
            try:
                print("RESOLVED", socket.getaddrinfo("example.com", 80))
            except OSError as e:
                print("dns", type(e).__name__)
            print("interfaces", socket.if_nameindex())
        """, SandboxLimits(wall_seconds=10))
        assert r.ok, r.stderr
        assert "CONNECTED" not in r.stdout and "RESOLVED" not in r.stdout
        assert "interfaces [(1, 'lo')]" in r.stdout
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever arrived
        resolver.setblocking(False)
        with pytest.raises(BlockingIOError):
            resolver.recvfrom(512)
    finally:
        listener.close()
        resolver.close()
    host.assert_untouched(r)


# ------------------------------------------------------------------------------------ secrets and the host


def test_environment_secrets_are_not_inherited(host, monkeypatch):
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    monkeypatch.setenv("RDISTILL_TEST_SECRET", secret)
    r = run(f"""
        import glob, os
        print(sorted(os.environ.items()))
        for path in glob.glob("/proc/[0-9]*/environ") + glob.glob("/proc/[0-9]*/cmdline"):
            try:
                print(path, open(path, "rb").read())
            except OSError as e:
                print(path, type(e).__name__)
        try:
            print("host", open("/proc/{os.getpid()}/environ", "rb").read())
        except OSError as e:
            print("host", type(e).__name__)
        print("DONE")
    """)
    assert r.ok and "DONE" in r.stdout, r.stderr
    assert secret not in r.stdout and "RDISTILL_TEST_SECRET" not in r.stdout
    assert r.stdout.splitlines()[0].startswith("[('HOME', ") and "('PATH', " in r.stdout.splitlines()[0]
    host.assert_untouched(r)


@needs_namespaces
def test_proc_shows_only_the_sandbox_not_its_parent(host):
    r = run(f"""
        import os
        pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        print("pids", pids)
        print("ppid", os.getppid())
        for path in ("/proc/{os.getpid()}/environ", "/proc/{os.getppid()}/environ", "/proc/1/environ",
                     "/proc/1/root/etc/hostname"):
            try:
                open(path, "rb").read()
                print("READ", path)
            except OSError as e:
                print("denied", path, type(e).__name__)
    """)
    assert r.ok, r.stderr
    pids = eval(r.stdout.splitlines()[0].split(" ", 1)[1])
    assert set(pids) <= {1, 2, 3}  # the launcher (1) and the program; none of the host's
    assert f"READ /proc/{os.getpid()}/environ" not in r.stdout
    assert "READ /proc/1/environ" not in r.stdout  # the launcher runs as root
    host.assert_untouched(r)


@needs_uid_drop
def test_host_files_that_are_not_world_readable_stay_unreadable(host):
    r = run(f"""
        for path in ({str(host.secret_file)!r}, "/root/.bashrc", "/etc/shadow", "/proc/1/root{host.secret_file}"):
            try:
                print("READ", path, open(path).read())
            except OSError as e:
                print("denied", path, type(e).__name__)
    """)
    assert r.ok, r.stderr
    assert "READ" not in r.stdout and f"top-secret-{host.tag}" not in r.stdout
    host.assert_untouched(r)


@needs_namespaces
def test_writes_outside_the_working_directory_fail_or_vanish(host):
    targets = [str(p) for p in host.escapes]
    r = run(f"""
        import os
        for path in {targets!r}:
            try:
                with open(path, "w") as fh:
                    fh.write("escaped")
                print("wrote", path)
            except OSError as e:
                print("denied", path, type(e).__name__)
        with open("inside.txt", "w") as fh:  # its own directory works
            fh.write("ok")
        print("cwd", os.getcwd(), sorted(os.listdir(".")))
    """)
    assert r.ok, r.stderr
    # /tmp inside is the sandbox's own tmpfs (its working directory): a write to /tmp/escape-... lands
    # there, next to main.py, and is gone with the run.
    assert f"cwd /tmp ['escape-{host.tag}', 'inside.txt', 'main.py']" in r.stdout
    assert f"denied {Path('/var/tmp') / ('escape-' + host.tag)} OSError" in r.stdout
    host.assert_untouched(r)


@needs_namespaces
def test_deleting_or_truncating_a_world_writable_host_file_fails(host):
    canary = str(host.open_canary)
    r = run(f"""
        import os, shutil
        for name, attempt in [("remove", lambda: os.remove({canary!r})),
                              ("truncate", lambda: open({canary!r}, "w").close()),
                              ("rename", lambda: os.rename({canary!r}, {canary!r} + ".gone")),
                              ("chmod", lambda: os.chmod({canary!r}, 0)),
                              ("rmtree", lambda: shutil.rmtree({str(REPO / "tests")!r}))]:
            try:
                attempt()
                print("DID", name)
            except OSError as e:
                print("denied", name, type(e).__name__)
    """)
    assert r.ok, r.stderr
    assert "DID" not in r.stdout
    assert stat.S_IMODE(host.open_canary.stat().st_mode) == 0o666
    assert (REPO / "tests" / "test_sandbox.py").exists()
    host.assert_untouched(r)


@needs_uid_drop
def test_no_privileges_to_regain(host):
    r = run("""
        import os
        caps = [line for line in open("/proc/self/status") if line.startswith(("CapEff", "CapBnd", "NoNewPrivs"))]
        print("".join(caps))
        for name, attempt in [("setuid", lambda: os.setuid(0)), ("chroot", lambda: os.chroot("/"))]:
            try:
                print("DID", name, attempt())
            except OSError as e:
                print("denied", name, type(e).__name__)
    """)
    assert "CapEff:\t0000000000000000" in r.stdout and "CapBnd:\t0000000000000000" in r.stdout
    assert "NoNewPrivs:\t1" in r.stdout
    assert "DID setuid" not in r.stdout and "DID chroot" not in r.stdout
    host.assert_untouched(r)
