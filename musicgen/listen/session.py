"""One comparison as it is filled in: each column's songs (a model's, the n-gram's, the
real music's), their audio and piano rolls, and the numbers measured on them."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import TYPE_CHECKING

from musicgen import __version__
from musicgen.config import GenerateConfig
from musicgen.errors import MusicgenError
from musicgen.listen import metrics as M
from musicgen.listen.columns import (
    Cell,
    Column,
    Echo,
    continuation,
    engine_text,
    model_names,
    ngram_column,
    real_continuation,
    rel,
    slug,
)
from musicgen.listen.page import TABLE_COLUMNS, build_page, results_table  # noqa: F401 - the page's table for callers
from musicgen.listen.pianoroll import draw_pianoroll
from musicgen.listen.render import render
from musicgen.midi.score import Score
from musicgen.midi.write import write_midi

if TYPE_CHECKING:
    from musicgen.listen.compare import CompareConfig

MAX_REFERENCE_PIECES = 200  # validation pieces measured for the "real music" row


class _Run:
    """The columns of one comparison as they are filled in: songs, media, metrics."""

    def __init__(self, cfg: CompareConfig, out: Path, primer, gcfg: GenerateConfig):
        self.cfg, self.out, self.primer, self.gcfg = cfg, out, primer, gcfg
        self.columns: list[Column] = []
        self.songs: dict[str, list[Score]] = {}  # column key -> its scores, row by row
        self.primer_notes: dict[str, int] = {}  # column key -> notes of the primer in its songs
        self.page_notes: list[str] = []
        self.engines: dict[str, int] = {}
        self.render_notes: set[str] = set()

    def key(self, name: str) -> str:
        return f"cand-{len(self.columns) + 1}" if self.cfg.blind else slug(name)

    def add_models(self, models, echo: Echo) -> None:
        from musicgen.generate import generate_songs, tokens_to_score, write_songs

        cfg, out = self.cfg, self.out
        for model, name in zip(models, model_names(models), strict=True):
            col = Column(self.key(name), name, "model", str(model.path))
            first = out / col.key / "sample-001.mid"
            target = first if cfg.samples == 1 else out / col.key / "sample.mid"
            if cfg.task:
                echo(f"{self.task_text()} with {name} ...")
                songs, pinfo = self.task_songs(model), None
                extra = {"task": self.task_dict(), "command": self.task_command(model, target)}
            else:
                echo(f"generating {cfg.samples} x {cfg.bars:g} bars with {name} ...")
                songs, pinfo = generate_songs(model, self.gcfg, cfg.device)
                extra = {}
            try:
                write_songs(songs, target, model, self.gcfg, pinfo, **extra)
            except OSError as exc:
                raise MusicgenError(
                    f"cannot write to {out / col.key}: {exc.strerror or exc}"
                ) from None
            if cfg.task:
                self.primer_notes[col.key] = None  # by time: the new music is the span
            else:
                self.primer_notes[col.key] = (
                    tokens_to_score(pinfo.ids, model.vocab).num_notes if pinfo else 0
                )
            self.songs[col.key] = [s.score for s in songs]
            col.cells = [
                Cell(rel(s.path, out), "", "", s.score.num_notes, s.score.duration_seconds)
                for s in songs
            ]
            self.columns.append(col)

    # --- a task: the same rewrite of one piece by every model ----------------------------
    def task_text(self) -> str:
        cfg = self.cfg
        if cfg.infill:
            return f"writing bars {cfg.infill[0]}-{cfg.infill[1]} again, {cfg.samples} times,"
        return f"accompanying {cfg.accompany}, {cfg.samples} times,"

    def task(self):
        """The rewrite every model does: an InfillConfig or an AccompanyConfig."""
        from musicgen.config import AccompanyConfig, InfillConfig

        cfg, file = self.cfg, str(self.primer.path)
        if cfg.infill:
            return InfillConfig(file, "bars", *cfg.infill)
        return AccompanyConfig(file, cfg.accompany)

    def task_dict(self) -> dict:
        return {self.cfg.task: vars(self.task())}

    def task_command(self, model, target: Path) -> str:
        from musicgen.generate import rewrite_command

        return rewrite_command(
            self.cfg.task,
            model.path,
            self.primer.path,
            self.task().args(),
            target.parent,
            self.gcfg,
        )

    def task_songs(self, model, reads_ahead: bool = True) -> list:
        from musicgen.generate.accompany import accompany_songs
        from musicgen.generate.infill import infill_songs

        task, device = self.task(), self.cfg.device
        if self.cfg.infill:
            return infill_songs(model, self.gcfg, task, device, reads_ahead)[0]
        return accompany_songs(model, self.gcfg, task, device)[0]

    def add_ngram(self, ds, echo: Echo) -> None:
        if ds is None:
            self.page_notes.append("no n-gram column: it needs a dataset (--data)")
            return
        task = self.task_songs if self.cfg.task else None
        try:
            col, scores, p_notes = ngram_column(
                ds, self.primer, self.cfg, self.gcfg, self.out, len(self.columns), echo, task
            )
        except MusicgenError as exc:
            self.page_notes.append(f"no n-gram column: {exc}")
            return
        self.columns.append(col)
        self.songs[col.key], self.primer_notes[col.key] = scores, p_notes

    def add_real(self) -> None:
        real = self.primer.score if self.cfg.task else real_continuation(self.primer, self.cfg.bars)
        if real is None:
            self.page_notes.append(
                "no real-continuation column: the primer piece has no bars after the primer"
            )
            return
        key = f"cand-{len(self.columns) + 1}" if self.cfg.blind else "real"
        what = {"infill": "real passage", "accompany": "real parts"}.get(self.cfg.task or "")
        col = Column(key, what or "real continuation", "real", self.primer.source)
        path = write_midi(
            real, self.out / key / ("sample-001.mid" if self.cfg.blind else "real.mid")
        )
        cell = Cell(rel(path, self.out), "", "", real.num_notes, real.duration_seconds)
        col.cells = [cell] * self.cfg.samples  # the same piece in every row
        self.columns.append(col)
        self.songs[key] = [real]

    def media(self, midi_rel: str, score: Score, title: str) -> tuple[str, str]:
        cfg, primer = self.cfg, self.primer
        midi_path = self.out / midi_rel
        wav, png = midi_path.with_suffix(".wav"), midi_path.with_suffix(".png")
        r = render(
            midi_path, wav, soundfont=cfg.soundfont, use_fluidsynth=cfg.use_fluidsynth, score=score
        )
        self.engines[r.engine] = self.engines.get(r.engine, 0) + 1
        self.render_notes.add(r.note)
        marks = [(primer.cut, "new")] if primer.cut > 0 and title != "primer" else []
        if primer.end is not None:
            marks.append((primer.end, "after"))
        draw_pianoroll(score, png, title=title, marks=marks)
        return rel(wav, self.out), rel(png, self.out)

    def render_all(self) -> tuple[str, str]:
        """Audio and a piano roll for the primer and every cell; returns the primer's."""
        primer_media = self.media(rel(self.primer.path, self.out), self.primer.score, "primer")
        for col in self.columns:
            for r, cell in enumerate(col.cells):
                if col.kind == "real" and r > 0:
                    continue
                if self.cfg.blind:
                    label = ""
                else:
                    label = col.name if col.kind == "real" else f"{col.name}, sample {r + 1}"
                cell.wav, cell.png = self.media(cell.midi, self.songs[col.key][r], label)
        return primer_media

    def measure(self, ds, echo: Echo) -> None:
        """Each cell's statistics of its new music, with memorisation against the training
        split; the held-out pieces' for the "real music" row."""
        train_index = None
        self.reference: list[dict] = []
        if ds is not None:
            echo("measuring against the training corpus ...")
            train_index = M.TrainIndex.from_dataset(ds.root, "train")
            val_pieces, _ = M.load_corpus(ds.root, "val", limit=MAX_REFERENCE_PIECES)
            self.reference = [M.piece_metrics(s) for _, s in val_pieces]
        for col in self.columns:
            scores = self.songs[col.key]
            for r, cell in enumerate(col.cells[: len(scores)]):
                song = scores[r] if self.primer.end is None else scores[r].until(self.primer.end)
                cont = continuation(song, self.primer_notes.get(col.key), self.primer.cut)
                m = M.piece_metrics(cont)
                if train_index is not None:
                    m.update(M.memorisation(M.pitch_sequence(cont), train_index))
                cell.metrics = m


