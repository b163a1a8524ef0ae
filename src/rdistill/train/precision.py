"""Which number format training computes in: bf16 only where the machine computes it fast.

On a GPU with bf16 support, bf16 (halves memory, full speed). On a CPU, bf16 only when the CPU has native bf16
instructions (AVX512-BF16 or AMX, from /proc/cpuinfo) *and* a bf16 matrix product of a student's shape measures
faster than float32: without them PyTorch emulates bf16, and on an Ice Lake CPU (AVX-512 and VNNI, no AVX512-BF16)
a 896x896 @ 896x4864 bf16 product ran at ~1 GFLOP/s against ~136 in float32, which turned a 12-minute training
stage into hours. An explicit `bf16: true` on such a CPU is kept (the user asked) but logged as a warning with the
measured speeds. The choice and its reason are logged and written to the student's run record.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# A Qwen2.5-0.5B MLP projection: the shape training spends its time in.
_SHAPE = (896, 896, 4864)


@dataclass(frozen=True)
class Precision:
    bf16: bool
    reason: str
    fp32_gflops: float | None = None
    bf16_gflops: float | None = None

    def as_record(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def cpu_bf16_flags(cpuinfo: str | None = None) -> list[str]:
    """The native-bf16 flags this CPU reports (empty: bf16 is emulated)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags") and ":" in line:
            flags.update(line.split(":", 1)[1].split())
    return [f for f in NATIVE_BF16_FLAGS if f in flags]


@functools.lru_cache(maxsize=None)
def matmul_gflops(dtype_name: str, seconds: float = 0.3) -> float:
    """Measured GFLOP/s of one student-shaped matrix product on the CPU in `dtype_name` (float32 | bfloat16)."""
    import torch

    m, k, n = _SHAPE
    dtype = getattr(torch, dtype_name)
    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    a @ b  # warm-up: first-call dispatch and allocation
    runs, start = 0, time.perf_counter()
    while True:
        a @ b
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds or runs >= 50:
            return 2 * m * k * n * runs / elapsed / 1e9


def choose_precision(requested: bool | None, *, cuda: bool | None = None, cuda_bf16: bool | None = None,
                     cpu_flags: list[str] | None = None) -> Precision:
    """bf16 or float32 for this machine; `requested` is the user's bf16 setting (None: choose)."""
    if cuda is None or cuda_bf16 is None:
        import torch

        cuda = torch.cuda.is_available() if cuda is None else cuda
        cuda_bf16 = (cuda and torch.cuda.is_bf16_supported()) if cuda_bf16 is None else cuda_bf16
    if cuda:
        if requested is not None:
            return Precision(requested, "set in the training settings")
        return Precision(bool(cuda_bf16), "GPU with bf16" if cuda_bf16 else "GPU without bf16 support")
    flags = cpu_bf16_flags() if cpu_flags is None else cpu_flags
    if not flags:
        if requested:
            fp32, bf16 = matmul_gflops("float32"), matmul_gflops("bfloat16")
            log.warning("bf16 was asked for, but this CPU has no native bf16 (no %s): PyTorch emulates it, measured "
                        "%.1f GFLOP/s against %.1f in float32; training will be that much slower (set bf16 off, or "
                        "leave it unset to choose by machine)", " or ".join(NATIVE_BF16_FLAGS), bf16, fp32)
            return Precision(True, "set in the training settings, on a CPU that emulates bf16", fp32, bf16)
        if requested is False:
            return Precision(False, "set in the training settings")
        return Precision(False, f"CPU without native bf16 ({' / '.join(NATIVE_BF16_FLAGS)} absent): float32")
    if requested is not None:
        return Precision(requested, "set in the training settings")
    fp32, bf16 = matmul_gflops("float32"), matmul_gflops("bfloat16")
    faster = bf16 > fp32
    return Precision(faster, f"CPU with {', '.join(flags)}: bf16 measured {'faster' if faster else 'slower'} than "
                             f"float32 on a student-shaped product", fp32, bf16)


@functools.lru_cache(maxsize=None)
def _chosen(requested: bool | None) -> Precision:
    precision = choose_precision(requested)
    log.info("training in %s: %s", "bf16" if precision.bf16 else "float32", precision.reason)
    return precision


def training_precision(requested: bool | None) -> Precision:
    """choose_precision for this process, decided (and logged) once."""
    return _chosen(requested)
