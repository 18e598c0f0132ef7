#!/usr/bin/env bash
# One-shot GPU check of bpgpu, in at most about 8 minutes, every log in one folder:
#
#   benchmarks/gpu.sh [OUT_DIR]      (default benchmarks/results/local/gpu-<date>)
#
# 1. versions.txt: the device, driver and CUDA (nvidia-smi), Python, NumPy, CuPy, JAX and torch;
# 2. check.txt:    `bpgpu check` on every backend that works (CuPy and JAX against NumPy);
# 3. tests.txt:    the whole test suite, whose backend-parametrised tests then run on CuPy and on
#                  JAX's default device (the GPU, when JAX has its CUDA plugin);
# 4. bench.txt and <machine>-<date>.md: the harness at W1, W2 and W3 for bpgpu-cupy, bpgpu-jax, PyTorch CUDA and a
#                  cuBLAS GEMM floor (benchmarks/run.py, medians of 3).
#
# Without a GPU it says so and runs the CPU part: versions, check, tests, and the CPU harness at W1.
# Run it with bpgpu and its test extras importable by $PYTHON (default python3): an installed clone
# (PYTHON=.venv/bin/python after make test), or PYTHONPATH=$PWD with the packages installed.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-benchmarks/results/local/gpu-$(date +%F)}
mkdir -p "$out"
py=${PYTHON:-python3}
status=0

step() {  # step NAME SECONDS COMMAND...: run it with a time limit, its output to $out/NAME
    local name=$1 limit=$2
    shift 2
    echo "== $name: $*"
    timeout "$limit" "$@" >"$out/$name" 2>&1
    local rc=$?
    tail -n 3 "$out/$name"
    [ "$rc" -eq 0 ] || { echo "!! $name ended with exit code $rc (log: $out/$name)"; status=1; }
}

{
    date -u +"%F %T UTC"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi: none"
    nvidia-smi 2>/dev/null | grep -o "CUDA Version: [0-9.]*" || true
    "$py" - <<'EOF'
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
    import jax
    print("jax devices", jax.devices())
except Exception as exc:
    print("jax devices: none:", type(exc).__name__)
try:
    import torch
    print("torch CUDA", torch.version.cuda, "available", torch.cuda.is_available())
except Exception as exc:
    print("torch: none:", type(exc).__name__)
EOF
} >"$out/versions.txt" 2>&1
cat "$out/versions.txt"

if "$py" -c "import bpgpu, sys; sys.exit(0 if 'cupy' in bpgpu.available_backends() else 1)" 2>/dev/null; then
    gpu=1
    echo "== a CUDA GPU works: running the GPU checks"
else
    gpu=0
    echo "== no CUDA GPU works here (no device, driver or CuPy): running the CPU part only"
fi

step check.txt 60 "$py" -m bpgpu check
step tests.txt 180 "$py" -m pytest -q -x -p no:cacheprovider
if [ "$gpu" -eq 1 ]; then
    step bench.txt 210 "$py" -m benchmarks.run --workloads W1 W2 W3 --threads 4 --repeats 3 \
        --impls bpgpu-cupy bpgpu-jax torch-cuda cupy-gemm-floor --out "$out"
else
    step bench.txt 180 "$py" -m benchmarks.run --workloads W1 --repeats 1 \
        --impls bpgpu-numpy bpgpu-jax torch gemm-floor --out "$out"
fi
echo "== logs and tables in $out"
exit "$status"
