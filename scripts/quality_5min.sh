#!/usr/bin/env bash
# The quality bar: each model trained from scratch for 5 minutes of wall time on this CPU, then
# scored on the held-out split beside the best Kneser-Ney n-gram (orders 1-8).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-work/q5final}
mkdir -p "$OUT"
$PY -m musicgen ingest data/midi --out work/bach
q() { # name extra-args...
  local name=$1; shift
  $PY -m musicgen train --data work/bach --model "$name" --init scratch --out "$OUT/$name" --max-time 5 --epochs 0 \
    --patience 0 --no-progress "$@" > "$OUT/$name.log" 2>&1
  $PY -m musicgen evaluate "$OUT/$name/best.ckpt" --data work/bach --json > "$OUT/$name.json"
}
q gru --hidden 256 --layers 2 --warmup 50
q gru-attn --hidden 256 --layers 2 --warmup 50
q transformer --hidden 128 --layers 3 --heads 4 --lr 3e-3 --warmup 30 --batch-size 16 --dropout 0.0
