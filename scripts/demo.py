"""The one-command demo: ingest the bundled corpus, fine-tune each model family's base
on it briefly (or, with no base shipped, train it from scratch), generate a song from
each, and build a comparison page from the pretrained models. Every step is an ordinary `musicgen` command, printed before it runs,
so the demo doubles as a tour of the CLI.

    python scripts/demo.py [--out work/demo] [--minutes 1.0]
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# sizes for a model trained from scratch, where no base is shipped (a fine-tune keeps its base's)
MODELS = {
    "gru": ["--hidden", "256", "--layers", "2"],
    "gru-attn": ["--hidden", "256", "--layers", "2"],
    "transformer": ["--hidden", "192", "--layers", "3", "--heads", "4", "--lr", "1e-3"],
}


def run(args: list[str]) -> None:
    cmd = [sys.executable, "-m", "musicgen", *args]
    print("\n$ musicgen " + " ".join(shlex.quote(a) for a in args), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("work/demo"))
    ap.add_argument("--minutes", type=float, default=1.0, help="training budget per model")
    ap.add_argument("--samples", type=int, default=2, help="comparison samples per model")
    ns = ap.parse_args()
    out = ns.out if ns.out.is_absolute() else ROOT / ns.out
    t0 = time.time()
    data = out / "data"
    run(["ingest", "data/midi", "--out", str(data)])
    from musicgen.train.init import base_path

    for name, size in MODELS.items():
        start = [] if base_path(name) else ["--init", "scratch", "--seq-len", "256", *size]
        run(
            [
                "train",
                "--data",
                str(data),
                "--model",
                name,
                "--out",
                str(out / "runs" / name),
                "--max-time",
                str(ns.minutes),
                "--epochs",
                "0",
                "--no-progress",
                *start,
            ]
        )
        run(
            [
                "generate",
                str(out / "runs" / name / "best.ckpt"),
                "--out",
                str(out / "songs" / f"{name}.mid"),
                "--bars",
                "16",
                "--temperature",
                "0.9",
                "--top-p",
                "0.95",
                "--seed",
                "1",
            ]
        )
    from musicgen.pretrained import pretrained_models

    shipped = pretrained_models()
    if shipped:
        checkpoints = [str(p) for p in shipped.values()]
        label = "pretrained models"
    else:
        checkpoints = [str(out / "runs" / name / "best.ckpt") for name in MODELS]
        label = "models trained just now (no pretrained models found)"
    page = out / "compare"
    run(
        [
            "compare",
            *checkpoints,
            "--data",
            str(data),
            "--out",
            str(page),
            "--samples",
            str(ns.samples),
            "--primer-bars",
            "4",
            "--bars",
            "8",
            "--seed",
            "7",
            "--temperature",
            "0.9",
            "--top-p",
            "0.95",
        ]
    )
    minutes = (time.time() - t0) / 60
    print(f"\nDone in {minutes:.1f} min.")
    print(f"Songs from the models trained just now: {out / 'songs'}")
    print(f"Listen and compare ({label}): open {page / 'index.html'} in a browser")
    return 0


if __name__ == "__main__":
    sys.exit(main())
