"""A CPU driver for the generated source: ``nvcc`` compiles it for the host, no GPU needed.

The executable runs the very ``__host__ __device__`` functions the kernel runs, so tests
compare its Philox words bit for bit with NumPy and its values with the NumPy back end.
Usage: ``harness SEED FIRST COUNT DRAW`` writes the input rows then the output rows as
float64 to stdout (``DRAW=0`` reads the uniforms of the input rows from stdin), and
``harness raw SEED STREAM FIRST COUNT`` writes the raw Philox words of one stream.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from .codegen import CudaSource

__all__ = ["NVCC", "HostHarness", "nvcc_path"]

NVCC = "/usr/local/bin/nvcc"

_MAIN = r"""
#include <cstdio>
#include <cstdlib>
#include <cstring>
int main(int argc, char** argv) {
  if (argc == 6 && strcmp(argv[1], "raw") == 0) {
    u64 seed = strtoull(argv[2], 0, 10), stream = strtoull(argv[3], 0, 10);
    u64 first = strtoull(argv[4], 0, 10), count = strtoull(argv[5], 0, 10);
    for (u64 i = first; i < first + count; ++i) {
      u64 w[4]; alea_philox(i / 4, 0, seed, stream, w);
      fwrite(&w[i % 4], 8, 1, stdout);
    }
    return 0;
  }
  if (argc != 5) { fprintf(stderr, "usage: harness SEED FIRST COUNT DRAW\n"); return 2; }
  u64 seed = strtoull(argv[1], 0, 10), first = strtoull(argv[2], 0, 10);
  u64 count = strtoull(argv[3], 0, 10);
  int draw = atoi(argv[4]);
  size_t nx = (size_t)ALEA_INPUTS * count, ny = (size_t)ALEA_OUTPUTS * count;
  double* x = (double*)calloc(nx + 1, 8);
  double* y = (double*)calloc(ny + 1, 8);
  if (!draw && fread(x, 8, nx, stdin) != nx) { fprintf(stderr, "short input\n"); return 2; }
  alea_host(seed, first, count, draw, x, y);
  fwrite(x, 8, nx, stdout);
  fwrite(y, 8, ny, stdout);
  return 0;
}
"""


def nvcc_path() -> str | None:
    """The ``nvcc`` to use: ``$ALEA_NVCC``, the usual install path, or the one on PATH."""
    for candidate in (os.environ.get("ALEA_NVCC"), NVCC, shutil.which("nvcc")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


class HostHarness:
    """The generated source compiled for this CPU, run as a subprocess."""

    def __init__(self, src: CudaSource, workdir: Path) -> None:
        nvcc = nvcc_path()
        if nvcc is None:
            raise RuntimeError("nvcc not found")
        self.src = src
        path = Path(workdir) / f"harness_{src.key[:16]}.cu"
        path.write_text(src.source + _MAIN)
        self.exe = path.with_suffix("")
        # Host code only, unoptimised: it compiles in seconds even for wide models, and the
        # harness runs few trials.
        subprocess.run(
            [nvcc, "-DALEA_NO_KERNEL", "-Xcompiler", "-O0", "-w", "-o", str(self.exe), str(path)],
            check=True,
            capture_output=True,
            text=True,
        )

    def raw(self, seed: int, stream: int, first: int, count: int) -> np.ndarray:
        """Raw Philox words of one stream for indices ``[first, first + count)``."""
        out = subprocess.run(
            [str(self.exe), "raw", str(seed), str(stream), str(first), str(count)],
            check=True,
            capture_output=True,
        ).stdout
        return np.frombuffer(out, dtype=np.uint64)

    def evaluate(
        self, seed: int, first: int, count: int, uniforms: np.ndarray | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(outputs, inputs) by name, as ``Evaluator.evaluate``; ``uniforms`` (inputs × count)
        replaces the Philox draws (Latin Hypercube)."""
        draw = uniforms is None
        stdin = None if draw else np.ascontiguousarray(uniforms, dtype=np.float64).tobytes()
        out = subprocess.run(
            [str(self.exe), str(seed), str(first), str(count), "1" if draw else "0"],
            input=stdin,
            check=True,
            capture_output=True,
        ).stdout
        values = np.frombuffer(out, dtype=np.float64)
        ni = len(self.src.inputs)
        x = values[: ni * count].reshape(ni, count)
        y = values[ni * count :].reshape(len(self.src.outputs), count)
        return (
            dict(zip(self.src.outputs, y, strict=True)),
            dict(zip(self.src.inputs, x, strict=True)),
        )
