"""Do the controls steer? Asked levels against the levels measured in what comes out.

    python benchmarks/controls.py MODEL [MODEL ...] [--pieces 32] [--bars 8] [--data DIR]
        [--key-pulls 0,3] [--guidance G] [--keys-only | --sweep-only [--title T]]
        [--out work/controls]

Each MODEL (a checkpoint or exported folder trained with controls) generates, from
scratch and at the default sampling settings, `--pieces` pieces of `--bars` bars for:

* each attribute (density, polyphony, register, dynamics) at each of its 5 levels, the
  same level every bar: the share of bars whose measured level (musicgen/analysis/bars.py,
  cut at the model's own levels) is within one of the one asked;
* each of 8 keys (C, G, D, F# major; A, E, D, Bb minor), at each `--key-pulls` strength
  (`--key-pull`; 0 is the learnt Key token alone): the share of pieces whose key measured
  (Krumhansl-Schmuckler) is the one asked, as `generate` writes them (a piece in the mode
  asked on another tonic moved into the key: `--key-move`), and before that move;
* a sweep of density from level 1 to 5 over the bars (1,1,2,3,4,5,5,5): the mean
  measured density per bar, which should rise; drawn to OUT/sweep.png (with
  `--sweep-only`, nothing else is measured).

Every draw is guided by `--guidance` (classifier-free guidance on the controls asked
for; by default as `generate` guides, 0 is off).

With `--data` (the dataset the model trained on, or one like it) the held-out bits per
note without any control are printed too (`musicgen evaluate`), and how often the key
measured on the first `--bars` bars of a held-out real piece is its whole piece's key: the
most the key measure can say of `--bars` bars; and the accuracy over only the levels the
held-out bars reach (at least 5% of them): a corpus played at one velocity has one
level of dynamics, and asking its model for the others asks for what it never heard.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KEYS = ("C major", "G major", "D major", "F# major", "A minor", "E minor", "D minor", "Bb minor")
SWEEP = (1, 1, 2, 3, 4, 5, 5, 5)


def bar_levels(score, attribute: str, edges: list[float], bars: int) -> np.ndarray:
    """The measured level (1..5, 0 where nothing to measure) of each of the first `bars` bars."""
    from musicgen.analysis.bars import bar_features, levels

    values = bar_features(score)[attribute][:bars]
    return levels(values, np.asarray(edges)) + 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--pieces", type=int, default=32)
    ap.add_argument("--bars", type=int, default=8)
    ap.add_argument("--data", type=Path)
    ap.add_argument(
        "--key-pulls", default="0,3", help="--key-pull strengths to measure the keys at"
    )
    ap.add_argument(
        "--guidance", type=float, default=None, help="--guidance of every draw [generate's]"
    )
    only = ap.add_mutually_exclusive_group()
    only.add_argument("--keys-only", action="store_true", help="measure the keys alone")
    only.add_argument("--sweep-only", action="store_true", help="draw the density sweep alone")
    ap.add_argument("--title", default="", help="the sweep plot's title")
    ap.add_argument("--out", type=Path, default=ROOT / "work" / "controls")
    ns = ap.parse_args()

    from musicgen.analysis.bars import bar_features
    from musicgen.analysis.key import estimate_key
    from musicgen.checkpoint import load_model
    from musicgen.config import GenerateConfig
    from musicgen.config.controls import BAR_CONTROLS, LEVELS, key_name, parse_key
    from musicgen.config.generation import guidance_of
    from musicgen.generate import generate_songs

    ns.out.mkdir(parents=True, exist_ok=True)
    results = {}
    for path in ns.models:
        model = load_model(path)
        edges = (model.meta.get("controls") or {}).get("edges")
        if not edges:
            raise SystemExit(f"{path} was trained without controls")
        base = GenerateConfig(
            num_samples=ns.pieces, unit="bars", length=ns.bars, seed=7, guidance=ns.guidance
        )
        row = {"guidance": guidance_of(base), "accuracy": {}, "per_level": {}, "keys": {}}
        some = ns.keys_only or ns.sweep_only  # one measure alone
        real = real_levels(ns.data, edges) if ns.data is not None and not some else None
        for a in () if some else BAR_CONTROLS:
            per_level = []
            for level in range(1, LEVELS + 1):
                songs, _ = generate_songs(model, GenerateConfig(**{**vars(base), a: (level,)}))
                got = np.concatenate([bar_levels(s.score, a, edges[a], ns.bars) for s in songs])
                got = got[got > 0]
                per_level.append((int((np.abs(got - level) <= 1).sum()), len(got)))
            row["per_level"][a] = [h / max(n, 1) for h, n in per_level]
            row["accuracy"][a] = sum(h for h, _ in per_level) / max(sum(n for _, n in per_level), 1)
            if real is not None:  # only the levels the corpus's own bars reach
                reach = [lvl for lvl in range(1, LEVELS + 1) if real[a][lvl - 1] >= REACHED]
                row.setdefault("reached", {})[a] = reach
                kept = [per_level[lvl - 1] for lvl in reach]
                row.setdefault("accuracy_reached", {})[a] = sum(h for h, _ in kept) / max(
                    sum(n for _, n in kept), 1
                )
        for pull in () if ns.sweep_only else (float(p) for p in ns.key_pulls.split(",")):
            found_at = row["keys"][f"{pull:g}"] = {}
            for key in KEYS:
                cfg = GenerateConfig(**{**vars(base), "key": key, "key_pull": pull})
                songs = generate_songs(model, cfg)[0]
                found = [estimate_key(s.score) for s in songs]
                unmoved = [estimate_key(s.score.transposed(-s.moved)) for s in songs]
                found_at[key] = {
                    "share": float(np.mean([k == parse_key(key) for k in found])),
                    "share_unmoved": float(np.mean([k == parse_key(key) for k in unmoved])),
                    "found": [key_name(k) if k is not None else None for k in found],
                }
        if ns.keys_only:
            results[str(path)] = row
            report_keys(path, row)
            continue
        songs, _ = generate_songs(model, GenerateConfig(**{**vars(base), "density": SWEEP}))
        dens = np.array(
            [
                bar_features(s.score)["density"][: ns.bars]
                for s in songs
                if len(bar_features(s.score)["density"]) >= ns.bars
            ]
        )
        row["sweep"] = {
            "asked": list(SWEEP),
            "measured": dens.mean(axis=0).tolist() if len(dens) else [],
        }
        if ns.data is not None and not ns.sweep_only:
            from musicgen.evaluate import evaluate

            row["bits_per_note"] = evaluate(model, data_dir=ns.data, ngram=False).bits_per_note
            row["key_ceiling"] = key_ceiling(ns.data, ns.bars)
        results[str(path)] = row
        print(f"{path} (--guidance {guidance_of(base):g}):")
        if row["accuracy"]:
            print(
                "  within one level: "
                + ", ".join(f"{a} {v:.0%}" for a, v in row["accuracy"].items())
            )
        if "accuracy_reached" in row:
            print(
                "  over the levels the held-out bars reach: "
                + ", ".join(
                    f"{a} {v:.0%} (levels {','.join(map(str, row['reached'][a]))})"
                    for a, v in row["accuracy_reached"].items()
                )
            )
        report_keys(path, row, header=False)
        print(
            "  density sweep "
            + " ".join(map(str, SWEEP))
            + ": measured "
            + " ".join(f"{v:.1f}" for v in row["sweep"]["measured"])
        )
        if "bits_per_note" in row:
            print(f"  held-out bits/note with no control: {row['bits_per_note']:.3f}")
            print(
                f"  held-out real pieces whose first {ns.bars} bars are in the piece's key: "
                f"{row['key_ceiling']:.0%}"
            )
    (ns.out / "controls.json").write_text(json.dumps(results, indent=2) + "\n")
    if not ns.keys_only:
        plot(results, ns.out / "sweep.png", ns.title)
    return 0


REACHED = 0.05  # a level the corpus's bars reach: at least this share of them


def real_levels(data: Path, edges: dict) -> dict:
    """Per attribute, the share of the held-out bars at each level (cut at `edges`): a
    corpus whose bars are alike (one velocity throughout, say) reaches few of the levels,
    and a level it never reaches is one its model never heard."""
    from musicgen.analysis.bars import bar_features, levels
    from musicgen.config.controls import BAR_CONTROLS, LEVELS
    from musicgen.data.dataset import TokenDataset
    from musicgen.tokens.decoding import decode

    ds = TokenDataset.open(data)
    found = {a: [] for a in BAR_CONTROLS}
    for doc in ds.documents("val"):
        feats = bar_features(decode(ds.vocab.to_universal(np.asarray(doc)), ds.vocab.cfg)[0])
        for a in BAR_CONTROLS:
            lv = levels(feats[a], np.asarray(edges[a]))
            found[a].append(lv[lv >= 0])
    return {
        a: (np.bincount(np.concatenate(v), minlength=LEVELS) / max(sum(map(len, v)), 1)).tolist()
        for a, v in found.items()
    }


def report_keys(path: Path, row: dict, header: bool = True) -> None:
    if header:
        print(f"{path} (--guidance {row['guidance']:g}):")
    for pull, found_at in row["keys"].items():
        shares = [v["share"] for v in found_at.values()]
        unmoved = [v["share_unmoved"] for v in found_at.values()]
        print(
            f"  key as asked, --key-pull {pull}: "
            + ", ".join(f"{k} {v['share']:.0%}" for k, v in found_at.items())
            + f"; mean {np.mean(shares):.0%} ({np.mean(unmoved):.0%} before --key-move)"
        )


def key_ceiling(data: Path, bars: int) -> float:
    """The share of the held-out pieces (of `bars` bars or more) whose first `bars` bars
    measure as the whole piece's key."""
    from musicgen.analysis.key import estimate_key
    from musicgen.data.dataset import TokenDataset
    from musicgen.tokens.decoding import decode

    ds = TokenDataset.open(data)
    same = []
    for doc in ds.documents("val"):
        score, _ = decode(ds.vocab.to_universal(np.asarray(doc)), ds.vocab.cfg)
        lines = score.bar_lines()
        if len(lines) > bars and estimate_key(score) is not None:
            same.append(estimate_key(score.until(lines[bars])) == estimate_key(score))
    return float(np.mean(same)) if same else float("nan")


def label(path: str) -> str:
    """A model's name in the plot: its folder's (a training run's `best.ckpt` says nothing)."""
    p = Path(path)
    return p.parent.name if p.suffix == ".ckpt" else p.name


def plot(results: dict, path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for name, row in results.items():
        m = row["sweep"]["measured"]
        ax.plot(range(1, len(m) + 1), m, marker="o", label=label(name))
    ax.set_ylim(bottom=0)
    ax2 = ax.twinx()
    ax2.step(
        range(1, len(SWEEP) + 1), SWEEP, where="mid", color="#999999", ls="--", label="level asked"
    )
    ax2.set_ylabel("density level asked (dashed)")
    ax2.set_ylim(0.5, 5.5)
    ax.set_xlabel("bar")
    ax.set_ylabel("notes starting in the bar\n(mean over the pieces)")
    lines, labels = ax.get_legend_handles_labels()
    more, asked = ax2.get_legend_handles_labels()
    ax.legend(lines + more, labels + asked, loc="upper left", fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
