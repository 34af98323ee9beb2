#!/usr/bin/env bash
# D4RL-recipe datasets for one MuJoCo task: one behaviour SAC run (resumable), then the five kinds from it.
#   ENV=Hopper-v5 TRAIN_STEPS=200000 STEPS=1000000 OUT=data/d4rl-hopper tools/offline_rl_sets.sh
# A killed run continues where its last resume state was (rerun the same line); finished kinds are skipped.
# Writes OUT/{random,medium,medium-replay,expert,medium-expert}.hdf5, OUT/expert-policy, OUT/<kind>.json and the
# folder's card (OUT/card.json, OUT/CARD.md, OUT/card.png: worldgen data rl-card).
set -euo pipefail
: "${ENV:?set ENV, e.g. Hopper-v5}" "${OUT:?set OUT, e.g. data/d4rl-hopper}"
TRAIN_STEPS=${TRAIN_STEPS:-1000000}   # D4RL: 1M SAC steps
STEPS=${STEPS:-1000000}               # D4RL: 1M transitions per policy
EVAL_EVERY=${EVAL_EVERY:-10000}
SEED=${SEED:-0}
mkdir -p "$OUT"
COMMON=(--env "$ENV" --steps "$STEPS" --train-steps "$TRAIN_STEPS" --start-steps 10000 --eval-every "$EVAL_EVERY"
        --hidden 256 256 --behaviour-dir "$OUT/beh" --seed "$SEED" --threads 1)
for kind in expert medium random medium-replay medium-expert; do
  [ -f "$OUT/$kind.json" ] && { echo "skip $kind (done)"; continue; }
  extra=()
  [ "$kind" = expert ] && extra=(--policy-out "$OUT/expert-policy")
  worldgen data offline-rl "${COMMON[@]}" --kind "$kind" --out "$OUT/$kind.hdf5" "${extra[@]}" > "$OUT/$kind.json.tmp"
  mv "$OUT/$kind.json.tmp" "$OUT/$kind.json"
  cat "$OUT/$kind.json"
done
worldgen data rl-card "$OUT" > /dev/null && cat "$OUT/CARD.md"
