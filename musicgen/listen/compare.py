"""Side-by-side listening page: one primer, the same seeds, every model, plus real music.

`run_compare` continues one primer (a file, or the first bars of a held-out
piece of a dataset) with every checkpoint, and optionally adds two reference
columns: the real continuation of the primer and a Kneser-Ney n-gram baseline
fitted on the dataset's training split. Every song is written as MIDI, rendered
to WAV and drawn as a piano roll, measured with `musicgen.listen.metrics`, and
laid out in DIR/index.html: one row per sample, one column per candidate.

The page is self-contained (inline CSS and JS, relative paths, no network). In
blind mode the candidates of each row are shuffled and labelled A, B, C...; the
key is in the page's embedded JSON and in compare.json, and the listener's
favourites are tallied when they press Reveal and can be downloaded as JSON.
"""

from __future__ import annotations

import dataclasses
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musicgen import __version__
from musicgen.config import GenerateConfig
from musicgen.errors import MusicgenError
from musicgen.fsutil import atomic_write_bytes, atomic_write_json
from musicgen.listen import metrics as M
from musicgen.listen.page import TABLE_COLUMNS, build_page, results_table  # noqa: F401 - the page's table for callers
from musicgen.listen.pianoroll import draw_pianoroll
from musicgen.listen.render import render
from musicgen.midi.read import read_score
from musicgen.midi.score import Score
from musicgen.midi.write import write_midi
from musicgen.text import plural
from musicgen.tokens.encoding import decode

NGRAM_ORDER = 5
MAX_REFERENCE_PIECES = 200  # validation pieces measured for the "real music" row


@dataclass(frozen=True)
class CompareConfig:
    """What `musicgen compare` does. `sampling` holds the samples (rows), their bars of new
    music and every sampling setting, the same for every model (its `primer` is set here)."""

    out: Path
    primer: Path | None = None
    data: Path | None = None
    primer_bars: int = 4
    sampling: GenerateConfig = field(
        default_factory=lambda: GenerateConfig(num_samples=4, unit="bars", length=8)
    )
    reference: bool = True
    ngram: bool = True
    ngram_order: int = NGRAM_ORDER
    blind: bool = False
    evaluate: bool = True
    soundfont: Path | None = None
    use_fluidsynth: bool = True
    device: str = "cpu"

    @property
    def samples(self) -> int:
        return self.sampling.num_samples

    @property
    def bars(self) -> int:
        return int(self.sampling.length)

    @property
    def seed(self) -> int:
        return self.sampling.seed


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
    cut: float  # quarter where the primer ends
    full: Score | None  # the whole piece, when a real continuation may exist
    path: Path | None = None


Echo = Callable[[str], None]


