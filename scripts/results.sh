#!/usr/bin/env bash
# Reruns every benchmark behind docs/results.md, in the order the page gives them, each
# printing its table (and writing its JSON under work/results/). Run it on a quiet machine:
# the speed figures are ratios measured in one run, and the fine-tuning runs are budgeted
# by wall time. It needs the held-out corpora for fine-tuning (never in a base), as
# folders of MIDI files: FOLK (the Nottingham Music Database), POP (multi-track Lakh songs
# with drums), PIANO (played piano, e.g. POP909); see docs/results.md for where ours came
# from. About 5 hours on this project's 2-core CPU, most of it the fine-tuning runs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-work/results}
FOLK=${FOLK:?set FOLK to a folder of held-out folk tunes}
POP=${POP:?set POP to a folder of held-out multi-track songs with drums}
PIANO=${PIANO:?set PIANO to a folder of held-out played piano}
mkdir -p "$OUT"
$PY -m musicgen ingest data/midi --out work/bach

# representation and ingestion
$PY benchmarks/fidelity.py data/midi "$FOLK" "$POP" "$PIANO" --json "$OUT/fidelity.json"
$PY benchmarks/ingest.py

# the shipped models: held-out quality, form, infill, listening, speed
for m in gru gru-attn transformer; do
  $PY -m musicgen evaluate "checkpoints/pretrained/$m" --data work/bach --json > "$OUT/eval-$m.json"
done
$PY benchmarks/form.py work/bach --with checkpoints/pretrained --bars 16 --pieces 64 --out "$OUT/form"
$PY benchmarks/infill.py --with checkpoints/pretrained
$PY benchmarks/listen.py --out "$OUT/listen"
$PY benchmarks/generate.py --json "$OUT/generate.json"
$PY benchmarks/train.py

# fine-tuned from the bases against from scratch, on corpora no base has heard
for n in 25 100 400; do
  $PY benchmarks/finetune.py "$FOLK" --pieces "$n" --minutes 5 --out "$OUT/finetune"
done
$PY benchmarks/finetune.py "$POP" --pieces 30 --minutes 5 --out "$OUT/finetune"
$PY benchmarks/finetune.py "$PIANO" --pieces 80 --minutes 5 --out "$OUT/finetune"

# controls: the shipped models, and the folk fine-tunes
$PY benchmarks/controls.py checkpoints/pretrained/{gru,gru-attn,transformer} --data work/bach \
  --out "$OUT/controls-bach"
$PY benchmarks/controls.py "$OUT"/finetune/"$(basename "$FOLK")"-100/{gru,gru-attn,transformer}-base/best.ckpt \
  --out "$OUT/controls-folk"

# live play
$PY benchmarks/live.py --busy --out "$OUT/live"
