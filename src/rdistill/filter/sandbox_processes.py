"""Find and kill a sandbox's processes, and pick the fresh uid a sandbox runs as (root only).

Linux-specific: reads /proc. A killed process may stay a zombie until its new parent reaps it; zombies
are dead and are not chased.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess

# Fresh uids come from a block far above any real account's; one that owns a process is never reused.
SANDBOX_UID_BASE = 0x5F000000
SANDBOX_UID_SPAN = 1 << 24


def fresh_uid() -> int:
    in_use = {owner for _, owner, _ in processes()}  # zombies too: they still count against RLIMIT_NPROC
    while True:
        uid = SANDBOX_UID_BASE + secrets.randbelow(SANDBOX_UID_SPAN)
        if uid not in in_use:
            return uid


def processes() -> list[tuple[int, int, bool]]:
    """(pid, real uid, is a zombie) of every process this host shows us."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/status", encoding="ascii", errors="replace") as fh:
                    fields = dict(line.split(":", 1) for line in fh if ":" in line)
                found.append((int(entry.name), int(fields["Uid"].split()[0]), fields["State"].strip()[:1] == "Z"))
            except (OSError, ValueError, KeyError, IndexError):
                continue  # exited while we looked
    return found


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_everything(proc: subprocess.Popen, uid: int | None) -> None:
    """SIGKILL the sandbox: descendants first (found before their parents die), the group, its uid."""
    if proc.poll() is None:
        for pid in _descendants(proc.pid):
            _kill(pid)
    try:
        # Safe even after the leader exited: it is not reaped yet, so its pid (the group id) is not reused.
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if uid is not None:
        # A process that made itself a new session and cleared its parent-death signal is still ours.
        for _ in range(100):
            # Zombies are dead already; reaping them is their new parent's business.
            left = [pid for pid, owner, zombie in processes() if owner == uid and not zombie]
            if not left:
                break
            for pid in left:
                _kill(pid)
    proc.wait()
    for stream in (proc.stdout, proc.stderr):
        stream.close()
