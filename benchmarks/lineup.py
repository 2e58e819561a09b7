"""Do generated songs keep a band? Instruments in the first 32 s, generated beside real.

    python benchmarks/lineup.py CORPUS [--minutes 5] [--songs 8] [--seconds 32]

Ingests CORPUS (a folder of multi-track MIDI), trains a transformer for
`--minutes`, generates `--songs` songs of `--seconds` seconds with the default
sampling settings, and prints for each song, generated and real (the first
`--seconds` of every corpus file): how many instruments play (drums count as
one), and for each the share of the song's 2-second windows in which it sounds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from form import FIXED_SIZES  # noqa: E402 - the 5-minute sizes, stated once (benchmarks/form.py)

WINDOW = 2.0  # seconds


def lineup(score, seconds: float) -> dict[str, float]:
    """instrument -> share of the first `seconds` (in WINDOW-second windows) in which it sounds."""
    n = score.notes
    start = score.quarters_to_seconds(n["start"])
    end = score.quarters_to_seconds(n["start"] + n["duration"])
    windows = int(np.ceil(seconds / WINDOW))
    out = {}
    names = np.where(n["drum"], "drums", n["program"].astype(str))
    for name in np.unique(names[start < seconds]):
        mine = names == name
        sounding = {
            int(w)
            for s, e in zip(start[mine], end[mine], strict=True)
            if s < seconds
            for w in range(int(s // WINDOW), min(int(np.ceil(max(e, s + 1e-3) / WINDOW)), windows))
        }
        out[str(name)] = len(sounding) / windows
    return out


def describe(label: str, lineups: list[dict[str, float]]) -> None:
    counts = [len(u) for u in lineups]
    shares = [s for u in lineups for s in u.values()]
    print(
        f"{label}: instruments per song {min(counts)}-{max(counts)} (median {np.median(counts):g}); "
        f"share of windows each sounds: median {np.median(shares):.0%}, under 10%: {np.mean(np.array(shares) < 0.1):.0%}"
    )
    for u in lineups:
        print(
            "   " + ", ".join(f"{k} {v:.0%}" for k, v in sorted(u.items(), key=lambda kv: -kv[1]))
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--songs", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=32.0)
    ns = ap.parse_args()

    from musicgen.checkpoint import load_model
    from musicgen.config import GenerateConfig
    from musicgen.data.ingest import discover
    from musicgen.generate import generate_songs
    from musicgen.midi.read import read_score

    real = [lineup(read_score(f.path), ns.seconds) for f in discover([ns.corpus])]
    with tempfile.TemporaryDirectory() as tmp:
        data, run = Path(tmp) / "data", Path(tmp) / "run"
        mg = [sys.executable, "-m", "musicgen"]
        subprocess.run(
            [*mg, "ingest", str(ns.corpus), "--out", str(data), "--val-fraction", "0"], check=True
        )
        subprocess.run(
            [
                *mg,
                "train",
                "--data",
                str(data),
                "--model",
                "transformer",
                "--out",
                str(run),
                "--max-time",
                str(ns.minutes),
                *FIXED_SIZES["transformer"],
                "--no-progress",
            ],
            check=True,
        )
        model = load_model(run / "best.ckpt")
        songs, _ = generate_songs(
            model, GenerateConfig(num_samples=ns.songs, unit="seconds", length=ns.seconds, seed=1)
        )
    describe(f"real (first {ns.seconds:g} s of {len(real)} files)", real)
    describe(
        f"generated ({len(songs)} songs of {ns.seconds:g} s)",
        [lineup(s.score, ns.seconds) for s in songs],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
