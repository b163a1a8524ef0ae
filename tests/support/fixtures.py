"""Pytest fixtures shared by the teacher tests. Import them into a test module by name.

The model server is one per test session even when several modules import the fixture: pytest makes one
fixture definition per importing module, so they share a process-wide server here.
"""

from __future__ import annotations

import os

import pytest

from support.llama_server import LlamaServer, ServerUnavailable, start_server

_shared: dict[str, LlamaServer] = {}

# RDISTILL_TEST_SERVER=python forces llama-cpp-python's server even when the llama-server binary is installed.
_PREFER_BINARY = os.environ.get("RDISTILL_TEST_SERVER", "binary") != "python"


def shared_llama_server() -> LlamaServer:
    server = _shared.get("server")
    if server is None or server.process.poll() is not None:
        try:
            # One decode thread: on 2 shared cores, 2 threads that wait on each other at every step are many
            # times slower whenever anything else runs (this test process's own client and proxy included).
            server = start_server(parallel=4, threads=1, ctx_per_slot=1024, prefer_binary=_PREFER_BINARY)
        except ServerUnavailable as e:
            pytest.skip(str(e))
        _shared["server"] = server
    return server


@pytest.fixture(scope="session")
def llama_server() -> LlamaServer:
    """A real OpenAI-compatible llama.cpp server with SmolLM2-135M on a free loopback port."""
    server = shared_llama_server()
    yield server
    _shared.pop("server", None)
    server.stop()
