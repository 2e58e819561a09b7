"""The candidates of a comparison and their parts: the primer, a column per model, the
n-gram baseline, the real continuation, and each column's held-out likelihood."""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musicgen.config import CONTROLS
from musicgen.errors import MusicgenError
from musicgen.midi.read import read_score
from musicgen.midi.score import Score
from musicgen.midi.write import write_midi
from musicgen.text import plural
from musicgen.tokens.encoding import decode

Echo = Callable[[str], None]


@dataclass
class Cell:
    midi: str  # paths relative to the output folder
    wav: str
    png: str
    notes: int
    seconds: float
    metrics: dict = field(default_factory=dict)


@dataclass
class Column:
    key: str  # folder name inside the output folder (neutral in blind mode)
    name: str  # what the listener sees after Reveal
    kind: str  # model | ngram | real
    detail: str
    cells: list[Cell] = field(default_factory=list)
    bits_per_note: float | None = None
    eval_note: str = ""


@dataclass
class PrimerInfo:
    score: Score
    source: str  # human description
    cut: float  # quarter where the primer ends (with a task: where the new music begins)
    full: Score | None  # the whole piece, when a real continuation may exist
    path: Path | None = None
    end: float | None = None  # with a task: where the new music ends (None: the piece's end)


def choose_primer(cfg, ds) -> PrimerInfo:
    if cfg.primer is not None:
        full = read_score(cfg.primer)  # ReadError is a MusicgenError: one line
        if not full.num_notes:
            raise MusicgenError(f"primer {cfg.primer} has no notes")
        lines = full.bar_lines()
        if len(lines) > cfg.primer_bars:
            cut = lines[cfg.primer_bars]
            return PrimerInfo(
                full.until(cut),
                f"first {cfg.primer_bars} bars of {Path(cfg.primer).name}",
                cut,
                full,
            )
        return PrimerInfo(full, f"{Path(cfg.primer).name} (all of it)", full.end, None)
    n_bars, e, full, split = _held_out_piece(ds, cfg.seed, cfg.primer_bars + cfg.bars)
    lines = full.bar_lines()
    if n_bars <= cfg.primer_bars:
        return PrimerInfo(
            full, f"{e['path']} (all {n_bars} bars; {split} split of {ds.root})", full.end, None
        )
    cut = lines[cfg.primer_bars]
    src = f"first {cfg.primer_bars} bars of {e['path']} ({split} split of {ds.root})"
    return PrimerInfo(full.until(cut), src, cut, full)


def _held_out_piece(ds, seed: int, bars: int):
    """(its bars, index entry, score, split): the first held-out piece in seeded order with
    at least `bars` bars, or the longest of the first 64."""
    entries = [e for e in ds.index["files"] if e["split"] == "val"]
    split = "validation"
    if not entries:
        entries, split = list(ds.index["files"]), "training (the dataset has no validation split)"
    if not entries:
        raise MusicgenError(f"{ds.root} holds no pieces")
    rng = random.Random(seed)
    order = list(range(len(entries)))
    rng.shuffle(order)
    best = None
    for i in order[:64]:  # the first piece (in seeded order) long enough for primer + continuation
        e = entries[i]
        ids = np.asarray(ds.tokens[e["offset"] : e["offset"] + e["tokens"]])
        score, _ = decode(ds.vocab.to_universal(ids), ds.vocab.cfg)
        n_bars = len(score.bar_lines())
        if best is None or n_bars > best[0]:
            best = (n_bars, e, score)
        if n_bars >= bars:
            break
    return (*best, split)


def choose_piece(cfg, ds) -> PrimerInfo:
    """The whole piece a task rewrites part of (`--infill A-B` or `--accompany PART`): the
    file, or a held-out piece with bars after the span; `cut` and `end` bound the new music."""
    need = cfg.infill[1] + 1 if cfg.infill else 1
    if cfg.primer is not None:
        whole = read_score(cfg.primer)
        if not whole.num_notes:
            raise MusicgenError(f"{cfg.primer} has no notes")
        source = Path(cfg.primer).name
    else:
        _, e, whole, split = _held_out_piece(ds, cfg.seed, need)
        source = f"{e['path']} ({split} split of {ds.root})"
    if not cfg.infill:
        return PrimerInfo(whole, source, 0.0, whole)
    lines = whole.bar_lines()
    first, last = cfg.infill
    if last >= len(lines):
        raise MusicgenError(
            f"--infill {first}-{last}: {source} has {len(lines)} bars; the span needs music after it"
        )
    return PrimerInfo(whole, source, lines[first - 1], whole, end=lines[last])


def real_continuation(primer: PrimerInfo, bars: int) -> Score | None:
    if primer.full is None:
        return None
    lines = [b for b in primer.full.bar_lines() if b >= primer.cut - 1e-9]
    if len(lines) < 1 or not (primer.full.notes["start"] >= primer.cut - 1e-9).any():
        return None
    end = lines[bars] if len(lines) > bars else primer.full.end
    return primer.full.until(end)


def continuation(score: Score, primer_notes: int | None, cut: float) -> Score:
    """The new part of a song: notes after the primer's, from where the primer ends."""
    if primer_notes is None:  # the real continuation: by time
        n = score.notes[score.notes["start"] >= cut - 1e-9].copy()
    else:
        n = score.notes[primer_notes:].copy()
    t0 = min(cut, float(n["start"].min())) if len(n) else cut
    n["start"] = n["start"] - t0
    shift = lambda events: [(max(e[0] - t0, 0.0), *e[1:]) for e in events]  # noqa: E731
    return Score(
        notes=n,
        tempos=shift(score.tempos),
        time_signatures=shift(score.time_signatures),
        n_tracks=score.n_tracks,
    )


