#!/usr/bin/env bash
# GPU acceptance check, one call on one CUDA machine (sized for an H200: ~6-7 min, hard cap
# GPU_CHECK_BUDGET_S = 470 s for the parts, so the whole call stays under 8 minutes):
#   a  pytest -m gpu tests/gpu: CUDA step (fp32, bf16) vs CPU step, k-NN GPU == CPU, checkpoint GPU -> GPU / CPU
#   b  smoke sweep end to end on the GPU (scaling.use_gpu=True, eval.num_gpus=0.5): trials finished,
#      results.parquet + report.md written, every Train worker of every trial on cuda (its start line);
#      then one evaluation Ray task with eval.num_gpus=0.5 on a trial's last checkpoint
#   c  bench step, ViT-S/16 bf16, 2x224 + 10x96 crops (the paper's AttMask setting), eager and
#      --compile: s/step, img/s, peak memory, GFLOP/img, MFU (PEAK_TFLOPS, default 989), phase split
#   d  bench data on the device path (GPU crops + augmentation), 8 pinned decode threads
# Usage: bash scripts/gpu_check.sh OUT_DIR [PYTHON]
#   PYTHON (absolute, or relative to the repository root) defaults to .venv/bin/python when it
#   exists, else python3. Everything prints to stdout and is teed into OUT_DIR (preflight and one
#   log per part, summary.txt, the sweep's results.parquet and report.md: 8 files).
#   Each part's exit status is recorded and the script carries on after a failure; a part whose
#   packages are missing (ray/optuna for b, ffcv for b and d) is SKIP, not FAIL. Exit status: the
#   number of parts that failed (0 = all passed or skipped).
# Env: DATA_ROOT (Fashion-MNIST 2k shards, default data/fashion_mnist_2k; built when missing and the
#   IDX files exist: FMNIST_IDX_DIR, default /usr/share/datasets/fashion-mnist), PEAK_TFLOPS,
#   GPU_CHECK_BUDGET_S, GPU_CHECK_PARTS (default "a b c d"), STEP_BATCH (default 128).
set -u -o pipefail
out=${1:?usage: bash scripts/gpu_check.sh OUT_DIR [PYTHON]}
mkdir -p "$out" && out=$(cd "$out" && pwd) || exit 2  # OUT_DIR relative to the caller's directory
cd "$(dirname "$0")/.." || exit 2
py=${2:-}
if [ -z "$py" ]; then
    if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
