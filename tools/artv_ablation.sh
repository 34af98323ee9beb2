#!/usr/bin/env bash
# ART-V ablation (issue 15): plain conditioning / + mask / + anchor / + noise augmentation (= full), all stage 2
# initialised from the stage-1 prior, plus the full model from scratch (no prior); several seeds, STEPS steps each,
# every run scored by `worldgen eval artv-quality` on the same held-out episodes (per-window error against
# copy-first / mean colour, one-step error against copy-last, vehicle and texture ratios; no text-control test).
#   usage: tools/artv_ablation.sh [SEEDS="0 1 2"] [STEPS=800] [OUT=runs/artv-ablate] [PRIOR=runs/artv-prior-tiny]
#   (resumes: finished runs and evaluations are skipped); summary: python tools/artv_ablation_summary.py OUT
set -euo pipefail
SEEDS=${SEEDS:-"0 1 2"}
STEPS=${STEPS:-800}
OUT=${OUT:-runs/artv-ablate}
PRIOR=${PRIOR:-runs/artv-prior-tiny}
DATA=${DATA:-data/driving-v2}
HELDOUT=${HELDOUT:-data/driving-v2-heldout}
WG=${WG:-.venv/bin/worldgen}
declare -A FLAGS=([plain]="model.use_mask=false model.use_anchor=false model.noise_aug=false"
                  [mask]="model.use_mask=true model.use_anchor=false model.noise_aug=false"
                  [anchor]="model.use_mask=true model.use_anchor=true model.noise_aug=false"
                  [full]="model.use_mask=true model.use_anchor=true model.noise_aug=true"
                  [scratch]="model.use_mask=true model.use_anchor=true model.noise_aug=true")
mkdir -p "$OUT"
for seed in $SEEDS; do
  for variant in plain mask anchor full scratch; do
    run="$OUT/$variant-s$seed"
    init="init_from=$PRIOR"
    [ "$variant" = scratch ] && init='init_from=""'
    if [ ! -f "$run/model.safetensors" ]; then
      $WG train configs/artv/tiny.yaml out_dir="$run" seed="$seed" data.seed="$seed" data.root="$DATA" "$init" \
        trainer.max_steps="$STEPS" trainer.val_check_interval="$STEPS" trainer.ckpt_every_n_steps=200 \
        trainer.progress_bar=false ${FLAGS[$variant]} > "$run.train.log" 2>&1
    fi
    if [ ! -f "$run.quality.json" ]; then
      $WG eval artv-quality --ckpt "$variant=$run" --data "$HELDOUT" --episodes 10 --frames 48 --steps 8 \
        --cfg-text 1.0 --no-control --seed "$seed" --out "$run.quality.json" > "$run.eval.log" 2>&1
    fi
    echo "$(date +%T) done $run"
  done
done
