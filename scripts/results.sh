#!/usr/bin/env bash
# Reruns every benchmark behind docs/results.md, in the order the page gives them, each
# printing its table (and writing its JSON under work/results/). Run it on a quiet machine:
# the speed figures are ratios measured in one run, and the fine-tuning runs are budgeted
# by wall time. It needs held-out corpora no base has heard, as folders of MIDI files: FOLK
# (the Nottingham Music Database; FOLK_EXCLUDE optionally names tunes a base knows in another
# transcription), POP (multi-track Lakh songs with drums) and PIANO (POP909); docs/results.md
# says where ours came from. About 5 hours on this project's 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-work/results}
FOLK=${FOLK:?set FOLK to a folder of held-out folk tunes}
POP=${POP:?set POP to a folder of held-out multi-track songs with drums}
PIANO=${PIANO:?set PIANO to a folder of held-out played piano (POP909)}
EXCLUDE=()
if [ -n "${FOLK_EXCLUDE:-}" ]; then EXCLUDE=(--exclude "$FOLK_EXCLUDE"); fi
mkdir -p "$OUT"

# fine-tuned from the bases against from scratch, on corpora no base has heard
for N in 25 100 400; do
  $PY benchmarks/finetune.py "$FOLK" --pieces $N --minutes 5 --parallel "${EXCLUDE[@]}" --out "$OUT/finetune"
done
$PY benchmarks/finetune.py "$POP" --pieces 30 --minutes 5 --parallel --out "$OUT/finetune"
$PY benchmarks/finetune.py "$POP" --pieces 10 --minutes 5 --parallel --models transformer \
  --out "$OUT/finetune"
$PY benchmarks/finetune.py "$PIANO" --pieces 80 --minutes 5 --parallel --out "$OUT/finetune"
$PY benchmarks/sizing.py "$OUT/finetune/$(basename "$FOLK")-25/data"
F4="$OUT/finetune/$(basename "$FOLK")-400"
$PY benchmarks/key_pull.py "$F4/data" "$F4"/{gru,gru-attn,transformer}-base/best.ckpt \
  --json "$OUT/key_pull.json"
# the key drawn, moved into place (--key-move), at the drawn key's pull
F1="$OUT/finetune/$(basename "$FOLK")-100"
P1="$OUT/finetune/$(basename "$POP")-10"
$PY benchmarks/key_pull.py "$F1/data" "$F1"/{gru,gru-attn,transformer}-base/best.ckpt --pulls 1 \
  --json "$OUT/key_drawn_folk.json"
$PY benchmarks/key_pull.py "$P1/data" "$P1"/transformer-{base,scratch}/best.ckpt --pulls 1 \
  --json "$OUT/key_drawn_pop.json"

# the shipped models: the bases fine-tuned on the bundled chorales, 25 minutes each (this
# rebuilds checkpoints/pretrained/ in place: commit it only if it does as well)
MINUTES=25 OUT=work/pretrained bash scripts/train_pretrained.sh

# controls: the shipped models, and the folk fine-tunes
$PY benchmarks/controls.py checkpoints/pretrained/{gru,gru-attn,transformer} --data work/bach \
  --key-pulls 0,1,3 --out "$OUT/controls-bach"
F="$OUT/finetune/$(basename "$FOLK")-100"
$PY benchmarks/controls.py "$F"/{gru,gru-attn,transformer}-base/best.ckpt --data "$F/data" \
  --key-pulls 0,1,3 --out "$OUT/controls-folk"
$PY benchmarks/controls.py "$F"/{gru,gru-attn,transformer}-base/best.ckpt --sweep-only \
  --title "Folk: models fine-tuned for 5 min on 100 tunes" --out "$OUT/sweep-folk"
$PY benchmarks/controls.py checkpoints/pretrained/{gru,gru-attn,transformer} --sweep-only \
  --title "Bach chorales: the shipped models" --out "$OUT/sweep-bach"
$PY benchmarks/control_cost.py "$FOLK" --pieces 100 --minutes 5 "${EXCLUDE[@]}" --out "$OUT/control-cost"

# live play, and generation speed
$PY benchmarks/live.py --busy --out "$OUT/live"
$PY benchmarks/live.py --trials 0 --mode accompany --out "$OUT/live-accompany"
$PY benchmarks/generate.py --json "$OUT/generate.json"

# the shipped models continuing a chorale, and whole pieces' form
$PY benchmarks/listen.py --out "$OUT/listen"
$PY benchmarks/form.py work/bach --with checkpoints/pretrained --out "$OUT/form"
$PY benchmarks/infill.py --with checkpoints/pretrained --out "$OUT/infill"

# what survives ingestion, and ingestion and training speed
# (REAL: optionally, ../shared/real-midi's folders of a few real files of each kind)
REAL_DIRS=()
if [ -n "${REAL:-}" ]; then REAL_DIRS=("$REAL"/pop "$REAL"/performance "$REAL"/score-piano); fi
$PY benchmarks/fidelity.py data/midi "$FOLK" "$POP" "$PIANO" "${REAL_DIRS[@]}" --json "$OUT/fidelity.json"
$PY benchmarks/ingest.py --json "$OUT/ingest.json"
$PY benchmarks/train.py --json "$OUT/train.json"
