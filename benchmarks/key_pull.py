"""How hard the key `--prior corpus` draws should pull: pieces against held-out real ones.

    python benchmarks/key_pull.py DATA MODEL [MODEL ...] [--pulls 0,1,2,3] [--samples 16]
        [--bars 32] [--json OUT.json]

Each MODEL (trained on DATA, a folder `musicgen ingest` wrote) draws `--samples` pieces of
`--bars` bars at the default settings (`--prior corpus`: a line-up and a key drawn from the
corpus for each), the drawn key pulling at each of `--pulls` (the cap `DRAWN_KEY_PULL`
lifted), and each set is compared with DATA's held-out pieces: how many of the overlap
areas of `musicgen metrics --reference` reach 0.7, and the pitch-class entropy and scale
consistency areas (the two the pull moves most); and the share of pieces whose key
(Krumhansl-Schmuckler) is the one drawn, as written (a piece in the drawn key's mode on
another tonic moved into it: `--key-move`) and as the model drew it, with the areas of the
pieces as drawn.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET = 0.7


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--pulls", default="0,1,2,3")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--bars", type=int, default=32)
    ap.add_argument("--json", type=Path)
    ns = ap.parse_args()

    import musicgen.generate.songs as songs
    from musicgen.analysis.key import estimate_key
    from musicgen.checkpoint import load_model
    from musicgen.config import GenerateConfig
    from musicgen.config.controls import parse_key
    from musicgen.listen import metrics as M

    def areas(scores) -> dict:
        made = [M.piece_metrics(s) for s in scores]
        return {k: v["overlap"] for k, v in M.compare_to_reference(made, real).items()}

    def met(ov: dict) -> int:
        return sum(1 for v in ov.values() if v is not None and v >= TARGET)

    def in_key(scores, drawn) -> float:
        return sum(
            k is not None and estimate_key(s) == parse_key(k)
            for s, k in zip(scores, drawn, strict=True)
        ) / len(scores)

    songs.DRAWN_KEY_PULL = math.inf  # each pull as given
    real = [M.piece_metrics(s) for _, s in M.load_corpus(ns.data, "val")[0]]
    out = {}
    for path in ns.models:
        model = load_model(path)
        for pull in (float(p) for p in ns.pulls.split(",")):
            cfg = GenerateConfig(
                num_samples=ns.samples, unit="bars", length=ns.bars, seed=1, key_pull=pull
            )
            made = songs.generate_songs(model, cfg)[0]
            drawn = [s.drawn["key"] for s in made]
            written = [s.score for s in made]
            as_drawn = [s.score.transposed(-s.moved) for s in made]
            ov, raw = areas(written), areas(as_drawn)
            out[f"{path}@{pull:g}"] = {
                "overlap": ov,
                "overlap_as_drawn": raw,
                "in_drawn_key": in_key(written, drawn),
                "in_drawn_key_as_drawn": in_key(as_drawn, drawn),
            }
            print(
                f"{path} pull {pull:g}: {met(ov)} of {len(ov)} areas >= {TARGET} "
                f"({met(raw)} as drawn); pitch-class entropy {ov['pitch_class_entropy']:.2f}, "
                f"scale consistency {ov['scale_consistency']:.2f}; in the drawn key "
                f"{in_key(written, drawn):.0%} ({in_key(as_drawn, drawn):.0%} as drawn)",
                flush=True,
            )
    if ns.json is not None:
        ns.json.write_text(json.dumps(M.jsonable(out), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
