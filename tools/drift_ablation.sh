#!/usr/bin/env bash
# Anti-drift ablation of DrivingWorld (issue 14): none / masking / reweighting / both, several seeds, each scored by
# `worldgen eval drift` on all 40 held-out token episodes, 40 frames each (real ego forced; per-window token accuracy, decoded PSNR, code JS).
# A small model (width 64, 2 fusion + 1 AR blocks, image head hidden 128, STEPS steps) so that 4 variants x 3 seeds fit a CPU session.
#   usage: tools/drift_ablation.sh [SEEDS="0 1 2"] [STEPS=800] [OUT=runs/ablate]   (resumes: finished runs are skipped)
set -euo pipefail
SEEDS=${SEEDS:-"0 1 2"}
STEPS=${STEPS:-800}
OUT=${OUT:-runs/ablate}
TOKENS=${TOKENS:-data/tokens-v2}
HELDOUT=${HELDOUT:-data/tokens-v2-heldout}
WG=${WG:-.venv/bin/worldgen}
declare -A FLAGS=([none]="drift.masking=false drift.reweighting=false" [masking]="drift.masking=true drift.reweighting=false"
                  [reweighting]="drift.masking=false drift.reweighting=true" [both]="drift.masking=true drift.reweighting=true")
mkdir -p "$OUT"
for seed in $SEEDS; do
  for variant in none masking reweighting both; do
    run="$OUT/$variant-s$seed"
    if [ ! -f "$run/model.safetensors" ]; then
      $WG train configs/drivingworld/gpt_tiny.yaml out_dir="$run" seed="$seed" data.root="$TOKENS" \
        model.width=64 model.heads=2 model.fusion_layers=2 model.ar_layers=1 model.head_hidden=128 \
        trainer.max_steps="$STEPS" trainer.val_check_interval="$STEPS" trainer.ckpt_every_n_steps=200 \
        ${FLAGS[$variant]} > "$run.train.log" 2>&1
    fi
    if [ ! -f "$run.drift.json" ]; then
      $WG eval drift --ckpt "$run" --tokens "$HELDOUT" --tokenizer checkpoints/tokenizer-tiny --n-val 40 --horizon 40 \
        --window 10 --seed "$seed" --out "$run.drift.json" > "$run.eval.log" 2>&1
    fi
    echo "$(date +%T) done $run"
  done
done
