"""Side-by-side listening page: one primer, the same seeds, every model, plus real music.

With a task (`infill=(A, B)` or `accompany=PART`) the page compares the same rewrite of
one whole piece instead: bars A-B written again, or everything around the kept part,
by every model, beside the real piece and the n-gram (which, unable to read ahead,
writes the span from the music before it alone).

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
import time
from dataclasses import dataclass, field
from pathlib import Path

from musicgen.config import GenerateConfig
from musicgen.errors import MusicgenError
from musicgen.fsutil import atomic_write_bytes, atomic_write_json
from musicgen.listen import metrics as M
from musicgen.listen.columns import (
    Echo,
    choose_piece,
    choose_primer,
    evaluate_columns,
    model_names,
)
from musicgen.listen.page import TABLE_COLUMNS, build_page, results_table  # noqa: F401 - the page's table for callers
from musicgen.listen.session import _Run, _summary  # noqa: F401
from musicgen.midi.write import write_midi

NGRAM_ORDER = 5


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
    infill: tuple[int, int] | None = None  # bars A-B of the piece written again
    accompany: str | None = None  # the part kept (see musicgen.generate.accompany)

    @property
    def task(self) -> str | None:
        return "infill" if self.infill else "accompany" if self.accompany else None

    @property
    def samples(self) -> int:
        return self.sampling.num_samples

    @property
    def bars(self) -> int:
        return int(self.sampling.length)

    @property
    def seed(self) -> int:
        return self.sampling.seed


def run_compare(checkpoints: list[Path], cfg: CompareConfig, echo: Echo = print) -> dict:
    """Generate, render, measure and lay out; returns the summary also written to compare.json."""
    from musicgen.checkpoint import load_model

    t0 = time.perf_counter()
    out = _check(checkpoints, cfg)
    models = [load_model(c, cfg.device) for c in checkpoints]
    skipped = []
    if cfg.infill:  # only a model trained to fill can read the music after the span
        skipped = [
            f"no column for {name}: it was not trained for infilling (train with --infill 0.5)"
            for m, name in zip(models, model_names(models), strict=True)
            if not m.vocab.can_fill
        ]
        models = [m for m in models if m.vocab.can_fill]
        if not models:
            raise MusicgenError(
                "none of the checkpoints was trained for infilling; train one with --infill 0.5"
            )
    ds = _dataset(models, cfg, echo)
    primer = choose_piece(cfg, ds) if cfg.task else choose_primer(cfg, ds)
    primer.path = out / "primer" / ("piece.mid" if cfg.task else "primer.mid")
    write_midi(primer.score, primer.path)
    echo(f"{'piece' if cfg.task else 'primer'}: {primer.source}")

    gcfg = cfg.sampling if cfg.task else dataclasses.replace(cfg.sampling, primer=str(primer.path))
    run = _Run(cfg, out, primer, gcfg)
    run.page_notes += skipped
    run.add_models(models, echo)
    if cfg.ngram:
        run.add_ngram(ds, echo)
    if cfg.reference:
        run.add_real()
    for n in run.page_notes:
        echo(n)
    echo("rendering audio and piano rolls ...")
    primer_media = run.render_all()
    run.measure(ds, echo)
    if cfg.evaluate:
        evaluate_columns(run.columns, models, ds, cfg, echo)

    summary = M.jsonable(_summary(run, primer_media, time.perf_counter() - t0))
    atomic_write_bytes(out / "index.html", build_page(summary).encode("utf-8"))
    atomic_write_json(out / "compare.json", summary)
    echo(f"audio: {summary['audio']}")
    return summary


def _check(checkpoints: list[Path], cfg: CompareConfig) -> Path:
    """Refuse what cannot work before any model is loaded; returns the output folder."""
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
    if cfg.sampling.unit != "bars":
        raise MusicgenError("compare measures new music in bars")
    if cfg.infill and cfg.accompany:
        raise MusicgenError("give one task: --infill or --accompany")
    if cfg.infill and not 1 <= cfg.infill[0] <= cfg.infill[1]:
        raise MusicgenError(
            f"--infill {cfg.infill[0]}-{cfg.infill[1]} is empty: give bars FIRST-LAST, from 1"
        )
    out = Path(cfg.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MusicgenError(f"cannot write to {out}: {exc.strerror or exc}") from None
    return out


def _dataset(models, cfg: CompareConfig, echo: Echo):
    """--data, or else the dataset a checkpoint was trained on (for the n-gram, the
    statistics and bits per note); None if neither is at hand."""
    from musicgen.data.dataset import TokenDataset

    if cfg.data is not None:
        return TokenDataset.open(cfg.data)
    for m in models:
        d = m.meta.get("data")
        if d and Path(d, "index.json").exists():
            echo(
                f"using {d}, the dataset {m.path} was trained on, for the n-gram, statistics and bits per note"
            )
            return TokenDataset.open(d)
    return None