def run_compare(checkpoints: list[Path], cfg: CompareConfig, echo: Echo = print) -> dict:
    """Generate, render, measure and lay out; returns the summary also written to compare.json."""
    from musicgen.checkpoint import load_model
    from musicgen.data.dataset import TokenDataset
    from musicgen.generate import generate_songs, tokens_to_score, write_songs

    t0 = time.perf_counter()
    if not checkpoints:
        raise MusicgenError("give at least one checkpoint")
    for c in checkpoints:
        if not Path(c).exists():
            raise MusicgenError(f"no checkpoint at {c}")
    if cfg.primer is None and cfg.data is None:
        raise MusicgenError(
            "compare needs one primer for every model: give --primer FILE or --data DIR (a held-out excerpt)"
        )
    if cfg.primer is not None and not Path(cfg.primer).is_file():
        raise MusicgenError(f"primer {cfg.primer} does not exist")
    gen_cfg = cfg.sampling
    if gen_cfg.unit != "bars":
        raise MusicgenError("compare measures new music in bars")
    out = Path(cfg.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MusicgenError(f"cannot write to {out}: {exc.strerror or exc}") from None

    models = [load_model(c, cfg.device) for c in checkpoints]
    ds = TokenDataset.open(cfg.data) if cfg.data is not None else None
    if ds is None:  # the dataset a checkpoint was trained on serves the n-gram and the statistics
        for m in models:
            d = m.meta.get("data")
            if d and Path(d, "index.json").exists():
                ds = TokenDataset.open(d)
                echo(
                    f"using {d}, the dataset {m.path} was trained on, for the n-gram, statistics and bits per note"
                )
                break

    primer = _choose_primer(cfg, ds)
    primer.path = out / "primer" / "primer.mid"
    write_midi(primer.score, primer.path)
    echo(f"primer: {primer.source}")

    names = _model_names(models)
    columns: list[Column] = []
    key_of = (lambda i, name: f"cand-{i + 1}") if cfg.blind else (lambda i, name: _slug(name))
    primer_notes: dict[str, int] = {}
    songs_by_col: dict[str, list[Score]] = {}
    gcfg = dataclasses.replace(gen_cfg, primer=str(primer.path))
    for i, (model, name) in enumerate(zip(models, names, strict=True)):
        col = Column(key_of(i, name), name, "model", str(model.path))
        echo(f"generating {cfg.samples} x {cfg.bars:g} bars with {name} ...")
        songs, pinfo = generate_songs(model, gcfg, cfg.device)
        first = out / col.key / "sample-001.mid"
        try:
            write_songs(
                songs,
                first if cfg.samples == 1 else out / col.key / "sample.mid",
                model,
                gcfg,
                pinfo,
            )
        except OSError as exc:
            raise MusicgenError(f"cannot write to {out / col.key}: {exc.strerror or exc}") from None
        primer_notes[col.key] = tokens_to_score(pinfo.ids, model.vocab).num_notes if pinfo else 0
        songs_by_col[col.key] = [s.score for s in songs]
        col.cells = [
            Cell(_rel(s.path, out), "", "", s.score.num_notes, s.score.duration_seconds)
            for s in songs
        ]
        columns.append(col)

    page_notes = []
    if cfg.ngram:
        if ds is None:
            page_notes.append("no n-gram column: it needs a dataset (--data)")
        else:
            try:
                col, scores, p_notes = _ngram_column(ds, primer, cfg, gcfg, out, len(columns), echo)
                columns.append(col)
                songs_by_col[col.key] = scores
                primer_notes[col.key] = p_notes
            except MusicgenError as exc:
                page_notes.append(f"no n-gram column: {exc}")
    real_score = None
    if cfg.reference:
        real_score = _real_continuation(primer, cfg.bars)
        if real_score is None:
            page_notes.append(
                "no real-continuation column: the primer piece has no bars after the primer"
            )
        else:
            key = f"cand-{len(columns) + 1}" if cfg.blind else "real"
            col = Column(key, "real continuation", "real", primer.source)
            path = write_midi(
                real_score, out / key / ("sample-001.mid" if cfg.blind else "real.mid")
            )
            cell = Cell(_rel(path, out), "", "", real_score.num_notes, real_score.duration_seconds)
            col.cells = [cell] * cfg.samples  # the same piece in every row
            columns.append(col)
            songs_by_col[key] = [real_score]
    for n in page_notes:
        echo(n)

    # --- audio and piano rolls -------------------------------------------------------------------
    engines: dict[str, int] = {}
    render_notes: set[str] = set()

    def media(midi_rel: str, score: Score, title: str) -> tuple[str, str]:
        midi_path = out / midi_rel
        wav, png = midi_path.with_suffix(".wav"), midi_path.with_suffix(".png")
        r = render(
            midi_path, wav, soundfont=cfg.soundfont, use_fluidsynth=cfg.use_fluidsynth, score=score
        )
        engines[r.engine] = engines.get(r.engine, 0) + 1
        render_notes.add(r.note)
        marks = [(primer.cut, "new")] if primer.cut > 0 and title != "primer" else []
        draw_pianoroll(score, png, title=title, marks=marks)
        return _rel(wav, out), _rel(png, out)

    echo("rendering audio and piano rolls ...")
    primer_wav, primer_png = media(_rel(primer.path, out), primer.score, "primer")
    for col in columns:
        scores = songs_by_col[col.key]
        for r, cell in enumerate(col.cells):
            if col.kind == "real" and r > 0:
                continue
            label = (
                ""
                if cfg.blind
                else f"{col.name}, sample {r + 1}"
                if col.kind != "real"
                else col.name
            )
            cell.wav, cell.png = media(cell.midi, scores[r], label)

    # --- statistics ---------------------------------------------------------------------------------
    train_index = None
    reference_pieces: list[dict] = []
    if ds is not None:
        echo("measuring against the training corpus ...")
        train_index = M.TrainIndex.from_dataset(ds.root, "train")
        val_pieces, _ = M.load_corpus(ds.root, "val", limit=MAX_REFERENCE_PIECES)
        reference_pieces = [M.piece_metrics(s) for _, s in val_pieces]
    for col in columns:
        scores = songs_by_col[col.key]
        for r, cell in enumerate(col.cells[: len(scores)]):
            cont = _continuation(scores[r], primer_notes.get(col.key), primer.cut)
            m = M.piece_metrics(cont)
            if train_index is not None:
                m.update(M.memorisation(M.pitch_sequence(cont), train_index))
            cell.metrics = m

    # --- held-out likelihood ------------------------------------------------------------------------
    if cfg.evaluate:
        _evaluate_columns(columns, models, ds, cfg, echo)

    # --- the page -----------------------------------------------------------------------------------
    rng = random.Random(cfg.seed)
    rows = []
    for r in range(cfg.samples):
        order = list(range(len(columns)))
        if cfg.blind:
            rng.shuffle(order)
        rows.append({"row": r, "order": order})
    engine_text = _engine_text(engines, render_notes)
    summary = {
        "format": "musicgen-compare",
        "musicgen_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": {
            "samples": cfg.samples,
            "seed": cfg.seed,
            "bars": cfg.bars,
            "primer_bars": cfg.primer_bars,
            "temperature": cfg.sampling.temperature,
            "top_k": cfg.sampling.top_k,
            "top_p": cfg.sampling.top_p,
            "repeat_bias": cfg.sampling.repeat_bias,
            "blind": cfg.blind,
            "ngram_order": cfg.ngram_order if cfg.ngram else None,
        },
        "primer": {
            "source": primer.source,
            "midi": _rel(primer.path, out),
            "wav": primer_wav,
            "png": primer_png,
        },
        "audio": engine_text,
        "notes": page_notes,
        "columns": [
            {
                "key": c.key,
                "name": c.name,
                "kind": c.kind,
                "detail": c.detail,
                "bits_per_note": c.bits_per_note,
                "eval_note": c.eval_note,
                "cells": [c_.__dict__ for c_ in c.cells],
                "summary": M.summarize(
                    [c_.metrics for c_ in (c.cells[:1] if c.kind == "real" else c.cells)]
                ),
            }
            for c in columns
        ],
        "reference_set": M.summarize(reference_pieces) if reference_pieces else None,
        "rows": rows,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    summary = M.jsonable(summary)
    page = build_page(summary)
    atomic_write_bytes(out / "index.html", page.encode("utf-8"))
    atomic_write_json(out / "compare.json", summary)
    echo(f"audio: {engine_text}")
    return summary


# --- pieces of the run ----------------------------------------------------------------------------


def _choose_primer(cfg: CompareConfig, ds) -> PrimerInfo:
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
    entries = [e for e in ds.index["files"] if e["split"] == "val"]
    split = "validation"
    if not entries:
        entries, split = list(ds.index["files"]), "training (the dataset has no validation split)"
    if not entries:
        raise MusicgenError(f"{ds.root} holds no pieces")
    rng = random.Random(cfg.seed)
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
        if n_bars >= cfg.primer_bars + cfg.bars:
            break
    n_bars, e, full = best
    lines = full.bar_lines()
    if n_bars <= cfg.primer_bars:
        return PrimerInfo(
            full, f"{e['path']} (all {n_bars} bars; {split} split of {ds.root})", full.end, None
        )
    cut = lines[cfg.primer_bars]
    src = f"first {cfg.primer_bars} bars of {e['path']} ({split} split of {ds.root})"
    return PrimerInfo(full.until(cut), src, cut, full)


def _real_continuation(primer: PrimerInfo, bars: int) -> Score | None:
    if primer.full is None:
        return None
    lines = [b for b in primer.full.bar_lines() if b >= primer.cut - 1e-9]
    if len(lines) < 1 or not (primer.full.notes["start"] >= primer.cut - 1e-9).any():
        return None
    end = lines[bars] if len(lines) > bars else primer.full.end
    return primer.full.until(end)


def _continuation(score: Score, primer_notes: int | None, cut: float) -> Score:
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


def _model_names(models) -> list[str]:
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


def _slug(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._").lower()
    return s or "model"


def _rel(path: Path, root: Path) -> str:
    return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()


def _engine_text(engines: dict[str, int], notes: set[str]) -> str:
    if set(engines) == {"fluidsynth"}:
        return sorted(notes)[0]
    builtin = sorted(n for n in notes if n.startswith("built-in"))
    return "; ".join(builtin) if builtin else ", ".join(sorted(notes))


# --- the n-gram baseline --------------------------------------------------------------------------


def _ngram_column(
    ds, primer: PrimerInfo, cfg: CompareConfig, gcfg, out: Path, index: int, echo: Echo
):
    from musicgen.evaluate import fit_ngram
    from musicgen.generate import generate_songs, tokens_to_score
    from musicgen.ngram import ngram_model

    echo(f"fitting a Kneser-Ney {cfg.ngram_order}-gram on {ds.root} (training split) ...")
    train = [np.asarray(d, dtype=np.int64) for d in ds.documents("train")]
    if not train:
        raise MusicgenError(f"{ds.root} has no training pieces")
    lm = fit_ngram(train, len(ds.vocab), cfg.ngram_order)
    echo(f"sampling {cfg.samples} x {cfg.bars:g} bars from the n-gram ...")
    songs, p = generate_songs(
        ngram_model(lm, cfg.ngram_order, ds.vocab), gcfg
    )  # as every model is sampled
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
            Cell(_rel(path, out), "", "", song.score.num_notes, song.score.duration_seconds)
        )
    return col, [s.score for s in songs], tokens_to_score(p.ids, ds.vocab).num_notes


# --- held-out bits per note -----------------------------------------------------------------------


def _evaluate_columns(columns: list[Column], models, ds, cfg: CompareConfig, echo: Echo) -> None:
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
