"""`musicgen metrics` as a library call: per-file statistics, the set's summary, the
memorisation check against a training corpus, and the comparison with real music."""

from __future__ import annotations

from pathlib import Path

from musicgen.errors import MusicgenError
from musicgen.listen import metrics as M
from musicgen.text import plural


def measure(
    files,
    reference: Path | None = None,
    train_dir: Path | None = None,
    per_bar: bool = False,
    edges: dict | None = None,
) -> dict:
    """Statistics of music files and folders; `reference` (music or a dataset: its validation
    split) for the Yang & Lerch comparison, `train_dir` for the memorisation check;
    `per_bar`, each bar's attributes and the key (what the controls ask for), with their
    levels by `edges` (a model's: its checkpoint's "controls") if given."""
    from musicgen.data.ingest import discover
    from musicgen.errors import ReadError
    from musicgen.midi import read_score

    reference = Path(reference) if reference is not None else None
    train_dir = Path(train_dir) if train_dir is not None else None
    per_file, skipped = {}, {}
    for f in discover(files):
        try:
            per_file[f.rel] = (f.path, read_score(f.path))
        except ReadError as exc:
            skipped[str(f.path)] = str(exc)
    if not per_file:
        raise MusicgenError(
            "no readable music files" + (f" ({next(iter(skipped.values()))})" if skipped else "")
        )
    train_index = None
    if train_dir is not None:
        if (train_dir / "index.json").exists():
            train_index = M.TrainIndex.from_dataset(train_dir, "train")
        else:
            train_index = M.TrainIndex.from_scores(M.load_corpus(train_dir)[0])
        if not train_index.pieces:
            raise MusicgenError(f"{train_dir} holds no training pieces")
    results = {}
    for name, (_, score) in per_file.items():
        m = M.piece_metrics(score)
        if train_index is not None:
            m.update(M.memorisation(M.pitch_sequence(score), train_index))
        if per_bar:
            m["bars"], m["key"] = bar_report(score, edges)
        results[name] = m
    out = {"files": results, "skipped": skipped, "set": M.summarize(list(results.values()))}
    if train_index is not None:
        out["train"] = {
            "path": str(train_dir),
            "pieces": train_index.pieces,
            "notes": train_index.notes,
        }
    if reference is not None:
        ref, _ = M.load_corpus(reference, "val")
        if not ref:
            ref, _ = M.load_corpus(reference)
        if not ref:
            raise MusicgenError(f"{reference} holds no readable music")
        ref_metrics = [M.piece_metrics(s) for _, s in ref]
        out["reference"] = {
            "path": str(reference),
            "set": M.summarize(ref_metrics),
            "overlap": M.compare_to_reference(list(results.values()), ref_metrics),
        }
    return out


def bar_report(score, edges: dict | None) -> tuple[dict, str | None]:
    """Per bar: each control's attribute (and its level 1..5 by `edges`); and the key."""
    import numpy as np

    from musicgen.analysis.bars import bar_features, levels
    from musicgen.analysis.key import estimate_key
    from musicgen.config.controls import key_name

    feats = bar_features(score)
    bars = {a: [None if np.isnan(v) else round(float(v), 2) for v in feats[a]] for a in feats}
    if edges:
        for a, cut in edges.items():
            bars[f"{a}_level"] = [int(v) + 1 if v >= 0 else None for v in levels(feats[a], cut)]
    key = estimate_key(score)
    return bars, (key_name(key) if key is not None else None)


def bars_as_text(name: str, m: dict) -> list[str]:
    names = [k for k in m["bars"] if not k.endswith("_level")]
    lines = [f"{name}: key {m['key'] or '-'}; bar " + " ".join(names)]
    for i in range(len(m["bars"]["density"])):
        cells = []
        for k in names:
            v, level = m["bars"][k][i], m["bars"].get(f"{k}_level", [None] * (i + 1))[i]
            text = "-" if v is None else f"{v:g}"
            cells.append(text + (f" ({level})" if level is not None else ""))
        lines.append(f"  {i + 1}: " + " ".join(cells))
    return lines


def as_text(out: dict) -> str:
    """`measure`'s figures as the lines `musicgen metrics` prints."""

    def f(v, spec="{:.3f}"):
        if v is None or (isinstance(v, float) and v != v):
            return "-"
        return str(v) if isinstance(v, int) else spec.format(v)

    short = {
        "pitch_class_entropy": "pc-entropy",
        "pitch_range": "range",
        "polyphony": "polyph",
        "scale_consistency": "scale",
        "note_density": "notes/beat",
        "empty_beat_rate": "empty",
        "distinct_4gram_share": "4g-distinct",
        "longest_repeat_run": "repeat",
        "recurring_bar_share": "bars-recur",
        "recurrence_distance": "recur-dist",
        "longest_copied_run": "copied",
        "longest_copied_run_transposed": "copied-transp",
        "ngram8_in_train": "8g-in-train",
    }
    keys = [
        k for k in (*M.SCALAR_KEYS, *M.MEMORY_KEYS) if any(k in m for m in out["files"].values())
    ]
    lines = ["file: notes " + " ".join(short[k] for k in keys)]
    for name, m in out["files"].items():
        extra = f"  (copied from {m['copied_from']})" if m.get("copied_from") else ""
        lines.append(f"{name}: {m['notes']} " + " ".join(f(m.get(k)) for k in keys) + extra)
    for name, m in out["files"].items():
        if "bars" in m:
            lines += bars_as_text(name, m)
    for name, why in out["skipped"].items():
        lines.append(f"skipped {name}: {why}")
    s = out["set"]
    lines.append(f"set of {s['pieces']} files (mean +- std):")
    for k in keys:
        lines.append(f"  {k}: {f(s[k]['mean'])} +- {f(s[k]['std'])}")
    if "reference" in out:
        r = out["reference"]
        lines.append(
            f"reference {r['path']} ({plural(r['set']['pieces'], 'piece')}); overlap 1 = as varied against the reference as the reference itself:"
        )
        lines.append(
            "  feature: reference mean | intra-set distance generated / reference | inter-set | overlap area"
        )
        for k, o in r["overlap"].items():
            ref_mean = r["set"][k]["mean"] if isinstance(r["set"].get(k), dict) else None
            lines.append(
                f"  {k}: {f(ref_mean)} | {f(o['intra_generated'])} / {f(o['intra_reference'])} | {f(o['inter'])} | {f(o['overlap'])}"
            )
        few = [
            (name, n)
            for name, n in (("generated set", s["pieces"]), ("reference", r["set"]["pieces"]))
            if n < 2
        ]
        if few:
            lines.append(
                "  (- : distances within a set need two pieces; the "
                + " and the ".join(f"{name} holds {plural(n, 'piece')}" for name, n in few)
                + ")"
            )
    return "\n".join(lines)
