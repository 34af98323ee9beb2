#!/usr/bin/env bash
# The anti-drift ablation's runs (tools/drift_ablation.sh) scored on the sim-detector FVD drift curve (issue 14):
# `worldgen eval drivingworld` on each run, 400-frame rollouts with the model's own ego motion from EPISODES held-out
# contexts (scenarios in turn), FVD per 40-frame window against real held-out clips. Teacher forcing is cut to one
# episode and controllability is skipped (only the rollout windows are wanted).
#   usage: tools/drift_ablation_fvd.sh [RUNS=runs/ablate] [OUT=runs/ablate-fvd] [EPISODES=10]   (resumes: done runs skipped)
# then: python tools/drift_ablation_summary.py RUNS --fvd OUT ...
set -euo pipefail
RUNS=${RUNS:-runs/ablate}
OUT=${OUT:-runs/ablate-fvd}
EPISODES=${EPISODES:-10}
WG=${WG:-.venv/bin/worldgen}
mkdir -p "$OUT"
for run in "$RUNS"/*-s*/; do
  name=$(basename "$run")
  [ -f "$run/model.safetensors" ] || { echo "skip $name (not trained)"; continue; }
  [ -f "$OUT/$name.json" ] && { echo "skip $name (done)"; continue; }
  seed=${name##*-s}
  $WG eval drivingworld --ckpt "$run" --tokenizer checkpoints/tokenizer-tiny --data data/driving-v2-heldout \
    --tokens data/tokens-v2-heldout --episodes "$EPISODES" --tf-episodes 1 --tf-stride 8 --control-contexts 0 \
    --seed "$seed" --out "$OUT/$name.json" > "$OUT/$name.log" 2>&1
  echo "$(date +%T) done $name"
done
