#!/usr/bin/env bash
# GPU benchmark set behind docs/benchmarks.md: training step (ViT-S/16, bf16, batch 128) and the
# multi-crop loader with its cores pinned (2 and 8), GPU doing crops + augmentation.
# Usage: bash scripts/bench_gpu.sh [OUT_DIR] [PYTHON]   (needs one CUDA GPU and >= 8 cores)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench_gpu_out}
py=${2:-.venv/bin/python}
peak=${PEAK_TFLOPS:-989}  # dense bf16 peak of an H100/H200 SXM; set PEAK_TFLOPS for other GPUs
mkdir -p "$out"
export PYTHONUNBUFFERED=1
"$py" -m attmask_ray.bench step --arch vit_small_patch16_224 --batch 128 --dtype bf16 --device cuda \
    --peak-tflops "$peak" --warmup 3 --steps 10 2>&1 | tee "$out/step.log"
for cores in 2 8; do
    taskset -c "0-$((cores - 1))" "$py" -m attmask_ray.bench data --images 1800 --workers "$cores" --batch 128 \
        --epochs 2 --device cuda --skip per-crop 2>&1 | tee "$out/data_${cores}cores.log"
done
