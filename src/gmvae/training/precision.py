"""Pick the fastest training precision that does not cost accuracy on the hardware found.

bf16 autocast ("bf16-mixed") keeps fp32 master weights and fp32 losses; it pays on
CPUs with native bf16 dot products (AVX512-BF16 or AMX) and on GPUs that support
bf16. Elsewhere bf16 is emulated and slower, so fp32 stays the default.
docs/PERFORMANCE.md has the measured speed and the accuracy check.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

_NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when the CPU advertises bf16 dot-product instructions (Linux /proc/cpuinfo)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    return any(f in flags for f in _NATIVE_BF16_FLAGS)


def fastest_precision() -> str:
    """Lightning precision string for this machine: ``bf16-mixed`` where native, else ``32-true``."""
    if torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    return "bf16-mixed" if cpu_has_native_bf16() else "32-true"
