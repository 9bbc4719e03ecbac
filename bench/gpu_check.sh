#!/usr/bin/env bash
# The GPU checks as one run on a CUDA machine, each step logged to $OUT/<step>.log:
#   1. the gpu-marked tests (NF4 captioning, the backend on CUDA, QLoRA stop + resume);
#   2. random weights at the real sizes, written in the download layouts (bench/fullsize.py);
#   3. the resident engine: load, memory, stages, a 3-minute file end to end (bench/neural.py);
#   4. QLoRA on Mistral-7B NF4 + the projector, stopped and resumed (bench/train.py).
# A failing step is reported and the next one still runs. Nothing is downloaded.
#   bench/gpu_check.sh                          (CUDA, real sizes)
#   DEVICE=cpu SIZE=small bench/gpu_check.sh    (the same steps, small, to check the script)
# Packages missing on the machine may be unpacked into .whl/site, put first on PYTHONPATH
# (SITE=... names another folder).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
DEVICE=${DEVICE:-cuda}
SIZE=${SIZE:-7b}
py=${PYTHON:-python3}
site=${SITE:-$PWD/.whl/site}
export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

# RAM-backed scratch when it has room for the weights and a training checkpoint
scratch=/tmp
if [[ -d /dev/shm ]] && (($(df -Pk /dev/shm | awk 'NR==2 {print $4}') > 60 * 1024 * 1024)); then
  scratch=/dev/shm
fi
[[ $SIZE == small ]] && scratch=/tmp
weights=$scratch/sonicverse-weights-$SIZE
export TMPDIR=$scratch

summary=$OUT/summary.txt
step() {
  local name=$1 limit=$2
  shift 2
  local start=$SECONDS
  echo "== $name: $*" | tee -a "$summary"
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  grep -v -i -E "warn|it/s\]|^\s*$" "$OUT/$name.log" | tail -n 40
  echo "== $name: exit $rc after $((SECONDS - start)) s" | tee -a "$summary"
}

{
  date -u +"%Y-%m-%dT%H:%M:%SZ"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
  echo "scratch: $scratch ($(df -Ph "$scratch" | awk 'NR==2 {print $4}') free)"
  nproc
  "$py" - <<'EOF'
import importlib, platform
print("python", platform.python_version())
for m in ("torch", "transformers", "peft", "accelerate", "bitsandbytes", "safetensors"):
    try:
        print(m, importlib.import_module(m).__version__)
    except Exception as exc:  # noqa: BLE001
        print(m, "unavailable:", exc)
import torch
print("cuda", torch.version.cuda, torch.cuda.is_available())
EOF
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

step tests 100 "$py" -m pytest -q -m gpu -p no:cacheprovider \
  tests/engine/test_sonicverse_backend.py tests/engine/test_train.py
step weights 150 "$py" bench/fullsize.py "$weights" --size "$SIZE" --device "$DEVICE"
if (($(ls "$weights"/*/.complete 2>/dev/null | wc -l) < 3)); then
  echo "== the weights are incomplete: neural and train skipped" | tee -a "$summary"
  cat "$summary"
  exit 1
fi
step neural 170 "$py" bench/neural.py --device "$DEVICE" --size "$SIZE" --weights "$weights" \
  --repeat 2
step train 170 "$py" bench/train.py --device "$DEVICE" --size "$SIZE" --weights "$weights" \
  --steps 6 --resume-steps 2 --batch 8
cat "$summary"
