"""Infill and accompaniment: does each model use the after-part, at what cost, how fast?

    python benchmarks/infill.py [--data work/bach] [--midi data/midi]
        [--with DIR [--without DIR] | --minutes 5] [--models gru,gru-attn,transformer]
        [--pieces 40] [--bars 4] [--candidates 8] [--out work/infill]

Models: `--with` and `--without` are folders holding one checkpoint per model
(`<DIR>/<model>/`, exported or a training folder's best.ckpt), trained the same wall
time with and without `--infill` (without `--without`, the continuation cost is not
measured); otherwise each model is trained here for `--minutes` both ways. On
`--pieces` held-out pieces of `--data` (their files in `--midi`), a span of `--bars`
bars at a random bar line of each:

* infill / continuation: bits per note of the real middle given the before- and
  after-part (the infill layout), against the same middle given only the before-part,
  by the model trained to fill (target: at most 0.85x);
* continuation cost: held-out bits per note (`musicgen evaluate`) of the model
  trained with infilling against the one without (target: within 3%);
* seams: bits per note of the real after-part's first bar read after a generated
  middle, against after the real middle (target: within 10%); the middle is the first
  drawn (one candidate) or kept from `--candidates` (as `musicgen infill` does), and
  the bits are judged by the model itself and, since keeping a candidate asks that
  same model, also by the next model of the list (trained apart, on the same music),
  which took no part in writing or choosing it;
* accompaniment: the share of generated notes consonant with the kept top voice at
  their onsets (unison, third, fifth, sixth, octave), against the real lower voices'
  share (target: within 5 points);
* speed: seconds to infill 8 bars and to accompany 8 bars of melody, one sample, with
  the cache (target: under 5 s).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from musicgen.checkpoint import load_model  # noqa: E402
from musicgen.config import AccompanyConfig, GenerateConfig, InfillConfig  # noqa: E402
from musicgen.data.dataset import TokenDataset  # noqa: E402
from musicgen.evaluate import evaluate  # noqa: E402
from musicgen.generate.accompany import accompany_songs, top_voice  # noqa: E402
from musicgen.generate.infill import fill_middles, infill_songs  # noqa: E402
from musicgen.midi.read import read_score  # noqa: E402
from musicgen.midi.write import write_midi  # noqa: E402
from musicgen.tokens.fill import Timeline, layout, seams  # noqa: E402

CONSONANT = {0, 3, 4, 7, 8, 9}  # interval classes: unison/octave, thirds, fifth, sixths


def checkpoint_in(folder: Path, name: str) -> Path:
    d = folder / name
    return d / "best.ckpt" if (d / "best.ckpt").exists() else d


def train_both(ns) -> tuple[Path, Path]:
    out = Path(ns.out)
    for kind, extra in (("with", ["--infill", "0.5"]), ("without", [])):
        for name in ns.models:
            run = out / kind / name
            if (run / "best.ckpt").exists():
                continue
            subprocess.run(
                [sys.executable, "-m", "musicgen", "train", "--data", ns.data, "--model", name]
                + ["--out", str(run), "--max-time", str(ns.minutes), "--epochs", "0"]
                + ["--patience", "0", "--no-progress", *extra],
                check=True,
                cwd=ROOT,
            )
    return out / "with", out / "without"


def bits(model, ids: np.ndarray, lo: int, hi: int) -> tuple[float, int]:
    """Bits of tokens [lo, hi) of `ids` (compact), each given all before it; and the notes."""
    x = torch.from_numpy(ids[None, :-1].astype(np.int64))
    with torch.no_grad():
        logits, _ = model.core(x)
    logp = torch.log_softmax(logits[0].float(), dim=-1)
    pos = torch.arange(lo - 1, hi - 1)
    total = -logp[pos, torch.from_numpy(ids[lo:hi].astype(np.int64))].sum().item() / np.log(2)
    notes = int(np.isin(ids[lo:hi], model.vocab.note_ids).sum())
    return total, notes


def spans(ds, vocab, pieces: int, bars: int, rng) -> list[tuple[int, Timeline, int, int]]:
    """(index of the val file, its timeline, start, end) for up to `pieces` held-out pieces."""
    files = [k for k, e in enumerate(ds.index["files"]) if e["split"] == "val"]
    out = []
    for k, doc in zip(files, ds.documents("val"), strict=True):
        line = Timeline(ds.vocab.to_universal(doc), vocab)
        lines = line.bar_lines[line.bar_lines < int(line.before[-1])]  # music after the span
        if len(lines) < bars + 3:
            continue
        i = int(rng.integers(2, len(lines) - bars))
        out.append((k, line, int(lines[i]), int(lines[i + bars])))
        if len(out) == pieces:
            break
    return out


def layouts(line: Timeline, a: int, b: int, max_len: int, middle_ids=None):
    """The infill layout and the plain continuation of one span, in compact ids, cropped to
    the window alike; with the positions of the middle in each and of the after-part's first
    bar in the continuation."""
    vocab = line.vocab
    before, middle, after = line.parts(line.cut(a), line.cut(b))
    if middle_ids is not None:
        middle = middle_ids
    passage = layout(before, middle, after, vocab, b - a, max_len + 1)  # as training does
    fm, fa, fg = (seams(vocab)[k] for k in (1, 0, 3))
    lo = int(np.flatnonzero(passage == fm)[0]) + 1
    # the same music on either side, for the continuation
    before = passage[: int(np.flatnonzero(passage == fg)[0])]
    after = passage[int(np.flatnonzero(passage == fa)[0]) + 1 : lo - 1]
    fill = vocab.lookup[passage]
    plain = vocab.lookup[np.concatenate([before, middle, after]).astype(np.int64)]
    later = line.bar_lines[line.bar_lines > b]
    next_line = int(later[0]) if len(later) else line.end_step + 1
    cut = line.cut(b)  # the after-part's first bar: its tokens that begin before the next line
    first_bar = len(cut.right) + int((line.before[cut.hi :] < next_line).sum())
    first_bar = min(first_bar, len(after))
    return fill, (lo, lo + len(middle)), plain, len(before), len(middle), first_bar


def consonance(kept: np.ndarray, others: np.ndarray) -> float:
    """Share of `others` (pitched) consonant with the kept note sounding at their onset."""
    hits = total = 0
    for n in others[~others["drum"]]:
        sounding = (kept["start"] <= n["start"] + 1e-9) & (
            kept["start"] + kept["duration"] > n["start"] + 1e-9
        )
        if not sounding.any():
            continue
        top = int(kept["pitch"][sounding].max())
        total += 1
        hits += (top - int(n["pitch"])) % 12 in CONSONANT
    return hits / total if total else float("nan")


def seam_bits(model, line, a, b, T, middle) -> tuple[float, int]:
    """Bits and notes of the after-part's first bar read after `middle` (universal ids)."""
    _, _, plain, nb, nm, fb = layouts(line, a, b, T, middle)
    return bits(model, plain, nb + nm, nb + nm + fb)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", default="work/bach")
    ap.add_argument("--midi", default="data/midi", help="the files --data was ingested from")
    ap.add_argument("--with", dest="with_", type=Path)
    ap.add_argument("--without", type=Path)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--models", default="gru,gru-attn,transformer")
    ap.add_argument("--pieces", type=int, default=40)
    ap.add_argument("--bars", type=int, default=4)
    ap.add_argument(
        "--candidates",
        type=int,
        default=InfillConfig.candidates,
        help="middles drawn per version, as `musicgen infill --candidates`",
    )
    ap.add_argument("--accompany", type=int, default=12, help="held-out pieces to accompany")
    ap.add_argument("--out", default="work/infill")
    ns = ap.parse_args()
    ns.models = ns.models.split(",")
    torch.set_num_threads(2)
    with_dir, without_dir = (ns.with_, ns.without) if ns.with_ else train_both(ns)
    ds = TokenDataset.open(ns.data)
    results: dict = {"data": ns.data, "bars": ns.bars, "models": {}}
    for i, name in enumerate(ns.models):
        fill_model = load_model(checkpoint_in(with_dir, name))
        judge_name = ns.models[(i + 1) % len(ns.models)]
        judge = load_model(checkpoint_in(with_dir, judge_name))
        if not np.array_equal(judge.vocab.uids, fill_model.vocab.uids):  # ids would differ
            judge_name, judge = name, fill_model
        vocab, T = fill_model.vocab, fill_model.model_cfg.max_len
        rng = np.random.default_rng(0)
        chosen = spans(ds, vocab, ns.pieces, ns.bars, rng)
        sums = np.zeros(4)  # infill bits, notes; continuation bits, notes
        # seam bits per note after the real middle, the first drawn, the one kept of
        # --candidates; judged by the model itself and by the next one
        seams = {(m, j): [0.0, 0] for m in ("real", "first", "kept") for j in ("self", "other")}
        for k, (_, line, a, b) in enumerate(chosen):
            fill, (lo, hi), plain, nb, nm, fb = layouts(line, a, b, T)
            fb_bits = bits(fill_model, fill, lo, hi)
            cont = bits(fill_model, plain, nb, nb + nm)
            sums += [fb_bits[0], fb_bits[1], cont[0], cont[1]]
            cfg = GenerateConfig(num_samples=1, seed=k)
            middles = {
                "real": line.parts(line.cut(a), line.cut(b))[1],
                "first": fill_middles(fill_model, cfg, line, a, b)[0][0][:-1],
                "kept": fill_middles(fill_model, cfg, line, a, b, candidates=ns.candidates)[0][0][
                    :-1
                ],
            }
            for m, ids in middles.items():
                ids = ids if m == "real" else vocab.to_universal(ids)
                for j, scorer in (("self", fill_model), ("other", judge)):
                    got = seam_bits(scorer, line, a, b, scorer.model_cfg.max_len, ids)
                    seams[m, j][0] += got[0]
                    seams[m, j][1] += got[1]
        per_note = {key: v[0] / max(v[1], 1) for key, v in seams.items()}
        ev_fill = evaluate(fill_model, data_dir=ns.data, ngram=False).bits_per_note
        ev_plain = (
            evaluate(load_model(checkpoint_in(without_dir, name)), data_dir=ns.data, ngram=False)
            if without_dir
            else None
        )
        # accompaniment of the top voice, and the real lower voices' consonance with it
        real_c, gen_c = [], []
        val = [e["path"] for e in ds.index["files"] if e["split"] == "val"][: ns.accompany]
        for k, rel in enumerate(val):
            path = Path(ns.midi) / rel
            score = read_score(path)
            top = top_voice(score.notes)
            real_c.append(consonance(score.notes[top], score.notes[~top]))
            songs, _, _ = accompany_songs(
                fill_model, GenerateConfig(num_samples=1, seed=k), AccompanyConfig(str(path))
            )
            g = songs[0].score.notes
            kept = set(score.notes[top][["start", "pitch"]].tolist())
            new = np.array([row not in kept for row in g[["start", "pitch"]].tolist()], dtype=bool)
            gen_c.append(consonance(score.notes[top], g[new]))
        # speed: 8 bars, one sample, the cache on
        path = Path(ns.midi) / val[0]
        score = read_score(path)
        lines = score.bar_lines()
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            eight = InfillConfig(str(path), "bars", 2, 9, candidates=ns.candidates)
            infill_songs(fill_model, GenerateConfig(), eight)
            t_infill = time.perf_counter() - t
            t = time.perf_counter()
            infill_songs(fill_model, GenerateConfig(), replace(eight, candidates=1))
            t_infill_one = time.perf_counter() - t
            short = Path(tmp) / "eight.mid"
            write_midi(score.until(lines[8]) if len(lines) > 8 else score, short)
            t = time.perf_counter()
            accompany_songs(fill_model, GenerateConfig(), AccompanyConfig(str(short)))
            t_acc = time.perf_counter() - t
        r = {
            "spans": len(chosen),
            "candidates": ns.candidates,
            "judge": judge_name,
            "infill_bits_per_note": sums[0] / max(sums[1], 1),
            "continuation_bits_per_note": sums[2] / max(sums[3], 1),
            "heldout_with_infill": ev_fill,
            "heldout_without": ev_plain.bits_per_note if ev_plain else None,
            **{f"seam_{m}_middle_{j}": v for (m, j), v in per_note.items()},
            "consonance_real": float(np.nanmean(real_c)),
            "consonance_generated": float(np.nanmean(gen_c)),
            "seconds_infill_8_bars": t_infill,
            "seconds_infill_8_bars_one_candidate": t_infill_one,
            "seconds_accompany_8_bars": t_acc,
        }
        results["models"][name] = r
        print(name, json.dumps(r), flush=True)
    Path(ns.out).mkdir(parents=True, exist_ok=True)
    (Path(ns.out) / "infill.json").write_text(json.dumps(results, indent=2) + "\n")
    report(results)
    return 0


