"""Do the models recycle notes? Repetition of generated pieces beside real music.

    python benchmarks/repetition.py CHECKPOINT... [--data work/bach] [--pieces 20] [--notes 200]

For each checkpoint, at temperature 0.7 and 1.0 with top-p 0.9 and 1.0 (and
greedy decoding for contrast), generate `--pieces` pieces of `--notes` notes
from scratch and report the share of distinct 4-note pitch n-grams (1.0 = no
4-note figure ever comes back) and the longest run of one repeated pattern
(period 1-8 notes), beside the same figures for the first `--notes` notes of
each held-out piece. With no checkpoint given it uses the pretrained models.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = [(0.0, 1.0), (0.7, 0.9), (0.7, 1.0), (1.0, 0.9), (1.0, 1.0)]


def stats(pitch_seqs: list[np.ndarray]) -> dict:
    from musicgen.listen.metrics import repetition

    shares, runs = zip(*(repetition(p) for p in pitch_seqs), strict=True)
    return {
        "distinct_4gram_share": round(float(np.mean(shares)), 3),
        "longest_repeat_run_mean": round(float(np.mean(runs)), 1),
        "longest_repeat_run_max": int(np.max(runs)),
        "pieces": len(pitch_seqs),
    }


def real_music(data: Path, notes: int) -> list[np.ndarray]:
    from musicgen.data.dataset import TokenDataset
    from musicgen.listen.metrics import pitch_sequence
    from musicgen.tokens.encoding import decode

    ds = TokenDataset.open(data)
    out = []
    for doc in ds.documents("val"):
        score, _ = decode(ds.vocab.to_universal(np.asarray(doc)), ds.vocab.cfg)
        out.append(pitch_sequence(score)[:notes])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="*", type=Path)
    ap.add_argument("--data", type=Path, default=ROOT / "work" / "bach")
    ap.add_argument("--pieces", type=int, default=20)
    ap.add_argument("--notes", type=int, default=200)
    ap.add_argument("--json", type=Path)
    ns = ap.parse_args()

    from musicgen.checkpoint import load_model
    from musicgen.generate import GenerateConfig, generate_songs
    from musicgen.listen.metrics import pitch_sequence
    from musicgen.pretrained import pretrained_models

    ckpts = ns.checkpoints or list(pretrained_models().values())
    if not ckpts:
        print("no checkpoints given and no pretrained models found", file=sys.stderr)
        return 2
    if not (ns.data / "index.json").exists():
        from musicgen.data.ingest import ingest

        ingest([ROOT / "data" / "midi"], ns.data)
    results: dict = {
        "notes": ns.notes,
        "pieces": ns.pieces,
        "real": stats(real_music(ns.data, ns.notes)),
        "models": {},
    }
    r = results["real"]
    print(f"{'source':14s} {'T':>4s} {'top-p':>5s}  distinct 4-grams  longest repeat (mean / max)")
    print(
        f"{'held-out real':14s} {'':>4s} {'':>5s}  {r['distinct_4gram_share']:16.3f}  {r['longest_repeat_run_mean']:6.1f} / {r['longest_repeat_run_max']}"
    )
    for ck in ckpts:
        model = load_model(ck)
        name = model.model_cfg.name
        results["models"][name] = {}
        for temp, top_p in SETTINGS:
            t = time.perf_counter()
            cfg = GenerateConfig(
                num_samples=ns.pieces,
                temperature=temp,
                top_p=top_p,
                seed=0,
                unit="notes",
                length=ns.notes,
            )
            songs, _ = generate_songs(model, cfg)
            s = stats([pitch_sequence(song.score)[: ns.notes] for song in songs])
            s["seconds"] = round(time.perf_counter() - t, 1)
            results["models"][name][f"T{temp:g}_p{top_p:g}"] = s
            label = "greedy" if temp == 0 else f"{temp:g}"
            print(
                f"{name:14s} {label:>6s} {top_p:5.2f}  {s['distinct_4gram_share']:16.3f}  {s['longest_repeat_run_mean']:6.1f} / {s['longest_repeat_run_max']}"
            )
    if ns.json:
        ns.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
