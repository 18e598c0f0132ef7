#!/usr/bin/env bash
# The GPU check of bpgpu, in at most 5 minutes on an H200 (90 s with --quick), caches cold included:
#
#   benchmarks/gpu.sh [--quick] [OUT_DIR]      (default OUT_DIR: benchmarks/results/local/gpu-<date>)
#
# 1. versions.txt: the device, driver and CUDA (nvidia-smi), Python and the array libraries;
# 2. bench.txt and gpu-<date>.md: benchmarks/gpu.py, every figure printed and written the moment it
#    is measured (first epoch and steady epoch of bpgpu-jax, bpgpu-cupy, bpgpu-torch, PyTorch eager,
#    PyTorch with the step in a CUDA graph and cuBLAS's products alone, at W1-W4; --quick: W1 and
#    W2, four rows), so a run cut short still leaves what it measured;
# 3. check.txt: `bpgpu check` on every backend that works (full mode only);
# 4. tests.txt: the backend-parametrised tests on CuPy, JAX and torch (and 2 MPI ranks sharing the
#    GPU with CuPy, when mpiexec is there), in whatever time is left.
#
# Without a GPU it says so and runs the CPU part (the CPU rows at W1 and W2, and the JAX compile
# tests), then exits 0 unless something failed. Run it with bpgpu and its test extras importable by
# $PYTHON (default python3): an installed clone (PYTHON=.venv/bin/python after make test), or
# PYTHONPATH=$PWD with the packages installed (../shared/gpu/README.md says how on the H200).
set -uo pipefail
cd "$(dirname "$0")/.."
quick=0
if [ "${1:-}" = "--quick" ]; then
    quick=1
    shift
fi
out=${1:-benchmarks/results/local/gpu-$(date +%F)}
mkdir -p "$out"
py=${PYTHON:-python3}
status=0
total=$((quick ? 90 : 300))
left() { echo $((total - SECONDS)); }

step() {  # step NAME SECONDS COMMAND...: run it with a time limit, its output to $out/NAME
    local name=$1 limit=$2
    shift 2
    if [ "$limit" -lt 10 ]; then
        echo "== $name: not run, the ${total} s were spent"
        return
    fi
    echo "== $name (at most ${limit} s): $*"
    timeout "$limit" "$@" >"$out/$name" 2>&1
    local rc=$?
    tail -n 3 "$out/$name"
    if [ "$rc" -eq 124 ]; then
        echo "!! $name was cut at its ${limit} s limit (log: $out/$name)"
    elif [ "$rc" -ne 0 ]; then
        echo "!! $name ended with exit code $rc (log: $out/$name)"
        status=1
    fi
}

{
    date -u +"%F %T UTC"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi: none"
    nvidia-smi 2>/dev/null | grep -o "CUDA Version: [0-9.]*" || true
    timeout 60 "$py" - <<'EOF'
import importlib, platform
print("python", platform.python_version(), platform.machine())
for name in ("numpy", "array_api_compat", "cupy", "jax", "jaxlib", "torch"):
    try:
        module = importlib.import_module(name)
        print(name, getattr(module, "__version__", "?"))
    except Exception as exc:
        print(name, "not importable:", type(exc).__name__, exc)
try:
    import cupy
    print("cupy CUDA runtime", cupy.cuda.runtime.runtimeGetVersion(), "devices", cupy.cuda.runtime.getDeviceCount())
except Exception as exc:
    print("cupy devices: none:", type(exc).__name__)
try:
    import torch
    print("torch CUDA", torch.version.cuda, "available", torch.cuda.is_available())
except Exception as exc:
    print("torch: none:", type(exc).__name__)
EOF
} >"$out/versions.txt" 2>&1
cat "$out/versions.txt"

if timeout 60 "$py" -c "import bpgpu, sys; sys.exit(0 if 'cupy' in bpgpu.available_backends() else 1)" 2>/dev/null; then
    gpu=1
    echo "== a CUDA GPU works: running the GPU check ($([ "$quick" -eq 1 ] && echo quick || echo full))"
else
    gpu=0
    echo "== no CUDA GPU works here (no device, driver or CuPy): running the CPU part only"
fi

# The figures first: they are what a cut run must not lose. Their budget leaves time for the tests.
budget=$((quick ? 55 : 200))
mode=()
[ "$quick" -eq 1 ] && mode=(--quick)
echo "== bench.txt (at most $((budget + 30)) s)"
timeout $((budget + 30)) "$py" -m benchmarks.gpu "${mode[@]}" --budget "$budget" --out "$out" 2>&1 | tee "$out/bench.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "!! bench.txt: the harness failed or was cut"; status=1; }

if [ "$gpu" -eq 1 ] && [ "$quick" -eq 0 ]; then
    step check.txt "$(( $(left) < 45 ? $(left) - 40 : 45 ))" "$py" -m bpgpu check
fi
tests=(tests/test_jax_compiles.py tests/test_compiled.py)
if [ "$gpu" -eq 1 ]; then
    tests+=(tests/test_torch_graph.py tests/test_gradients.py tests/test_cross_backend.py tests/test_backends.py)
    tests+=(tests/test_training.py tests/test_distributed.py)
    tests+=(-k "cupy or jax or torch or gpu or cuda")
fi
step tests.txt "$(( $(left) - 5 ))" "$py" -m pytest -q -x -p no:cacheprovider "${tests[@]}"
echo "== logs and tables in $out ($SECONDS s)"
exit "$status"
