#!/usr/bin/env bash
# Reruns every benchmark behind docs/results.md, in the order the page gives them, each
# printing its table (and writing its JSON under work/results/). Run it on a quiet machine:
# the speed figures are ratios measured in one run, and the fine-tuning runs are budgeted
# by wall time. It needs held-out corpora no base has heard, as folders of MIDI files: FOLK
# (the Nottingham Music Database; FOLK_EXCLUDE optionally names tunes a base knows in another
# transcription) and POP (multi-track Lakh songs with drums); docs/results.md says where
# ours came from. About 3 hours on this project's 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-work/results}
FOLK=${FOLK:?set FOLK to a folder of held-out folk tunes}
POP=${POP:?set POP to a folder of held-out multi-track songs with drums}
EXCLUDE=()
if [ -n "${FOLK_EXCLUDE:-}" ]; then EXCLUDE=(--exclude "$FOLK_EXCLUDE"); fi
mkdir -p "$OUT"

# fine-tuned from the bases against from scratch, on corpora no base has heard
$PY benchmarks/finetune.py "$FOLK" --pieces 100 --minutes 5 --parallel "${EXCLUDE[@]}" --out "$OUT/finetune"
$PY benchmarks/finetune.py "$POP" --pieces 30 --minutes 5 --parallel --models transformer,gru \
  --out "$OUT/finetune"

# the shipped models: the bases fine-tuned on the bundled chorales, 25 minutes each (this
# rebuilds checkpoints/pretrained/ in place: commit it only if it does as well)
MINUTES=25 OUT=work/pretrained bash scripts/train_pretrained.sh

# controls: the shipped models, and the folk fine-tunes
$PY benchmarks/controls.py checkpoints/pretrained/{gru,gru-attn,transformer} --data work/bach \
  --key-pulls 0,1,3 --out "$OUT/controls-bach"
F="$OUT/finetune/$(basename "$FOLK")-100"
$PY benchmarks/controls.py "$F"/{gru,gru-attn,transformer}-base/best.ckpt --data "$F/data" \
  --key-pulls 0,1,3 --out "$OUT/controls-folk"

# live play, and generation speed
$PY benchmarks/live.py --busy --out "$OUT/live"
$PY benchmarks/generate.py --json "$OUT/generate.json"