def model_names(models) -> list[str]:
    base = [m.model_cfg.name for m in models]
    names = []
    for m, b in zip(models, base, strict=True):
        if base.count(b) == 1:
            names.append(b)
        else:
            p = Path(m.path)
            names.append(f"{b} ({p.parent.name}/{p.name})" if p.parent.name else f"{b} ({p.name})")
    seen: dict[str, int] = {}
    for i, n in enumerate(names):  # still equal (same file twice): number them
        seen[n] = seen.get(n, 0) + 1
        if seen[n] > 1:
            names[i] = f"{n} #{seen[n]}"
    return names


def slug(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._").lower()
    return s or "model"


def rel(path: Path, root: Path) -> str:
    return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()


def engine_text(engines: dict[str, int], notes: set[str]) -> str:
    if set(engines) == {"fluidsynth"}:
        return sorted(notes)[0]
    builtin = sorted(n for n in notes if n.startswith("built-in"))
    return "; ".join(builtin) if builtin else ", ".join(sorted(notes))


# --- the n-gram baseline --------------------------------------------------------------------------


def ngram_column(ds, primer: PrimerInfo, cfg, gcfg, out: Path, index: int, echo: Echo, task=None):
    """The n-gram's column: a continuation of the primer, or with `task` (a function of a
    model and whether it reads ahead) the same rewrite the models do."""
    from musicgen.evaluate import fit_ngram
    from musicgen.generate import generate_songs, tokens_to_score
    from musicgen.ngram import ngram_model

    echo(f"fitting a Kneser-Ney {cfg.ngram_order}-gram on {ds.root} (training split) ...")
    train = [np.asarray(d, dtype=np.int64) for d in ds.documents("train")]
    if not train:
        raise MusicgenError(f"{ds.root} has no training pieces")
    lm = fit_ngram(train, len(ds.vocab), cfg.ngram_order)
    model = ngram_model(lm, cfg.ngram_order, ds.vocab)
    from musicgen.data.measures import learn_form_of, longest_loop, longest_silence

    if gcfg.form_bias != 0:  # the form of the same training pieces, as `train` gives a model
        model.meta["form"] = learn_form_of(train, ds.vocab).to_dict()
    # and the guards' limits, so the n-gram's pieces are drawn as the models' are
    model.meta["corpus"] = {
        "longest_loop": longest_loop(train, ds.vocab),
        "longest_silence": longest_silence(train, ds.vocab),
    }
    if task is not None:
        echo("the same with the n-gram ...")
        songs, p = task(model, reads_ahead=False), None
    else:
        echo(f"sampling {cfg.samples} x {cfg.bars:g} bars from the n-gram ...")
        # as every model is sampled, but for the controls: an n-gram learns none
        unsteered = dataclasses.replace(gcfg, **{c: None for c in CONTROLS})
        songs, p = generate_songs(model, unsteered)
    key = f"cand-{index + 1}" if cfg.blind else "ngram"
    col = Column(
        key,
        f"{cfg.ngram_order}-gram",
        "ngram",
        f"interpolated Kneser-Ney, order {cfg.ngram_order}, fitted on {ds.root}",
    )
    col.lm = lm  # type: ignore[attr-defined]  # kept for the likelihood column
    for r, song in enumerate(songs):
        path = write_midi(song.score, out / key / f"sample-{r + 1:03d}.mid")
        col.cells.append(
            Cell(rel(path, out), "", "", song.score.num_notes, song.score.duration_seconds)
        )
    primer_notes = tokens_to_score(p.ids, ds.vocab).num_notes if p is not None else None
    return col, [s.score for s in songs], primer_notes


# --- held-out bits per note -----------------------------------------------------------------------


def evaluate_columns(columns: list[Column], models, ds, cfg, echo: Echo) -> None:
    from musicgen.evaluate import evaluate, score_ngram

    model_cols = [c for c in columns if c.kind == "model"]
    for col, model in zip(model_cols, models, strict=True):
        echo(f"held-out bits per note of {col.name} ...")
        try:
            rep = evaluate(model, data_dir=ds.root if ds is not None else None, ngram=False)
            col.bits_per_note = rep.bits_per_note
            col.eval_note = f"{plural(rep.pieces, 'piece')}, {plural(rep.notes, 'note')}"
        except MusicgenError as exc:
            col.eval_note = f"not evaluated: {exc}"
    for col in columns:
        if col.kind == "ngram" and ds is not None:
            lm = col.lm  # type: ignore[attr-defined]
            docs = [np.asarray(d, dtype=np.int64) for d in ds.documents("val")]
            if not docs:
                col.eval_note = "not evaluated: no validation split"
                continue
            by_order, _ = score_ngram(lm, docs, ds.vocab.note_ids)  # the scoring `evaluate` uses
            col.bits_per_note = by_order[cfg.ngram_order].bits_per_note
            col.eval_note = f"{len(docs)} pieces, {by_order[cfg.ngram_order].notes} notes"
        elif col.kind == "real":
            col.eval_note = "real music"
