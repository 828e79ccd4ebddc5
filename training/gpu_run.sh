#!/usr/bin/env bash
# The teacher's training on a GPU machine with no network, from the kit `python -m training.gpu_kit`
# wrote (photos and the weight packages; README, "Training on a GPU with no network"). Run from the
# checkout's root, the kit's folder beside it:
#
#   bash training/gpu_run.sh                   # 4 + 2 minutes, 224² crops, batch 32, bf16, compiled
#   PRE_MIN=20 GAN_MIN=8 LIMIT_S=0 bash training/gpu_run.sh
#   bash training/gpu_run.sh --resume          # continue a run stopped by LIMIT_S (same settings)
#   FULLRES=1 bash training/gpu_run.sh        # then also: python -m benchmarks.fullres --device cuda
#
# Extra arguments go to `edge-colorizer train` (e.g. --full-frame 0.5). What comes back is in $OUT (a
# lease's output folder; default $RUN/out): model.pt (the generator's weights best on validation, in
# fp16), log.csv, val.csv, run.log, env.txt and the newest sample grid. Training is stopped after
# LIMIT_S seconds (default 540, under a 10-minute command limit) so that the logs are always copied.
# Release and evaluate the weights on the full-size photos where the pools are:
#   python -m training.release OUT/model.pt --val data/val --out teacher.pt
#   edge-colorizer evaluate --data data/eval --model teacher.pt --model teacher --max-side 512
set -euo pipefail

KIT=${KIT:-.gpukit}
RUN=${RUN:-runs/gpu-teacher}
OUT=${OUT:-$RUN/out}
DEVICE=${DEVICE:-cuda}
PRE_MIN=${PRE_MIN:-4}
GAN_MIN=${GAN_MIN:-2}
LIMIT_S=${LIMIT_S:-540}
SIZE=${SIZE:-224}
BATCH=${BATCH:-32}
WORKERS=${WORKERS:-6}
VAL_EVERY=${VAL_EVERY:-100}
PATIENCE=${PATIENCE:-6}
ENCODER=${ENCODER:-efficientnet_lite0}
COMPILE=${COMPILE:-1}
PYTHON=${PYTHON:-python3}

[ -f "$KIT/MANIFEST.json" ] || { echo "$KIT: no kit here (python -m training.gpu_kit --out $KIT)" >&2; exit 2; }
mkdir -p "$OUT" "$RUN"
KIT=$(cd "$KIT" && pwd)
export PYTHONPATH="$PWD:$KIT/site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 ENCODER DEVICE COMPILE
# a fresh run (unless --resume is among the extra arguments): no weights, sample grid or state of an earlier
# run in this folder may be handed back as this one's (train refuses to start over an unfinished state)
rm -f "$RUN/model.pt" "$RUN"/samples_*.png
case " $* " in *" --resume "*) ;; *) rm -f "$RUN"/state_*.pt ;; esac

# the machine, the weight files the run reads, and whether torch.compile works here (else run eager)
"$PYTHON" - >"$OUT/env.txt" 2>&1 <<'PY' || true
import os, platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
print("gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none", "cpus", os.cpu_count())
from edge_colorizer.metrics.lpips import lpips_weight_file
from edge_colorizer.models.encoders import efficientnet_lite_weights
variant = int(os.environ["ENCODER"].removeprefix("efficientnet_lite")) if "lite" in os.environ["ENCODER"] else None
print("weights", efficientnet_lite_weights(variant) if variant is not None else "-", lpips_weight_file("alex"))
if os.environ["COMPILE"] == "1":
    device = "cuda" if os.environ["DEVICE"] != "cpu" and torch.cuda.is_available() else "cpu"
    f = torch.compile(lambda x: torch.relu(x) * 2)
    print("compile", "ok" if f(torch.ones(8, device=device)).sum().item() == 16 else "wrong")
PY
cat "$OUT/env.txt"
flags=()
if [ "$COMPILE" = 1 ]; then
    if grep -q "^compile ok" "$OUT/env.txt"; then flags+=(--compile); else echo "torch.compile failed here: training eagerly"; fi
fi
timeout_cmd=()
[ "$LIMIT_S" != 0 ] && timeout_cmd=(timeout --signal=TERM --kill-after=20 "$LIMIT_S")

# --steps/--gan-steps are only ceilings: each stage sizes itself to its minutes after its first steps
set +e
${timeout_cmd[@]+"${timeout_cmd[@]}"} "$PYTHON" -m edge_colorizer.cli train --recipe gan-teacher --encoder "$ENCODER" \
    --data "$KIT/data/train" --val "$KIT/data/val" --val-every "$VAL_EVERY" --patience "$PATIENCE" \
    --size "$SIZE" --batch-size "$BATCH" --workers "$WORKERS" --device "$DEVICE" \
    --steps 1000000 --minutes "$PRE_MIN" --gan-steps 1000000 --gan-minutes "$GAN_MIN" \
    --out "$RUN" ${flags[@]+"${flags[@]}"} "$@" 2>&1 | tee "$OUT/run.log"
status=${PIPESTATUS[0]}
set +o pipefail
if [ "$status" = 124 ]; then echo "training stopped after LIMIT_S=$LIMIT_S s; its state is in $RUN (--resume continues it)"; fi
for f in log.csv val.csv; do
    if [ -f "$RUN/$f" ]; then cp "$RUN/$f" "$OUT/"; fi
done
# the weights in fp16, the precision the release ships (half the bytes to carry back)
if [ -f "$RUN/model.pt" ]; then
    "$PYTHON" -c 'import sys; from edge_colorizer.checkpoint import load_checkpoint, atomic_torch_save as save
c = load_checkpoint(sys.argv[1]); c["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in c["state_dict"].items()}
save(c, sys.argv[2])' "$RUN/model.pt" "$OUT/model.pt" || status=1
fi
last=$(ls -t "$RUN"/samples_*.png 2>/dev/null | head -n 1 || true)
if [ -n "$last" ]; then cp "$last" "$OUT/"; fi
# the same lease's GPU timings of the bundled models (README, "The GPU path"), when asked for
if [ "${FULLRES:-0}" = 1 ]; then
    "$PYTHON" -m benchmarks.fullres --device "$DEVICE" --models student,teacher,gray 2>&1 | tee "$OUT/fullres.txt" || true
fi
exit "$status"
