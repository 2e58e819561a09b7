#!/usr/bin/env bash
# Rebuilds the pretrained bases in checkpoints/base/ (gru, gru-attn, transformer), which
# `musicgen train` fine-tunes by default (--init base).
#
#   1. the corpus: openly licensed music assembled by scripts/base_corpus.py (its sources,
#      licences and held-out collections are in NOTICE.md and docs/bases.md),
#      less Bach's chorales (the bundled corpus: its fine-tunes are measured on them),
#      Palestrina (encoding rights reserved) and Josquin (a licence that contradicts itself);
#   2. ingested on the beats clock with the default encoding (every corpus in that
#      encoding, and any other through data/remap.py, maps into the bases' tokens);
#   3. each base learns every token of the encoding (--vocab full), the controls, and to
#      fill (--infill 0.2), from scratch;
#   4. exported as safetensors with the base mark, and the manifest of every training
#      file (source, licence, sha256) beside them.
#
# On this project's 2-core CPU: the three families side by side, a thread each, the GRUs for
# BASE_MINUTES (default 80) and the transformer for TRANSFORMER_MINUTES (default 50); then the
# transformer goes on alone on both cores (--resume) until TRANSFORMER_TOTAL minutes
# (default 120) of training, and the gru on one thread until GRU_TOTAL (default 150; its
# first 80 minutes shared two cores among three runs): about 3 h 40 min in all. (The shipped bases were made so; the
# GRU runs were interrupted at step 500 and went on with --resume, which keeps the run whole.)
# On GPUs, the same runs with GPU=1 (every visible GPU, DDP, bf16):
#   GPU=1 bash scripts/train_base.sh
# Fetch the sources first (see scripts/base_corpus.py); nothing is downloaded here.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
WORK=${WORK:-work/base}
CORPUS=${CORPUS:-$WORK/corpus}
MINUTES=${BASE_MINUTES:-80}
TMINUTES=${TRANSFORMER_MINUTES:-50}
TTOTAL=${TRANSFORMER_TOTAL:-120}
GTOTAL=${GRU_TOTAL:-150}
SKIP=${SKIP:-bach,josquin,palestrina}
mkdir -p "$WORK"

if [ ! -f "$CORPUS/SOURCES.tsv" ]; then
  $PY scripts/base_corpus.py --out "$CORPUS" --jobs 2
fi
# the collections the bases learn: every one but $SKIP
rm -rf "$WORK/set" && mkdir -p "$WORK/set"
for dir in "$CORPUS"/*/; do
  name=$(basename "$dir")
  case ",$SKIP," in *",$name,"*) continue ;; esac
  cp -r "$dir" "$WORK/set/$name"
done
$PY -m musicgen ingest "$WORK/set" --out "$WORK/data" --time beats

COMMON=(--data "$WORK/data" --init scratch --vocab full --infill 0.2 --epochs 0 --patience 0
        --no-progress)
GRU=(--max-time "$MINUTES" --val-every 250 --hidden 384 --layers 3 --warmup 200)
TRANSFORMER=(--max-time "$TMINUTES" --val-every 2000 --hidden 256 --layers 4 --heads 4 --seq-len 512
             --batch-size 8 --lr 1.5e-3 --warmup 100)
if [ "${GPU:-0}" = "1" ]; then
  HW=(--accelerator gpu --devices auto --strategy ddp --precision bf16-mixed)
  $PY -m musicgen train --model gru "${COMMON[@]}" "${HW[@]}" "${GRU[@]}" --out "$WORK/gru"
  $PY -m musicgen train --model gru-attn "${COMMON[@]}" "${HW[@]}" "${GRU[@]}" --out "$WORK/gru-attn"
  $PY -m musicgen train --model transformer "${COMMON[@]}" "${HW[@]}" "${TRANSFORMER[@]}" --out "$WORK/transformer"
  # as on the CPU below: on to TRANSFORMER_TOTAL and GRU_TOTAL minutes, the schedules
  # stretched to them
  $PY -m musicgen train --data "$WORK/data" --model transformer --out "$WORK/transformer" \
    "${HW[@]}" --resume --max-time "$TTOTAL" --no-progress
  $PY -m musicgen train --data "$WORK/data" --model gru --out "$WORK/gru" \
    "${HW[@]}" --resume --max-time "$GTOTAL" --no-progress
else
  run() { # name threads args...
    local name=$1 threads=$2; shift 2
    OMP_NUM_THREADS=$threads $PY -m musicgen train --model "$name" "${COMMON[@]}" "$@" \
      --out "$WORK/$name" > "$WORK/$name.log" 2>&1
  }
  run gru 1 "${GRU[@]}" --accelerator cpu --devices 1 & gru=$!
  run gru-attn 1 "${GRU[@]}" --accelerator cpu --devices 1 & attn=$!
  run transformer 1 "${TRANSFORMER[@]}" --accelerator cpu --devices 1 & tr=$!
  # one wait per run, so that set -e stops the script when any of them failed
  wait "$gru"; wait "$attn"; wait "$tr"
  # the weakest base at 50 minutes (8.96 held-out bits/note, a third of an epoch): on, with
  # the cosine schedule stretched to the new end (7.58 at 120 minutes)
  OMP_NUM_THREADS=2 $PY -m musicgen train --data "$WORK/data" --model transformer --out "$WORK/transformer" \
    --resume --max-time "$TTOTAL" --no-progress >> "$WORK/transformer.log" 2>&1
  # the gru's Bach fine-tune lost to scratch (3.202 against 3.149 bits/note) from its base at
  # 80 minutes (7.88 held-out bits/note, 0.86 epoch): on, as the transformer was (7.44 at 150)
  OMP_NUM_THREADS=1 $PY -m musicgen train --data "$WORK/data" --model gru --out "$WORK/gru" \
    --resume --max-time "$GTOTAL" --no-progress --accelerator cpu --devices 1 >> "$WORK/gru.log" 2>&1
fi

mkdir -p checkpoints/base
for name in gru gru-attn transformer; do
  # last, not best: a base sees about an epoch, so its latest weights are its best, and
  # validating on the held-out tenth (a million tokens) is too dear to do often on a CPU
  $PY -m musicgen export "$WORK/$name/last.ckpt" --out "checkpoints/base/$name" --base --float16
done
# the manifest of what the bases learnt: one line per file, with its split
$PY scripts/base_manifest.py "$CORPUS/SOURCES.tsv" "$WORK/data/index.json" > checkpoints/base/SOURCES.tsv
echo "bases written to checkpoints/base/ (manifest: checkpoints/base/SOURCES.tsv)"
