#!/usr/bin/env bash
# The CUDA checks of issue 5, for a session with a lent GPU machine (no internet there).
#
#   benchmarks/gpu_check.sh fetch   # HERE, where pip reaches an index: wheels into .whl/
#   benchmarks/gpu_check.sh         # THERE, in the repo root (device run, carry [".whl"])
#
# On the GPU machine it (1) sets up Python: the machine's own python3 when its torch sees
# CUDA (a CUDA build; torch 2.13.0 cannot be fetched there), the project and the
# carried wheels installed into a --target folder; otherwise scripts/setup with
# MGNM_TORCH (needs an index); (2) runs the CUDA tests (-m cuda, and the CPU/CUDA score
# test of test_model.py); (3) times training and evaluation on the musical-instruments-
# scale synthetic log (and toys if datasets/toys exists) with --device cuda: fp32, --amp,
# --compile. Reports go to $OUT (default benchmarks/gpu_out). About 5 minutes, at
# most about 10 (each step has a timeout).
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "fetch" ]; then
    # polars is the one dependency missing from the GPU image (KINDS.md lists the rest)
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
    exec python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .whl polars==2.1.0 polars-runtime-32==2.1.0
fi

OUT=${OUT:-benchmarks/gpu_out}
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
export PYTHONUNBUFFERED=1
exec > >(tee "$LOG") 2>&1

# ---- 1. Python with a CUDA torch
if python3 -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
    PY=python3
    SITE=/tmp/mgnm-site
    if [ -d .whl ]; then
        $PY -m pip install -q --no-index --no-deps --no-compile --target "$SITE" .whl/*.whl
    fi
    $PY -m pip install -q --no-index --no-deps --no-build-isolation --target "$SITE" . \
        || { echo "installing the project failed"; exit 1; }
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
else
    MGNM_TORCH=${MGNM_TORCH:-torch==2.13.0} scripts/setup || exit 1
    PY=.venv/bin/python
fi
$PY -c "import polars" 2>/dev/null || {
    echo "polars is missing: run 'benchmarks/gpu_check.sh fetch' here first and carry .whl"
    exit 1; }
$PY - <<'EOF'
import torch, torch_geometric
print(f"torch {torch.__version__}, torch_geometric {torch_geometric.__version__}, "
      f"{torch.cuda.get_device_name(0)}, CUDA {torch.version.cuda}")
EOF
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

# ---- 2. CUDA tests (compile on a GPU takes a minute or two). -P: the working tree's
# mgnm_pyg/ (which lacks mgnm_pyg.cli, mapped from cli/) must not shadow the installed one.
timeout 200 $PY -P -m pytest -q -p no:cacheprovider -m cuda tests --durations=5
echo "cuda tests exit status: $?"
timeout 60 $PY -P -m pytest -q -p no:cacheprovider \
    tests/test_model.py::test_cpu_and_cuda_give_the_same_scores
echo "cpu/cuda score test exit status: $?"

# ---- 3. Table 4 on the GPU
DATASETS="synthetic:musical-instruments"
[ -d datasets/toys ] && DATASETS="toys $DATASETS"
: > "$OUT/bench.md"
for variant in fp32 amp compile; do
    flags=(); [ "$variant" != fp32 ] && flags=(--"$variant" --conv dense)
    limit=100; [ "$variant" = compile ] && limit=150
    timeout $limit $PY benchmarks/runtime.py --datasets "$DATASETS" --device cuda --iters 20 \
        --warmup 20 --eval-records 5000 "${flags[@]}" --out "$OUT/bench_$variant.json" \
        --markdown "$OUT/bench_$variant.md"
    echo "bench $variant exit status: $?"
    { echo "## $variant"; cat "$OUT/bench_$variant.md" 2>/dev/null; } >> "$OUT/bench.md"
    rm -f "$OUT/bench_$variant.md"
done
