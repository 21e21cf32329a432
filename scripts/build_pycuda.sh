#!/usr/bin/env bash
# Build PyCUDA into the project's virtualenv on a GPU host, then run the GPU tests and the
# engine benchmark.
#
#   scripts/build_pycuda.sh [WHEELHOUSE]
#
# PyCUDA ships no wheels: it compiles against the CUDA toolkit (its root is derived from the
# nvcc found on PATH, or $NVCC) and links the driver's libcuda (the toolkit's stub library is
# used at link time when the driver installed no unversioned libcuda.so). On a host without
# network pass WHEELHOUSE, a folder holding the pycuda sdist and its dependencies (pytools,
# platformdirs, mako, siphash24) downloaded elsewhere with `pip download pycuda`.
# Extra pytest arguments go in $PYTEST_ARGS (e.g. PYTEST_ARGS="-n 8" with pytest-xdist), extra
# benchmark arguments in $BENCH_ARGS (e.g. BENCH_ARGS="--trials 10000000").
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=$(command -v python3)

NVCC=${NVCC:-$(command -v nvcc || true)}
[ -n "$NVCC" ] || NVCC=/usr/local/cuda/bin/nvcc
[ -x "$NVCC" ] || { echo "nvcc not found: put it on PATH or set NVCC" >&2; exit 1; }
CUDA_ROOT=$(cd "$(dirname "$(readlink -f "$NVCC")")/.." && pwd)
export CUDA_ROOT CUDA_HOME="$CUDA_ROOT" PATH="$CUDA_ROOT/bin:$PATH"
export LIBRARY_PATH="$CUDA_ROOT/lib64:$CUDA_ROOT/lib64/stubs:${LIBRARY_PATH:-}"
echo "CUDA root: $CUDA_ROOT ($("$NVCC" --version | tail -1))"

if ! "$PY" -c "import pycuda.driver" 2>/dev/null; then
  if [ $# -ge 1 ]; then
    "$PY" -m pip install --no-index --find-links "$1" --no-build-isolation pycuda \
      || "$PY" -m pip install --no-index --find-links "$1" pycuda
  else
    "$PY" -m pip install pycuda
  fi
fi
"$PY" - <<'PY'
import pycuda.driver as drv
drv.init()
for i in range(drv.Device.count()):
    d = drv.Device(i)
    print(f"GPU {i}: {d.name()}, compute {d.compute_capability()}, {d.total_memory() >> 20} MiB")
PY

# shellcheck disable=SC2086
"$PY" -m pytest -q -p no:cacheprovider ${PYTEST_ARGS:-} tests/engine/test_cuda_runner.py \
  tests/engine/test_cuda_codegen.py tests/engine/test_run.py
# shellcheck disable=SC2086
"$PY" -m bench.engine ${BENCH_ARGS:-}
