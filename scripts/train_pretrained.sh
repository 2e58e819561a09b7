#!/usr/bin/env bash
# Reproduces the shipped models in checkpoints/pretrained/ (about 50 minutes on 2 CPU cores):
# each is its family's base (checkpoints/base/, scripts/train_base.sh) fine-tuned on the
# bundled Bach corpus, which no base has heard. The two GRUs train side by side on one core
# each, then the transformer on both cores. Every model also learns to fill in a middle
# (--infill: the share of windows rearranged; the transformer, on random windows, keeps more
# of them for continuation). Each run has a wall-clock budget of MINUTES (default 25; the
# shipped models had less, see checkpoints/README.md), so results vary a little with load.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-work/pretrained}
MINUTES=${MINUTES:-25}
mkdir -p "$OUT"
$PY -m musicgen ingest data/midi --out work/bach
run() { # name threads extra-args...
  local name=$1 threads=$2; shift 2
  OMP_NUM_THREADS=$threads $PY -m musicgen train --data work/bach --model "$name" --out "$OUT/$name" \
    --max-time "$MINUTES" --epochs 0 --patience 0 --no-progress "$@" > "$OUT/$name.log" 2>&1
}
run gru 1 --init base --infill 0.5 --dropout 0.2 &
run gru-attn 1 --init base --infill 0.5 --dropout 0.2 &
wait
run transformer 2 --init base --infill 0.25 --dropout 0.1
for name in gru gru-attn transformer; do
  $PY -m musicgen export "$OUT/$name/best.ckpt" --out "checkpoints/pretrained/$name" --float16
  $PY -m musicgen evaluate "checkpoints/pretrained/$name" --data work/bach --json > "checkpoints/pretrained/$name/evaluation.json"
done