def column_orders(columns: int, rows: int, seed: int, blind: bool) -> list[list[int]]:
    """The order each row shows the columns in: shuffled by `seed` when blind, so that a
    listener cannot tell the models by their place; as given otherwise."""
    rng = random.Random(seed)
    orders = []
    for _ in range(rows):
        order = list(range(columns))
        if blind:
            rng.shuffle(order)
        orders.append(order)
    return orders


def _summary(run: _Run, primer_media: tuple[str, str], seconds: float) -> dict:
    """What compare.json holds and the page shows."""
    cfg, primer = run.cfg, run.primer
    orders = column_orders(len(run.columns), cfg.samples, cfg.seed, cfg.blind)
    rows = [{"row": r, "order": order} for r, order in enumerate(orders)]
    return {
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
            "form_bias": cfg.sampling.form_bias,  # None: FORM_BIAS for each model with a form
            "blind": cfg.blind,
            "ngram_order": cfg.ngram_order if cfg.ngram else None,
        },
        "task": run.task_dict() if cfg.task else None,
        "primer": {
            "source": primer.source,
            "midi": rel(primer.path, run.out),
            "wav": primer_media[0],
            "png": primer_media[1],
        },
        "audio": engine_text(run.engines, run.render_notes),
        "notes": run.page_notes,
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
            for c in run.columns
        ],
        "reference_set": M.summarize(run.reference) if run.reference else None,
        "rows": rows,
        "seconds": round(seconds, 2),
    }
