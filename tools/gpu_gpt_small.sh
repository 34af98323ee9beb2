#!/usr/bin/env bash
# The one-command gpt-small training on a lent GPU (docs/results/worldmodel.md, "A GPU session was prepared").
# Run from the repo root on the GPU machine, with the token folders packed beside it and the wheels its Python lacks:
#   tar cf - -C data tokens-v2-mirror tokens-v2-s2-mirror tokens-v2-s3-mirror | xz -T2 > .gpu/tokens.tar.xz
#   BUDGET=420 OUT=<folder> bash tools/gpu_gpt_small.sh
# It merges the folders (`worldgen data merge-tokens`), trains configs/drivingworld/gpt_small.yaml on the GPU for
# BUDGET seconds (tools/budget_train.py: probe, then max_steps to fit) and copies the exported model to $OUT.
set -euo pipefail
: "${OUT:?set OUT to the folder that receives the model}"
BUDGET=${BUDGET:-420}
ACCEL=${ACCEL:-gpu}  # cpu for a dry run
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
python3 -c "import torch; print('torch', torch.__version__,
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')"
mkdir -p data
tar xJf .gpu/tokens.tar.xz -C data
rm -rf data/tokens-gpu
python3 -m worldgen.cli data merge-tokens data/tokens-gpu data/tokens-v2-mirror data/tokens-v2-s2-mirror \
  data/tokens-v2-s3-mirror
python3 tools/budget_train.py configs/drivingworld/gpt_small.yaml --budget-s "$BUDGET" --probe-steps 60 \
  out_dir=runs/gpt-small data.root=data/tokens-gpu trainer.accelerator="$ACCEL" trainer.devices=1 \
  data.batch_size=64 optim.lr=1e-3 optim.warmup_steps=300 trainer.val_check_interval=1000 \
  trainer.ckpt_every_n_steps=2000 trainer.log_every_n_steps=50 2>&1 | grep -v -i warn | tee "$OUT/train.log"
cp runs/gpt-small/model.safetensors runs/gpt-small/config.yaml runs/gpt-small/card.json "$OUT/"
cp runs/gpt-small/logs/version_0/metrics.csv "$OUT/metrics.csv"
