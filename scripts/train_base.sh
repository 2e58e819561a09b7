#!/usr/bin/env bash
# Rebuilds the pretrained bases in checkpoints/base/ (gru, gru-attn, transformer), which
# `musicgen train` fine-tunes by default (--init base).
#
#   1. the corpus: openly licensed music assembled by scripts/base_corpus.py (its sources,
#      licences and held-out collections are in its docstring and checkpoints/README.md),
#      less Bach's chorales (the bundled corpus: its fine-tunes are measured on them),
#      Palestrina (encoding rights reserved) and Josquin (a licence that contradicts itself);
#   2. ingested on the beats clock with the default encoding (every corpus in that
#      encoding, and any other through data/remap.py, maps into the bases' tokens);
#   3. each base learns every token of the encoding (--vocab full), the controls, and to
#      fill (--infill 0.2), from scratch;
#   4. exported as safetensors with the base mark, and the manifest of every training
#      file (source, licence, sha256) beside them.
#
# On this project's 2-core CPU: the two GRUs side by side on one core each, then the
# transformer on both, each for BASE_MINUTES (default 100): about 3.5 hours in all.
# On GPUs, the same runs with GPU=1 (every visible GPU, DDP, bf16):
#   GPU=1 bash scripts/train_base.sh
# Fetch the sources first (see scripts/base_corpus.py); nothing is downloaded here.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
WORK=${WORK:-work/base}
CORPUS=${CORPUS:-$WORK/corpus}
MINUTES=${BASE_MINUTES:-100}
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
        --max-time "$MINUTES" --val-every 500 --no-progress)
if [ "${GPU:-0}" = "1" ]; then
  HW=(--accelerator gpu --devices auto --strategy ddp --precision bf16-mixed)
  $PY -m musicgen train --model gru "${COMMON[@]}" "${HW[@]}" --hidden 384 --layers 3 --out "$WORK/gru"
  $PY -m musicgen train --model gru-attn "${COMMON[@]}" "${HW[@]}" --hidden 384 --layers 3 --out "$WORK/gru-attn"
  $PY -m musicgen train --model transformer "${COMMON[@]}" "${HW[@]}" --hidden 256 --layers 6 --heads 4 \
    --seq-len 512 --batch-size 16 --lr 1.5e-3 --warmup 200 --out "$WORK/transformer"
else
  run() { # name threads args...
    local name=$1 threads=$2; shift 2
    OMP_NUM_THREADS=$threads $PY -m musicgen train --model "$name" "${COMMON[@]}" "$@" \
      --out "$WORK/$name" > "$WORK/$name.log" 2>&1
  }
  run gru 1 --hidden 384 --layers 3 --warmup 200 --accelerator cpu --devices 1 &
  run gru-attn 1 --hidden 384 --layers 3 --warmup 200 --accelerator cpu --devices 1 &
  wait
  run transformer 2 --hidden 256 --layers 6 --heads 4 --seq-len 512 --batch-size 16 --lr 1.5e-3 \
    --warmup 200 --accelerator cpu --devices 1
fi

mkdir -p checkpoints/base
for name in gru gru-attn transformer; do
  $PY -m musicgen export "$WORK/$name/best.ckpt" --out "checkpoints/base/$name" --base
done
# the manifest of what the bases learnt: one line per training file
{ head -n 1 "$CORPUS/SOURCES.tsv"; tail -n +2 "$CORPUS/SOURCES.tsv" | while IFS=$'\t' read -r path rest; do
    case ",$SKIP," in *",${path%%/*},"*) ;; *) printf '%s\t%s\n' "$path" "$rest" ;; esac
  done; } > checkpoints/base/SOURCES.tsv
echo "bases written to checkpoints/base/ (manifest: checkpoints/base/SOURCES.tsv)"
