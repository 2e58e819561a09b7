"""Form: do generated pieces repeat and develop the way the corpus does?

    python benchmarks/form.py CORPUS [--minutes 10] [--models gru,gru-attn,transformer]
        [--pieces 16] [--bars 32] [--settings 1.0:0.95:0,1.0:0.95:2] [--train-args=...]
        [--with DIR] [--out work/form]

CORPUS is a folder of music (ingested into OUT/data) or an ingested dataset.
Each model trains for the same wall time (`--minutes`; sized by budget, as
`musicgen train --max-time` sizes it, unless `--fixed-size`; `--train-args` is
added to every `musicgen train`; a model already trained in OUT is reused, and `--with DIR`
takes each model from `DIR/<model>/` instead, such as the shipped ones), is scored
on the held-out split (bits per note), and generates `--pieces` pieces of `--bars`
bars from scratch at each sampling setting (temperature:top_p:repeat_bias:form_bias; the
form is learnt here from the same training split, as `train` learns it now, so a model
trained before a change to form learning is measured with the change). The pieces are
compared with the first `--bars` bars of every held-out piece:

* distinct 4-note figures, longest repeated stretch, share of bars that recur
  (exactly or transposed), distance in bars to the nearest recurrence: the mean,
  and whether it is within 20% of real music's;
* every Yang & Lerch overlap area `musicgen metrics --reference` reports (target
  at least 0.7);
* the loop guard: longest repeated stretch below twice real music's.

Figures go to OUT/form.json and a table to the terminal.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FORM_KEYS = (
    "distinct_4gram_share",
    "longest_repeat_run",
    "recurring_bar_share",
    "recurrence_distance",
)
FIXED_SIZES = {  # --fixed-size: the sizes of scripts/quality_5min.sh instead of sizing by budget
    "gru": ["--hidden", "256", "--layers", "2", "--warmup", "50"],
    "gru-attn": ["--hidden", "256", "--layers", "2", "--warmup", "50"],
    "transformer": [
        "--hidden",
        "128",
        "--layers",
        "3",
        "--heads",
        "4",
        "--lr",
        "3e-3",
        "--warmup",
        "30",
        "--batch-size",
        "16",
        "--dropout",
        "0.0",
    ],
}


def _default_setting() -> str:
    from musicgen.config import FORM_BIAS, GenerateConfig

    g = GenerateConfig()
    return f"{g.temperature:g}:{g.top_p:g}:{g.repeat_bias:g}:{FORM_BIAS:g}"


DEFAULT_SETTING = _default_setting()  # what `musicgen generate` samples with by default


def mg(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "musicgen", *args], check=True, cwd=ROOT)


def train_args(data: Path, name: str, run: Path, minutes: float) -> list[str]:
    """`musicgen train` of one model for `minutes` of wall time, as the benchmarks train."""
    return [
        "train",
        "--data",
        str(data),
        "--model",
        name,
        "--out",
        str(run),
        "--max-time",
        str(minutes),
        "--epochs",
        "0",
        "--patience",
        "0",
        "--no-progress",
    ]


def first_bars(score, bars: int):
    lines = score.bar_lines()
    return score.until(lines[bars]) if len(lines) > bars else score


def mean(ms: list[dict], key: str) -> float:
    v = np.array([m[key] for m in ms], dtype=float)
    return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--models", default="gru,gru-attn,transformer")
    ap.add_argument("--pieces", type=int, default=16)
    ap.add_argument("--bars", type=int, default=32)
    ap.add_argument(
        "--settings",
        default=DEFAULT_SETTING,
        help="comma-separated temperature:top_p:repeat_bias:form_bias [default: musicgen's]",
    )
    ap.add_argument("--train-args", default="", help="added to every `musicgen train`")
    ap.add_argument(
        "--fixed-size",
        action="store_true",
        help="the sizes of scripts/quality_5min.sh, not sizing by budget",
    )
    ap.add_argument(
        "--with",
        dest="trained",
        type=Path,
        help="models already trained: DIR/<model>/ (exported, or a training folder)",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "work" / "form")
    ns = ap.parse_args()

    from musicgen.checkpoint import load_model
    from musicgen.config import GenerateConfig
    from musicgen.data.dataset import TokenDataset
    from musicgen.data.measures import learn_form_of
    from musicgen.evaluate import evaluate
    from musicgen.generate import generate_songs
    from musicgen.listen import metrics as M

    out = ns.out
    out.mkdir(parents=True, exist_ok=True)
    data = ns.corpus if (ns.corpus / "index.json").exists() else out / "data"
    if data != ns.corpus:
        mg("ingest", str(ns.corpus), "--out", str(data))
    real = [M.piece_metrics(first_bars(s, ns.bars)) for _, s in M.load_corpus(data, "val")[0]]
    results = {
        "corpus": str(ns.corpus),
        "bars": ns.bars,
        "minutes": ns.minutes,
        "train_args": ns.train_args,
        "trained": str(ns.trained) if ns.trained else None,
        "real": {k: mean(real, k) for k in FORM_KEYS},
        "real_pieces": len(real),
        "models": {},
    }
    for name in ns.models.split(","):
        run = ns.trained / name if ns.trained else out / name
        if not ns.trained and not (run / "best.ckpt").exists():
            mg(
                *train_args(data, name, run, ns.minutes),
                *(FIXED_SIZES[name] if ns.fixed_size else []),
                *shlex.split(ns.train_args),
            )
        model = load_model(run / "best.ckpt" if (run / "best.ckpt").exists() else run)
        # the form as `train` learns it now, from the same training split, whatever the
        # checkpoint's age (an older one has no form, or no templates)
        # (the dataset's ids are its own vocabulary's, not the model's: a fine-tune of a
        # base reads them mapped into the base's)
        ds = TokenDataset.open(data)
        form = learn_form_of(ds.documents("train"), ds.vocab)
        model = dataclasses.replace(model, meta={**model.meta, "form": form.to_dict()})
        rep = evaluate(model, data_dir=data, ngram=False)
        row = {
            "bits_per_note": rep.bits_per_note,
            "context": rep.context,
            "steps": model.meta.get("global_step"),
            "settings": {},
        }
        for setting in ns.settings.split(","):
            t, p, r, f = ([float(x) for x in setting.split(":")] + [0.0, 0.0])[:4]
            t0 = time.perf_counter()
            cfg = GenerateConfig(
                num_samples=ns.pieces,
                unit="bars",
                length=ns.bars,
                temperature=t,
                top_p=p,
                repeat_bias=r,
                form_bias=f,
                seed=1,
            )
            songs, _ = generate_songs(model, cfg)
            gen = [M.piece_metrics(s.score) for s in songs]
            overlap = M.compare_to_reference(gen, real)
            row["settings"][setting] = {
                **{k: mean(gen, k) for k in FORM_KEYS},
                "overlap": {k: v["overlap"] for k, v in overlap.items()},
                "seconds": round(time.perf_counter() - t0, 1),
            }
        results["models"][name] = row
    (out / "form.json").write_text(json.dumps(M.jsonable(results), indent=2) + "\n")
    report(results)
    return 0


def report(results: dict) -> None:
    real = results["real"]
    print(
        f"{results['corpus']}: {results['real_pieces']} held-out pieces, first {results['bars']} bars; "
        + (
            f"models of {results['trained']}"
            if results.get("trained")
            else f"{results['minutes']:g} min of training per model {results['train_args']}"
        )
    )
    cols = ["distinct 4-grams", "longest repeat", "bars recur", "recur distance"]
    print(
        f"{'source':24s} {'bits/note':>9s} "
        + " ".join(f"{c:>16s}" for c in cols)
        + "  min overlap (feature)"
    )
    print(f"{'real (held out)':24s} {'':>9s} " + " ".join(f"{real[k]:16.3f}" for k in FORM_KEYS))
    for name, row in results["models"].items():
        for setting, g in row["settings"].items():
            cells = []
            for k in FORM_KEYS:
                ok = (
                    abs(g[k] - real[k]) <= 0.2 * abs(real[k])
                    if np.isfinite(g[k]) and np.isfinite(real[k])
                    else False
                )
                cells.append(f"{g[k]:14.3f}{' *' if ok else '  '}")
            worst = min(
                ((v, k) for k, v in g["overlap"].items() if v is not None),
                default=(float("nan"), "-"),
            )
            loops = " LOOPS" if g["longest_repeat_run"] >= 2 * real["longest_repeat_run"] else ""
            print(
                f"{name + ' ' + setting:24s} {row['bits_per_note']:9.3f} "
                + " ".join(cells)
                + f"  {worst[0]:.2f} ({worst[1]}){loops}"
            )
    print("(* within 20% of real music's mean)")


if __name__ == "__main__":
    sys.exit(main())
