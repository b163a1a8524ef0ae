"""The first process inside a sandbox: prepare the jail as root, then run the untrusted code as nobody.

Run by `rdistill.filter.sandbox` as `python -I -S sandbox_launcher.py CONFIG_JSON`, either as the
first process of fresh network/PID/mount namespaces (under `unshare`) or, where those are unavailable,
directly. Standard library only: `-S` keeps site-packages (and with them rdistill) off the path.

Steps, each only where the config asks for it:
1. read the code from the host file (before the host's /tmp is hidden);
2. private mounts: remount every inherited mount read-only, mount a size-capped tmpfs on /tmp as the
   working directory, and re-expose the Python installation if it sits under a directory others may
   not enter (e.g. /root), by covering that directory with an empty read-only tmpfs that holds only
   the installation (so the rest of /root stays hidden);
3. fork the worker: rlimits, drop supplementary groups, gid and uid, empty the capability bounding set,
   no_new_privs, parent-death signal, then exec `python -I -S -B main.py` with the given environment;
4. stay behind as init: reap every process, and when the worker ends write its wait status to the
   status pipe and exit, which (as PID 1 of the namespace) makes the kernel kill whatever is left.

Setup failures are written to the status pipe as {"error": ...}, never to the worker's stderr.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import stat
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_MOVE, MS_REC = 32, 1024, 2048, 4096, 8192, 16384
MS_RELATIME = 1 << 21
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 24, 38
# Per-mount flags that a read-only remount must repeat, or the kernel refuses (locked in a user ns).
_KEPT_MOUNT_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": MS_NOATIME,
                     "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME}
_RLIMITS = {"AS": resource.RLIMIT_AS, "CPU": resource.RLIMIT_CPU, "FSIZE": resource.RLIMIT_FSIZE,
            "NOFILE": resource.RLIMIT_NOFILE, "NPROC": resource.RLIMIT_NPROC, "CORE": resource.RLIMIT_CORE}

_libc = ctypes.CDLL(None, use_errno=True)


class SetupError(Exception):
    pass


def _call(name: str, *args) -> None:
    if getattr(_libc, name)(*args) != 0:
        err = ctypes.get_errno()
        raise SetupError(f"{name}{tuple(a.decode() if isinstance(a, bytes) else a for a in args)}: "
                         f"{os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = (lambda s: s.encode() if s is not None else None)
    _call("mount", enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data))


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash in paths as octal escapes.
    return (field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")
            .replace("\\134", "\\"))


def remount_everything_read_only() -> int:
    """Make every mount this namespace inherited read-only. Returns how many could not be (left rw)."""
    failures = 0
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    for line in lines:
        fields = line.split()
        target, options = _unescape(fields[4]), fields[5].split(",")
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for opt in options:
            flags |= _KEPT_MOUNT_FLAGS.get(opt, 0)
        try:
            _mount(None, target, None, flags)
        except SetupError:
            failures += 1  # e.g. a mount hidden under another; what stays visible is what matters
    return failures


def _closed_ancestor(path: str) -> str | None:
    """The shallowest directory above `path` that others may not enter, if any."""
    parts = os.path.abspath(path).split(os.sep)[1:]
    for k in range(1, len(parts)):
        ancestor = "/" + "/".join(parts[:k])
        if not os.stat(ancestor).st_mode & stat.S_IXOTH:
            return ancestor
    return None


def expose_installations(paths: list[str]) -> None:
    """Make each path reachable for an unprivileged uid where an ancestor directory is closed to others.

    Each closed directory is covered by an empty tmpfs that holds only the paths below it (so the rest
    of, say, /root stays hidden), each path bind-mounted back in read-only at its own place: the
    interpreter finds its libraries at the absolute paths it was built with.
    """
    moves = [(path, closed) for path in paths if (closed := _closed_ancestor(path)) is not None]
    for k, (path, _) in enumerate(moves):
        staging = f"/tmp/.rdistill-expose-{k}"
        os.mkdir(staging, 0o755)
        _mount(path, staging, None, MS_BIND | MS_REC)
    covers = sorted({closed for _, closed in moves})
    for closed in covers:
        _mount("rdistill-cover", closed, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755")
    for k, (path, _) in enumerate(moves):
        staging = f"/tmp/.rdistill-expose-{k}"
        os.makedirs(path, mode=0o755, exist_ok=True)
        _mount(staging, path, None, MS_MOVE)
        _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        os.rmdir(staging)
    for closed in covers:
        _mount(None, closed, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def prepare_private_mounts(cfg: dict) -> str:
    remount_everything_read_only()
    owner = cfg["uid"] if cfg["uid"] is not None else 0
    group = cfg["gid"] if cfg["gid"] is not None else 0
    _mount("rdistill-sandbox", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
           f"size={cfg['tmpfs_kib']}k,nr_inodes=4096,mode=0700,uid={owner},gid={group}")
    expose_installations(cfg["expose"])
    return "/tmp"


def _drop_bounding_capabilities() -> None:
    try:
        with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as fh:
            last = int(fh.read())
    except OSError:
        last = 40
    for cap in range(last + 1):
        _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # fails without CAP_SETPCAP: then the uid drop has to do


def become_worker(cfg: dict, workdir: str, status_fd: int) -> None:
    """In the forked worker: limit, drop privileges and exec. Never returns."""
    try:
        os.close(status_fd)
        os.chdir(workdir)
        for name, (soft, hard) in cfg["rlimits"].items():
            resource.setrlimit(_RLIMITS[name], (soft, hard))
        _drop_bounding_capabilities()
        if cfg["uid"] is not None:
            os.setgroups([])
            os.setgid(cfg["gid"])
            os.setuid(cfg["uid"])
        _call("prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        _call("prctl", PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        os.execve(cfg["python"], [cfg["python"], "-I", "-S", "-B", "main.py"], cfg["env"])
    except BaseException as exc:  # noqa: BLE001 - the worker must never fall back into launcher code
        os.write(2, f"rdistill-sandbox: could not start: {exc}\n".encode())
    os._exit(126)


def wait_as_init(worker: int) -> int:
    """Reap every child (orphans land on PID 1) until the worker itself has ended; its wait status."""
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue
        if pid == worker:
            return status


def main() -> None:
    cfg = json.loads(sys.argv[1])
    status_fd = cfg["status_fd"]
    os.set_inheritable(status_fd, False)
    try:
        with open(cfg["code_path"], "rb") as fh:
            code = fh.read()
        workdir = prepare_private_mounts(cfg) if cfg["private_mounts"] else cfg["workdir"]
        if cfg["private_mounts"]:
            with open(os.path.join(workdir, "main.py"), "wb") as fh:
                fh.write(code)
            os.chmod(os.path.join(workdir, "main.py"), 0o644)
    except (OSError, SetupError) as exc:
        os.write(status_fd, json.dumps({"error": str(exc)}).encode())
        sys.exit(125)
    worker = os.fork()
    if worker == 0:
        become_worker(cfg, workdir, status_fd)
    # Signals meant to stop the sandbox reach us first; pass them on rather than die half-way.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: os.kill(worker, signal.SIGKILL))
    status = wait_as_init(worker)
    code = os.waitstatus_to_exitcode(status)
    os.write(status_fd, json.dumps({"returncode": code}).encode())
    sys.exit(0)


if __name__ == "__main__":
    main()
