"""Fine-tuned from the base against trained from scratch, on a corpus the base never saw.

    python benchmarks/finetune.py CORPUS [--pieces 100] [--minutes 5]
        [--models gru,gru-attn,transformer] [--bases checkpoints/base] [--parallel]
        [--exclude OVERLAP.tsv] [--samples 16] [--bars 32] [--seconds 32] [--no-entry-guard]
        [--no-drawn-texture]
        [--out work/finetune]

CORPUS is a folder of music. Its files are split as `musicgen ingest` splits them (by
the hash of each path, a tenth held out), and `--pieces` training files are drawn
(seeded) from the rest: the same training pieces and the same held-out pieces for every
run. For each model family, two runs of the same wall time (`--minutes`) on that data:

* scratch: `musicgen train --init scratch --max-time M` (sized by budget, as by default);
* fine-tuned: `musicgen train --init base --max-time M` from the family's base;

and the base alone (zero-shot, no training on the corpus). Each is scored on the
held-out pieces in bits per note (beside a Kneser-Ney n-gram fitted on the same training
pieces), and draws `--samples` pieces of `--bars` bars that are compared with the
held-out pieces: every overlap area of `musicgen metrics --reference` (how many reach
0.7), and the line-up of the first `--seconds` seconds (instruments playing, and the
share of pieces with drums), beside the held-out pieces' own.

Run it on a quiet machine: the runs are budgeted by wall time (with --parallel the two
runs of a family train side by side, one core each, so they share the machine alike). Results go to
OUT/finetune.json (finetune-no-entry-guard.json with --no-entry-guard, -no-drawn-texture
with --no-drawn-texture; both: finetune-no-entry-guard-no-drawn-texture.json) and a table to the
terminal.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from form import train_args as form_train_args  # noqa: E402 - one `musicgen train` of a benchmark
from lineup import lineup  # noqa: E402 - one definition of a song's line-up

OVERLAP_TARGET = 0.7


def mg(*args: str, env: dict | None = None) -> None:
    subprocess.run(
        [sys.executable, "-m", "musicgen", *args],
        check=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def train_all(todo: list[list[str]], env: dict, parallel: bool) -> None:
    """Run each `musicgen` command line in `todo`: one after another, or (`parallel`) side
    by side on a core each, so runs of the same wall time share the machine alike."""
    if not parallel:
        for args in todo:
            mg(*args, env=env)
        return
    env1 = {**os.environ, **env, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen([sys.executable, "-m", "musicgen", *a], cwd=ROOT, env=env1) for a in todo
    ]
    if any(p.wait() for p in procs):
        raise SystemExit("a training run failed")


def subset(corpus: Path, pieces: int, out: Path, seed: int = 0, exclude=()) -> Path:
    """A folder of links: `pieces` training files drawn from CORPUS and every held-out
    file, under their own relative paths, so ingesting it splits them as CORPUS's are;
    the files named in `exclude` left out of both."""
    from musicgen.data.sources import discover, split_of

    files = [f for f in discover([corpus]) if Path(f.rel).name not in set(exclude)]
    val = [f for f in files if split_of(f.rel, 0.1) == "val"]
    train = [f for f in files if split_of(f.rel, 0.1) == "train"]
    random.Random(seed).shuffle(train)
    if pieces > len(train):
        raise SystemExit(f"{corpus} has {len(train)} training files, fewer than {pieces}")
    folder = out / f"corpus-{pieces}"
    if folder.exists():
        shutil.rmtree(folder)
    for f in train[:pieces] + val:
        link = folder / f.rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path(f.path).resolve())
    return folder


def ingest_subset(corpus: Path, pieces: int, out: Path, exclude_tsv: Path | None) -> Path:
    """OUT/data: `subset`'s pieces of CORPUS ingested; `exclude_tsv`'s first column names
    files to leave out (tunes a base knows in another transcription)."""
    out.mkdir(parents=True, exist_ok=True)
    exclude = []
    if exclude_tsv is not None:
        exclude = [line.split("\t")[0] for line in exclude_tsv.read_text().splitlines()[1:] if line]
    mg("ingest", str(subset(corpus, pieces, out, exclude=exclude)), "--out", str(out / "data"))
    return out / "data"


def train_args(data: Path, name: str, init: str, run: Path, ns) -> list[str]:
    return [*form_train_args(data, name, run, ns.minutes), "--init", init, *ns.train_args.split()]


def measure(model, data: Path, real: list, ns, **generate) -> dict:
    """Bits per note on the held-out pieces, and the pieces it draws (GenerateConfig's
    defaults, but for `generate`) against the real ones."""
    from musicgen.config import GenerateConfig
    from musicgen.evaluate import evaluate
    from musicgen.generate import generate_songs
    from musicgen.listen import metrics as M

    rep = evaluate(model, data_dir=data, ngram=False)
    cfg = GenerateConfig(num_samples=ns.samples, unit="bars", length=ns.bars, seed=1, **generate)
    songs, _ = generate_songs(model, cfg)
    gen = [M.piece_metrics(s.score) for s in songs]
    overlap = {k: v["overlap"] for k, v in M.compare_to_reference(gen, real).items()}
    lineups = [lineup(s.score, ns.seconds) for s in songs]
    return {
        "bits_per_note": rep.bits_per_note,
        "overlap": overlap,
        "overlaps_met": sum(1 for v in overlap.values() if v is not None and v >= OVERLAP_TARGET),
        "instruments": [len(u) for u in lineups],
        "drums": float(np.mean(["drums" in u for u in lineups])),
        "shares": [share for u in lineups for share in u.values()],
        "steady": [sum(share >= 0.5 for share in u.values()) for u in lineups],
        "size": f"{model.model_cfg.d_model} wide, {model.model_cfg.n_layers} layers",
        "steps": model.meta.get("global_step"),  # of the checkpoint drawn from
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--pieces", type=int, default=100)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--models", default="gru,gru-attn,transformer")
    ap.add_argument("--bases", type=Path, default=ROOT / "checkpoints" / "base")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--bars", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=32.0)
    ap.add_argument("--train-args", default="", help="added to every `musicgen train`")
    ap.add_argument(
        "--parallel",
        action="store_true",
        help="train scratch and fine-tuned side by side, one core each (same wall time)",
    )
    ap.add_argument(
        "--exclude",
        type=Path,
        help="a TSV whose first column names corpus files to leave out (tunes a base knows in another transcription)",
    )
    ap.add_argument(
        "--no-entry-guard",
        action="store_true",
        help="draw the pieces without the entry guard (runs already trained are measured again, not retrained)",
    )
    ap.add_argument(
        "--no-drawn-texture",
        action="store_true",
        help="draw the pieces without the texture --prior corpus draws (runs already trained are measured again)",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "work" / "finetune")
    ns = ap.parse_args()

    from musicgen.checkpoint import load_model
    from musicgen.data.dataset import TokenDataset
    from musicgen.evaluate import evaluate
    from musicgen.listen import metrics as M

    out = ns.out / f"{ns.corpus.name}-{ns.pieces}"
    data = ingest_subset(ns.corpus, ns.pieces, out, ns.exclude)
    ds = TokenDataset.open(data)
    real_scores = [s for _, s in M.load_corpus(data, "val")[0]]
    real = [M.piece_metrics(s) for s in real_scores]
    real_lineups = [lineup(s, ns.seconds) for s in real_scores]
    results = {
        "corpus": str(ns.corpus),
        "pieces": ns.pieces,
        "held_out": len(real),
        "minutes": ns.minutes,
        "seconds": ns.seconds,
        "real": {
            "instruments": [len(u) for u in real_lineups],
            "drums": float(np.mean(["drums" in u for u in real_lineups])),
            "shares": [share for u in real_lineups for share in u.values()],
            "steady": [sum(share >= 0.5 for share in u.values()) for u in real_lineups],
        },
        # the training pieces' too: with the held-out ones, the corpus's range
        "train_instruments": [
            len(lineup(s, ns.seconds)) for _, s in M.load_corpus(data, "train")[0]
        ],
        "models": {},
    }
    env = {"MUSICGEN_BASES": str(ns.bases)}
    for name in ns.models.split(","):
        row = {}
        base = load_model(ns.bases / name)
        # zero-shot: the base reads the held-out files in its own encoding
        val_files = [ns.corpus / e["path"] for e in ds.index["files"] if e["split"] == "val"]
        zero = evaluate(base, data_dir=data, sources=val_files, ngram=True)
        row["zero_shot"] = {"bits_per_note": zero.bits_per_note}
        results["ngram"] = zero.ngram_bits_per_note
        runs = {init: out / f"{name}-{init}" for init in ("scratch", "base")}
        todo = [
            train_args(data, name, init, run, ns)
            for init, run in runs.items()
            if not (run / "best.ckpt").exists()
        ]
        train_all(todo, env, ns.parallel)
        for init, run in runs.items():
            model = load_model(run / "best.ckpt")
            row[init] = measure(
                model,
                data,
                real,
                ns,
                entry_guard=not ns.no_entry_guard,
                drawn_texture=not ns.no_drawn_texture,
            )
        results["models"][name] = row
        name_json = (
            "finetune"
            + ("-no-entry-guard" if ns.no_entry_guard else "")
            + ("-no-drawn-texture" if ns.no_drawn_texture else "")
            + ".json"
        )
        (out / name_json).write_text(json.dumps(M.jsonable(results), indent=2) + "\n")
    report(results)
    return 0


def report(r: dict) -> None:
    print(
        f"{r['corpus']}: {r['pieces']} training pieces, {r['held_out']} held out, "
        f"{r['minutes']:g} min a run; n-gram {r.get('ngram', float('nan')):.3f} bits/note; "
        f"real line-up {np.mean(r['real']['instruments']):.1f} instruments, "
        f"drums in {r['real']['drums']:.0%}"
    )
    print(
        f"{'model':12s} {'base alone':>10s} {'scratch':>8s} {'fine-tuned':>10s} {'ratio':>6s}"
        f"  overlaps>=0.7 scratch/tuned  instruments scratch/tuned  drums scratch/tuned"
    )
    real = r["real"]
    lo, hi = min(real["instruments"]), max(real["instruments"])
    every = real["instruments"] + r.get("train_instruments", [])
    clo, chi = min(every), max(every)
    table, lineups = [], []  # per model: its line in the table, and in the line-ups below it
    for name, row in r["models"].items():
        s, t = row["scratch"], row["base"]
        table.append(
            f"{name:12s} {row['zero_shot']['bits_per_note']:10.3f} {s['bits_per_note']:8.3f} "
            f"{t['bits_per_note']:10.3f} {t['bits_per_note'] / s['bits_per_note']:6.3f}"
            f"  {s['overlaps_met']:>2d}/{t['overlaps_met']:<2d} of {len(s['overlap'])}"
            f"          {np.mean(s['instruments']):.1f}/{np.mean(t['instruments']):.1f}"
            f"           {s['drums']:.0%}/{t['drums']:.0%}"
        )
        lineups.append(
            f"{name:12s} in range {in_range(s, lo, hi)}/{in_range(t, lo, hi)} and "
            f"{in_range(s, clo, chi)}/{in_range(t, clo, chi)} of {len(t['instruments'])}; "
            f"sounding scratch {sounding(s)}, fine-tuned {sounding(t)}"
        )
    print("\n".join(table))
    print(
        f"line-up of the first {r.get('seconds', 32):g} s: songs with {lo}-{hi} instruments (the "
        f"held-out songs' range) and {clo}-{chi} (the whole corpus's); how long each instrument "
        f"sounds, as the share of 2-s windows (median, and the share of instruments under "
        f"10%), and instruments sounding in at least half of them (mean a song): real "
        f"{sounding(real)}"
    )
    print("\n".join(lineups))


def in_range(run: dict, lo: int, hi: int) -> int:
    return sum(lo <= n <= hi for n in run["instruments"])


def sounding(run: dict) -> str:
    shares = np.asarray(run.get("shares") or [np.nan])
    steady = np.mean(run.get("steady") or [np.nan])
    return f"{np.median(shares):.0%} ({np.mean(shares < 0.1):.0%} under 10%), {steady:.1f} steady"


if __name__ == "__main__":
    sys.exit(main())