fi
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
peak=${PEAK_TFLOPS:-989}  # dense bf16 peak of an H100/H200 SXM (spec sheet)
data=${DATA_ROOT:-data/fashion_mnist_2k}
case "$data" in /*) ;; *) data="$PWD/$data" ;; esac
parts=${GPU_CHECK_PARTS:-a b c d}
step_batch=${STEP_BATCH:-128}
t_start=$(date +%s)
deadline=$((t_start + ${GPU_CHECK_BUDGET_S:-470}))
work=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
summary="$out/summary.txt"
: >"$summary"
failed=0

log() { echo "[gpu_check $(date +%H:%M:%S) +$(($(date +%s) - t_start))s] $*"; }

# seconds a step may run: its cap, but never past the deadline minus RESERVE, the least time the
# later steps are promised (their caps are larger; a typical run leaves every step its cap)
budget() {  # budget CAP RESERVE
    local left=$((deadline - $(date +%s) - $2))
    if [ "$left" -lt "$1" ]; then echo $((left > 10 ? left : 10)); else echo "$1"; fi
}

record() {  # record PART STATUS SECONDS NOTE
    printf '%-46s %-14s %5ss  %s\n' "$1" "$2" "$3" "$4" | tee -a "$summary"
}

# run_part NAME LOGFILE CAP RESERVE CMD...: runs CMD under timeout, tees into LOGFILE, returns its status
run_part() {
    local name=$1 logf=$2 cap=$3 reserve=$4
    shift 4
    local t0 rc limit
    limit=$(budget "$cap" "$reserve")
    log "$name: limit ${limit}s: $*" | tee -a "$logf"
    t0=$(date +%s)
    timeout -k 15 "$limit" "$@" 2>&1 | tee -a "$logf"
    rc=${PIPESTATUS[0]}
    [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && log "$name: TIMED OUT after ${limit}s" | tee -a "$logf"
    log "$name: exit $rc after $(($(date +%s) - t0))s" | tee -a "$logf"
    return "$rc"
}

has() { ! grep -qx "$1" "$work/missing"; }  # from the preflight's imports
wants() { case " $parts " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# ---------------------------------------------------------------- preflight
log "preflight: $py in $PWD, OUT_DIR $out" | tee "$out/preflight.log"
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || echo "nvidia-smi failed"
    "$py" - "$work/missing" <<'EOF'
import importlib, os, sys
import torch
print(f"python {sys.version.split()[0]}  torch {torch.__version__}  cuda available {torch.cuda.is_available()}  "
      f"devices {torch.cuda.device_count()}  cpus {os.cpu_count()}")
if torch.cuda.is_available():
    print("device 0:", torch.cuda.get_device_name(0), f"{torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB")
missing = []
for name in ("timm", "pytest", "ray", "optuna", "ffcv", "numba", "cv2", "pyarrow", "pandas", "rich", "matplotlib"):
    try:
        mod = importlib.import_module(name)
        print(f"  {name:10s} {getattr(mod, '__version__', '')}")
    except Exception as exc:  # noqa: BLE001
        missing.append(name)
        print(f"  {name:10s} MISSING ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
open(sys.argv[1], "w").write("".join(m + "\n" for m in missing))
EOF
} 2>&1 | tee -a "$out/preflight.log"
[ -f "$work/missing" ] || printf '%s\n' torch timm pytest ray optuna ffcv >"$work/missing"
if ! "$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    log "no CUDA device visible to $py: every part below would skip or fail" | tee -a "$out/preflight.log"
fi
printf '%-46s %-14s %6s  %s\n' part status time note | tee -a "$summary"

# ---------------------------------------------------------------- a: GPU tests
if wants a; then
    t0=$(date +%s)
    run_part "a pytest -m gpu" "$out/a_pytest_gpu.log" 90 330 \
        "$py" -m pytest -m gpu tests/gpu -q -rsx -p no:cacheprovider
    rc=$?
    note=$(grep -E "^(=+ )?[0-9]+ (passed|failed)|(passed|failed|skipped|error).* in [0-9.]+s" "$out/a_pytest_gpu.log" | tail -1)
    if [ "$rc" -eq 0 ] && grep -qE "[0-9]+ skipped" "$out/a_pytest_gpu.log"; then
        record "a pytest -m gpu tests/gpu" "FAIL(skipped)" $(($(date +%s) - t0)) "tests skipped: no CUDA? $note"
        failed=$((failed + 1))
    elif [ "$rc" -eq 0 ]; then
        record "a pytest -m gpu tests/gpu" PASS $(($(date +%s) - t0)) "$note"
    else
        record "a pytest -m gpu tests/gpu" "FAIL(rc=$rc)" $(($(date +%s) - t0)) "$note"
        failed=$((failed + 1))
    fi
fi

# ---------------------------------------------------------------- b: smoke sweep on the GPU
if wants b; then
    t0=$(date +%s)
    blog="$out/b_smoke_sweep.log"
    : >"$blog"
    missing=""
    for m in ray optuna ffcv; do has "$m" || missing="$missing $m"; done
    if [ ! -d "$data/train" ] && [ -z "$missing" ]; then
        run_part "b data" "$blog" 60 330 "$py" -m data_prep.fashion_mnist "$data" --train-subset 2000 \
            --idx-dir "${FMNIST_IDX_DIR:-/usr/share/datasets/fashion-mnist}"
    fi
    if [ -n "$missing" ]; then
        record "b smoke sweep (use_gpu, eval.num_gpus)" SKIP 0 "missing python packages:$missing"
    elif [ ! -d "$data/train" ]; then
        record "b smoke sweep (use_gpu, eval.num_gpus)" "FAIL(no data)" $(($(date +%s) - t0)) \
            "no $data/train: carry the shards or set FMNIST_IDX_DIR"
        failed=$((failed + 1))
    else
        store="$work/ray_results"
        run_part "b smoke sweep" "$blog" 190 210 \
            "$py" -m attmask_ray.sweep "sweeps/smoke.py:scaling.use_gpu=True,eval.num_gpus=0.5,data.train_path=$data/train,data.val_path=$data/test" \
            --storage "$store" --name smoke_gpu --no-dashboard --ray-logs
        rc=$?
        # trials finished, results + report written, each worker on cuda; prints one NOTE line
        "$py" - "$store/smoke_gpu" "$blog" "$out" <<'EOF' 2>&1 | tee -a "$blog"
import math, re, shutil, sys
from pathlib import Path
import pandas as pd
exp, log, out = Path(sys.argv[1]), Path(sys.argv[2]).read_text(errors="replace"), Path(sys.argv[3])
problems = []
results = exp / "results.parquet"
df = pd.read_parquet(results) if results.exists() else pd.DataFrame()
if df.empty:
    problems.append(f"no rows in {results}")
    trials = []
else:
    shutil.copy(results, out / "smoke_results.parquet")
    df = df[df["source"].isin(["online", "train", "final_eval"])]  # trial rows (not floors)
    trials = sorted(df["trial_id"].dropna().unique())
    if len(trials) != 2:
        problems.append(f"{len(trials)} trials in results.parquet, expected 2")
    bad = df[df["status"].notna() & (df["status"] != "ok")] if "status" in df else df.iloc[:0]
    if len(bad):
        problems.append("trial status not ok: " + ", ".join(sorted(set(bad["status"].astype(str)))))
    online = df[df["source"] == "online"]
    for tid in trials:
        rows = online[online["trial_id"] == tid]
        last = rows.sort_values("epoch").iloc[-1] if len(rows) else None
        if last is None or last["epoch"] < 2 - 1e-6 or not math.isfinite(last["knn_top1"]):
            problems.append(f"trial {tid} did not reach epoch 2 with a k-NN (rows: {len(rows)})")
        else:
            print(f"trial {tid}: epoch {last['epoch']:.0f} knn_top1 {last['knn_top1']:.2f}")
report = re.findall(r"report: (\S+report\.md)", log)
report = Path(report[-1]) if report else exp / "report" / "report.md"
if report.exists():
    shutil.copy(report, out / "smoke_report.md")
else:
    problems.append(f"no report at {report}")
pattern = r"\[attmask_ray\] (\S+) rank (\d+)/(\d+): training on (\S+) \(([^)]*)\)"
workers = re.findall(pattern, log)
if not workers:  # worker output not forwarded to the driver: read the Ray session's worker logs
    import os
    logs = Path(os.environ.get("RAY_TMPDIR", "/tmp")) / "ray" / "session_latest" / "logs"
    for f in sorted(logs.glob("worker-*.out")):
        workers += re.findall(pattern, f.read_text(errors="replace"))
    print(f"worker lines from {logs}: {len(workers)}")
on_gpu = {(t, r) for t, r, _w, dev, _n in workers if dev.startswith("cuda")}
off_gpu = {(t, r, dev) for t, r, _w, dev, _n in workers if not dev.startswith("cuda")}
names = sorted({n for *_x, dev, n in workers if dev.startswith("cuda")})
print(f"Train workers on cuda: {len(on_gpu)} ({', '.join(names)}); on cpu: {len(off_gpu)}")
if off_gpu:
    problems.append(f"workers not on cuda: {sorted(off_gpu)}")
if len({t for t, _r in on_gpu}) < max(len(trials), 1):
    problems.append(f"{len({t for t, _r in on_gpu})} trials with a worker line on cuda, expected {max(len(trials), 1)}")
print("NOTE " + ("; ".join(problems) if problems else f"{len(trials)} trials finished on cuda, results + report ok"))
sys.exit(1 if problems else 0)
EOF
        chk=${PIPESTATUS[0]}
        note=$(grep "^NOTE " "$blog" | tail -1 | cut -c6-)
        if [ "$rc" -eq 0 ] && [ "$chk" -eq 0 ]; then
            record "b smoke sweep (use_gpu, eval.num_gpus)" PASS $(($(date +%s) - t0)) "$note"
        else
            record "b smoke sweep (use_gpu, eval.num_gpus)" "FAIL(rc=$rc/$chk)" $(($(date +%s) - t0)) "$note"
            failed=$((failed + 1))
        fi
        # the sweep runs no evaluation task (smoke has none), so eval.num_gpus is exercised here
        t1=$(date +%s)
        ckpt=$(find "$store/smoke_gpu" -name state.pt -path "*checkpoint_*" 2>/dev/null | sort | tail -1)
        if [ -n "$ckpt" ]; then
            run_part "b2 evaluate (eval.num_gpus=0.5)" "$blog" 60 170 \
                "$py" -m attmask_ray.evaluate "$(dirname "$ckpt")" --tasks knn --set eval.num_gpus=0.5
            rc=$?
            if [ "$rc" -eq 0 ]; then
                record "b2 evaluate knn task, eval.num_gpus=0.5" PASS $(($(date +%s) - t1)) "$(dirname "$ckpt" | xargs basename)"
            else
                record "b2 evaluate knn task, eval.num_gpus=0.5" "FAIL(rc=$rc)" $(($(date +%s) - t1)) ""
                failed=$((failed + 1))
            fi
        else
            record "b2 evaluate knn task, eval.num_gpus=0.5" "FAIL(no ckpt)" 0 "no checkpoint under $store/smoke_gpu"
            failed=$((failed + 1))
        fi
    fi
    nvidia-smi --query-compute-apps=pid,used_memory --format=csv 2>/dev/null | tee -a "$blog"  # nothing left behind?
fi

# ---------------------------------------------------------------- c: training step, ViT-S/16 bf16, 2x224 + 10x96
if wants c; then
    clog="$out/c_bench_step.log"
    : >"$clog"
    step_args=(--arch vit_small_patch16_224 --batch "$step_batch" --n-local 10 --global-size 224 --local-size 96
               --dtype bf16 --device cuda --peak-tflops "$peak" --warmup 3 --steps 10)
    for mode in eager compile; do
        t0=$(date +%s)
        extra=()
        cap=50 reserve=130
        if [ "$mode" = compile ]; then extra=(--compile); cap=130 reserve=40; fi
        run_part "c bench step ($mode)" "$clog" "$cap" "$reserve" "$py" -m attmask_ray.bench step "${step_args[@]}" "${extra[@]}"
        rc=$?
        note=$(grep -E "^\[attmask_high\]" "$clog" | tail -1)
        if [ "$rc" -eq 0 ]; then
            record "c bench step ViT-S/16 bf16 2x224+10x96 $mode" PASS $(($(date +%s) - t0)) "$note"
        else
            record "c bench step ViT-S/16 bf16 2x224+10x96 $mode" "FAIL(rc=$rc)" $(($(date +%s) - t0)) "$note"
            failed=$((failed + 1))
        fi
    done
fi

# ---------------------------------------------------------------- d: loader on the device path
if wants d; then
    t0=$(date +%s)
    dlog="$out/d_bench_data.log"
    : >"$dlog"
    if ! has ffcv; then
        record "d bench data (device path)" SKIP 0 "missing python package: ffcv"
    else
        cores=$(nproc)
        w=$((cores >= 8 ? 8 : cores))
        pin=()
        command -v taskset >/dev/null && pin=(taskset -c "0-$((w - 1))")
        run_part "d bench data" "$dlog" 60 0 "${pin[@]}" "$py" -m attmask_ray.bench data \
            --images 900 --workers "$w" --batch 128 --epochs 2 --device cuda --skip host,per-crop,torchvision
        rc=$?
        note=$(grep -E "roi_align crops \+ batched tensor aug on cuda" "$dlog" | tail -1 | tr -s ' │|' ' ' | cut -c1-110)
        if [ "$rc" -eq 0 ]; then
            record "d bench data (device path, $w threads)" PASS $(($(date +%s) - t0)) "$note"
        else
            record "d bench data (device path, $w threads)" "FAIL(rc=$rc)" $(($(date +%s) - t0)) "$note"
            failed=$((failed + 1))
        fi
    fi
fi

rm -rf "$work"
total=$(($(date +%s) - t_start))
log "done in ${total}s (budget ${GPU_CHECK_BUDGET_S:-470}s); $failed part(s) failed" >>"$summary"
echo "---- summary ($summary)"
cat "$summary"
exit "$failed"
