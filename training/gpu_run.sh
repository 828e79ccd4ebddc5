#!/usr/bin/env bash
# The teacher's training on a GPU machine with no network, from the kit `python -m training.gpu_kit`
# wrote (photos and the weight packages; README, "Training on a GPU"). Run from the checkout's root:
#
#   bash training/gpu_run.sh                   # 5 + 2 minutes, 224² crops, batch 32, bf16, compiled
#   PRE_MIN=20 GAN_MIN=8 bash training/gpu_run.sh
#   FULLRES=1 bash training/gpu_run.sh        # then also: python -m benchmarks.fullres --device cuda
#
# What comes back is in $OUT (a lease's output folder; default $RUN/out): model.pt (the generator's
# weights best on validation, in fp16), log.csv, val.csv, run.log, env.txt and the last sample grid. Release and
# evaluate it on the full-size photos where the pools are:
#   python -m training.release OUT/model.pt --val data/val --out teacher.pt
#   edge-colorizer evaluate --data data/eval --model teacher.pt --model teacher
set -euo pipefail

KIT=${KIT:-.gpukit}
RUN=${RUN:-runs/gpu-teacher}
OUT=${OUT:-$RUN/out}
DEVICE=${DEVICE:-cuda}
PRE_MIN=${PRE_MIN:-5}
GAN_MIN=${GAN_MIN:-2}
SIZE=${SIZE:-224}
BATCH=${BATCH:-32}
WORKERS=${WORKERS:-6}
VAL_EVERY=${VAL_EVERY:-100}
PATIENCE=${PATIENCE:-6}
ENCODER=${ENCODER:-efficientnet_lite0}
COMPILE=${COMPILE:-1}
PYTHON=${PYTHON:-python3}

[ -d "$KIT/data/train" ] || { echo "$KIT/data/train: no kit here (python -m training.gpu_kit --out $KIT)" >&2; exit 2; }
mkdir -p "$OUT" "$RUN"
KIT=$(cd "$KIT" && pwd)
export PYTHONPATH="$PWD:$KIT/site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

{
    date -u +%FT%TZ
    "$PYTHON" - <<'EOF'
import platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
print("gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
from edge_colorizer.metrics.lpips import lpips_weight_file
from edge_colorizer.models.encoders import efficientnet_lite_weights
print("weights", efficientnet_lite_weights(0), lpips_weight_file("alex"))
EOF
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
    nproc
} 2>&1 | tee "$OUT/env.txt"

flags=()
[ "$COMPILE" = 1 ] && flags+=(--compile)
# --steps/--gan-steps are only ceilings: each stage sizes itself to its minutes after its first steps
set +e
"$PYTHON" -m edge_colorizer.cli train --recipe gan-teacher --encoder "$ENCODER" \
    --data "$KIT/data/train" --val "$KIT/data/val" --val-every "$VAL_EVERY" --patience "$PATIENCE" \
    --size "$SIZE" --batch-size "$BATCH" --workers "$WORKERS" --device "$DEVICE" \
    --steps 1000000 --minutes "$PRE_MIN" --gan-steps 1000000 --gan-minutes "$GAN_MIN" \
    --out "$RUN" "${flags[@]}" "$@" 2>&1 | tee "$OUT/run.log"
status=${PIPESTATUS[0]}
set -e
for f in log.csv val.csv; do
    [ -f "$RUN/$f" ] && cp "$RUN/$f" "$OUT/"
done
# the weights in fp16, the precision the release ships (half the bytes to carry back)
if [ -f "$RUN/model.pt" ]; then
    "$PYTHON" -c 'import sys; from edge_colorizer.checkpoint import load_checkpoint, atomic_torch_save as save
c = load_checkpoint(sys.argv[1]); c["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in c["state_dict"].items()}
save(c, sys.argv[2])' "$RUN/model.pt" "$OUT/model.pt"
fi
last=$(ls -t "$RUN"/samples_*.png 2>/dev/null | head -n 1)
[ -n "$last" ] && cp "$last" "$OUT/"
# the same lease's GPU timings of the bundled models (README, "The GPU path"), when asked for
if [ "${FULLRES:-0}" = 1 ]; then
    "$PYTHON" -m benchmarks.fullres --device "$DEVICE" --models student,teacher,gray 2>&1 | tee "$OUT/fullres.txt" || true
fi
exit "$status"
