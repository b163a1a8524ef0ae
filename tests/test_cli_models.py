"""`rdistill models`: piped, whole tab-separated values (full names; an installed model's file, not an install
command); `--json` for scripts; in a terminal, a table whose names are never cut."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rdistill.models.catalog import CATALOG

SRC = Path(__file__).resolve().parents[1] / "src"
ONE_PART, SPLIT = "smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct"


def fake_install(site: Path, name: str) -> list[Path]:
    """Every part of catalog model `name` as pip leaves it (dist-info + file), a few bytes each: enough for the
    installed check, which never hashes."""
    files = []
    for part in CATALOG[name].parts:
        info = site / f"{part.distribution.replace('-', '_')}-{part.version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {part.distribution}\nVersion: {part.version}\n")
        files.append(site / part.relative_path)
        files[-1].parent.mkdir(parents=True, exist_ok=True)
        files[-1].write_bytes(b"GGUF")
    return files


@pytest.fixture
def env(tmp_path) -> dict:
    """Two catalog models installed (one in one file, one split into parts), ahead of any real installation."""
    site = tmp_path / "site"
    fake_install(site, ONE_PART)
    fake_install(site, SPLIT)
    return {"PYTHONPATH": os.pathsep.join([str(site), str(SRC)]), "RDISTILL_CACHE": str(tmp_path / "cache")}


def test_piped_output_has_every_name_whole_and_the_files_of_installed_models(cli, env, tmp_path):
    proc = cli("models", env=env)
    assert proc.returncode == 0, proc.stderr
    header, *lines = proc.stdout.splitlines()
    assert header.split("\t")[0] == "name" and "…" not in proc.stdout
    rows = {cells[0]: cells for cells in (line.split("\t") for line in lines)}
    assert list(rows) == list(CATALOG) and all(len(cells) == 4 for cells in rows.values())
    assert rows[ONE_PART][1:3] == ["yes", str(tmp_path / "site" / CATALOG[ONE_PART].parts[0].relative_path)]
    # a split model is joined into the cache on first use: that is the file it is used from
    assert rows[SPLIT][1:3] == ["yes", str(tmp_path / "cache" / "models" / f"{SPLIT}.gguf")]
    for name, (_, installed, where, size) in rows.items():
        assert where == CATALOG[name].install_command() if installed == "no" else Path(where).is_absolute()
        assert size == f"{CATALOG[name].size_bytes / 1e6:.0f} MB"


def test_json_lists_every_model(cli, env):
    proc = cli("models", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [row["name"] for row in rows] == list(CATALOG)
    by_name = {row["name"]: row for row in rows}
    assert by_name[ONE_PART]["installed"] and by_name[ONE_PART]["file"].endswith(".gguf")
    assert all(row["installed"] == (row["file"] is not None) for row in rows)
    assert all(row["install_command"] and row["size_bytes"] > 0 for row in rows)


def on_terminal(env: dict, columns: int) -> str:
    """`rdistill models` on a pseudo-terminal `columns` wide, as the screen shows it (colours removed)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "rdistill", "models"], stdout=slave, stderr=subprocess.PIPE,
                            env={**os.environ, **env, "COLUMNS": str(columns), "TERM": "xterm"})
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode())


def test_a_terminal_gets_a_table_whose_names_are_never_cut(env):
    screen = on_terminal(env, 80)  # the width rich assumed when piped, which cut names to "…"
    assert "\t" not in screen and "┃ name" in screen and "…" not in screen
    assert max(len(line) for line in screen.splitlines()) <= 80
    for name, model in CATALOG.items():
        assert f"│ {name} " in screen and f"{model.size_bytes / 1e6:.0f} MB" in screen, name


def test_a_terminal_too_narrow_for_the_table_gets_the_whole_rows(env):
    screen = on_terminal(env, 50)
    rows = [line.split("\t") for line in screen.splitlines()[1:]]
    assert [cells[0] for cells in rows] == list(CATALOG) and all(len(cells) == 4 for cells in rows)