def report(results: dict) -> None:
    print(f"\n{results['data']}: spans of {results['bars']} bars")
    print(
        "| model | infill / continuation bits/note (<= 0.85) | held-out with / without infill "
        "(<= 1.03) | seam, first middle drawn (<= 1.10) | seam, kept of K | the same judged "
        "by the next model | consonance generated / real | infill 8 bars | accompany 8 bars |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in results["models"].items():
        without = r["heldout_without"]
        cost = (
            f"{r['heldout_with_infill']:.3f} / {without:.3f} = {r['heldout_with_infill'] / without:.3f}"
            if without
            else f"{r['heldout_with_infill']:.3f} / -"
        )

        def seam(m: str, j: str, r=r) -> str:
            gen, real = r[f"seam_{m}_middle_{j}"], r[f"seam_real_middle_{j}"]
            return f"{gen:.3f} / {real:.3f} = {gen / real:.3f}"

        print(
            f"| {name} | {r['infill_bits_per_note']:.3f} / {r['continuation_bits_per_note']:.3f} "
            f"= {r['infill_bits_per_note'] / r['continuation_bits_per_note']:.3f} | {cost} "
            f"| {seam('first', 'self')} | {seam('kept', 'self')} (K = {r['candidates']}) "
            f"| {seam('kept', 'other')} ({r['judge']}; first drawn "
            f"{r['seam_first_middle_other'] / r['seam_real_middle_other']:.3f}) "
            f"| {100 * r['consonance_generated']:.1f}% / {100 * r['consonance_real']:.1f}% "
            f"| {r['seconds_infill_8_bars']:.2f} s ({r['seconds_infill_8_bars_one_candidate']:.2f} s "
            f"with one candidate) | {r['seconds_accompany_8_bars']:.2f} s |"
        )


if __name__ == "__main__":
    sys.exit(main())
