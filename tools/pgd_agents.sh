#!/usr/bin/env bash
# PGD's claim on one dataset (issue 17): an offline agent on real / unguided synthetic / PGD data, several seeds.
# Trains the trajectory diffusion model on DATA first (configs/pgd/hopper_small.yaml's small U-Net) unless PGD_CKPT
# is given, then one agent run per (mode, seed) with the protocol of docs/results/pgd.md section 10 (STEPS agent
# steps, synthetic sets of 256 windows, PGD regenerating every STEPS/4 steps toward the current actor), then the
# summary (tools/pgd_agents_summary.py). Resumable: a finished diffusion model or agent run (eval.json) is skipped.
#   ENV=HalfCheetah-v5 DATA=data/d4rl-halfcheetah/medium.hdf5 OUT=runs/pgd-agents-halfcheetah tools/pgd_agents.sh
#   optional: AGENT=iql|td3bc (iql)  SEEDS="0 1 2"  MODES="real unguided pgd"  STEPS=5000  PGD_CKPT=DIR
# Runs one after another on one thread each; for two side by side start a second copy with other SEEDS once the
# diffusion model exists.
set -euo pipefail
: "${ENV:?set ENV, e.g. HalfCheetah-v5}" "${DATA:?set DATA, a D4RL-layout .hdf5}" "${OUT:?set OUT, a run folder}"
AGENT=${AGENT:-iql}
SEEDS=${SEEDS:-"0 1 2"}
MODES=${MODES:-"real unguided pgd"}
STEPS=${STEPS:-5000}
WG=${WG:-.venv/bin/worldgen}
PGD_CKPT=${PGD_CKPT:-$OUT/diffusion}
export OMP_NUM_THREADS=1
mkdir -p "$OUT"
if [ ! -f "$PGD_CKPT/model.safetensors" ]; then
  echo "$(date +%T) training the diffusion model -> $PGD_CKPT"
  $WG pgd train configs/pgd/hopper_small.yaml data.path="$DATA" data.env_id="$ENV" out_dir="$PGD_CKPT" \
    name="pgd-$(basename "$OUT")" > "$OUT/diffusion.log" 2>&1
fi
case $AGENT in
  td3bc) CFG=configs/agents/td3bc_hopper_small.yaml; EXTRA=(eval.env_id="$ENV") ;;
  iql) CFG=configs/agents/iql.yaml
       EXTRA=(trainer.accelerator=cpu trainer.devices=1 "trainer.loggers=[csv]" trainer.progress_bar=false
              trainer.log_every_n_steps=500 trainer.ckpt_every_n_steps=100000 eval.env_id="$ENV" data.batch_size=256
              data.n_traj=256) ;;
  *) echo "AGENT must be iql or td3bc, got $AGENT" >&2; exit 2 ;;
esac
run_one() {  # MODE SEED
  local run="$OUT/$AGENT-$1-s$2"
  [ -f "$run/eval.json" ] && { echo "skip $run (done)"; return 0; }
  rm -rf "$run"
  $WG train "$CFG" data.path="$DATA" data.diffusion_ckpt="$PGD_CKPT" data.mode="$1" seed="$2" out_dir="$run" \
    steps="$STEPS" eval.every=$((STEPS / 2)) eval.episodes=10 data.regen_every=$((STEPS / 4)) "${EXTRA[@]}" \
    > "$run.log" 2>&1
  echo "$(date +%T) done $run"
}
for s in $SEEDS; do for m in $MODES; do run_one "$m" "$s"; done; done
.venv/bin/python tools/pgd_agents_summary.py "$OUT" --json "$OUT/summary.json"
