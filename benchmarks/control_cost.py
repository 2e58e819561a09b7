"""What learning the controls costs a model used without them.

    python benchmarks/control_cost.py CORPUS [--pieces 100] [--minutes 5] [--init scratch]
        [--models gru,gru-attn,transformer] [--share S] [--exclude OVERLAP.tsv] [--samples 16]
        [--bars 32] [--out work/control-cost]

For each model family, two runs of the same wall time on the same training pieces, side by
side on a core each (so they share the machine alike): one with `train`'s default share of
windows carrying control tokens (or `--share S`), one with `--controls 0`. Both start from `--init`
(scratch by default: a base has learnt the controls already). Each is scored with no
control given: bits per note on the held-out pieces, and `--samples` pieces of `--bars`
bars drawn with no control and nothing drawn from the corpus (`--prior model`: with
`--prior corpus` the arm with controls would be asked for a key), compared with the held-out
pieces (every overlap area of `musicgen metrics --reference`). Each arm sizes its model for
the budget on its own, as `train` does; the table says when the two sizes differ. The
corpus is split and drawn as benchmarks/finetune.py does. Results go to
OUT/control_cost.json and a table to the terminal.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from finetune import ingest_subset, measure, train_all  # noqa: E402 - the same runs and measures
from form import train_args  # noqa: E402 - one `musicgen train` of a benchmark

ARMS = {"controls": [], "none": ["--controls", "0"]}  # "controls": train's own default share


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--pieces", type=int, default=100)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--init", default="scratch")
    ap.add_argument("--models", default="gru,gru-attn,transformer")
    ap.add_argument("--share", type=float, help="the controls arm's --controls [train's default]")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--bars", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=32.0)  # measure() reads it
    ap.add_argument("--exclude", type=Path)
    ap.add_argument("--out", type=Path, default=ROOT / "work" / "control-cost")
    ns = ap.parse_args()

    from musicgen.checkpoint import load_model
    from musicgen.listen import metrics as M

    arms = {**ARMS, "controls": ["--controls", str(ns.share)] if ns.share is not None else []}
    share = f"-share{ns.share:g}" if ns.share is not None else ""
    out = ns.out / f"{ns.corpus.name}-{ns.pieces}-{ns.init}{share}"
    data = ingest_subset(ns.corpus, ns.pieces, out, ns.exclude)
    real = [M.piece_metrics(s) for _, s in M.load_corpus(data, "val")[0]]
    results = {"corpus": str(ns.corpus), "pieces": ns.pieces, "held_out": len(real)}
    results.update(minutes=ns.minutes, init=ns.init, share=ns.share, models={})
    for name in ns.models.split(","):
        runs = {arm: out / f"{name}-{arm}" for arm in arms}
        todo = [
            [*train_args(data, name, run, ns.minutes), "--init", ns.init, *arms[arm]]
            for arm, run in runs.items()
            if not (run / "best.ckpt").exists()
        ]
        train_all(todo, {}, parallel=True)
        # nothing drawn from the corpus either: `--prior corpus` would ask one arm for a key
        results["models"][name] = {
            arm: measure(load_model(run / "best.ckpt"), data, real, ns, prior="model")
            for arm, run in runs.items()
        }
        (out / "control_cost.json").write_text(json.dumps(M.jsonable(results), indent=2) + "\n")
    report(results)
    return 0


def report(r: dict) -> None:
    print(
        f"{r['corpus']}: {r['pieces']} training pieces, {r['held_out']} held out, "
        f"{r['minutes']:g} min a run from {r['init']}; controls in "
        f"{'the default share' if r.get('share') is None else format(r['share'], 'g')} of windows; "
        "scored with no control given"
    )
    print(
        f"{'model':12s} {'with':>7s} {'without':>8s} {'ratio':>6s}  overlaps>=0.7 with/without"
        "  areas lower with controls (by more than 0.05)"
    )
    for name, row in r["models"].items():
        w, n = row["controls"], row["none"]
        lower = [
            f"{k} {w['overlap'][k]:.2f}<{v:.2f}"
            for k, v in n["overlap"].items()
            if v is not None and w["overlap"].get(k) is not None and w["overlap"][k] < v - 0.05
        ]
        print(
            f"{name:12s} {w['bits_per_note']:7.3f} {n['bits_per_note']:8.3f} "
            f"{w['bits_per_note'] / n['bits_per_note']:6.3f}  {w['overlaps_met']:>2d}/{n['overlaps_met']:<2d}"
            f" of {len(w['overlap'])}  {', '.join(lower) or '-'}"
        )
        if w["size"] != n["size"]:
            print(f"  (sizes differ: {w['size']} with controls, {n['size']} without)")


if __name__ == "__main__":
    sys.exit(main())
