"""Commands that rewrite part of a piece: infill (a span again) and accompany (around a part)."""

from __future__ import annotations

import re
from pathlib import Path

import click

from musicgen.cli.group import cli
from musicgen.cli.options import build_config, config_options, control_options, plan_of
from musicgen.config import PASSAGE_SAMPLING, AccompanyConfig, GenerateConfig, InfillConfig
from musicgen.errors import MusicgenError

# infill and accompany take no repetition or form bias (generate.settle): the span's ends
# and the kept part hold the form


def _common(f):
    f = click.option(
        "--device", default="cpu", show_default=True, help="torch device to sample on."
    )(f)
    f = control_options(f)
    f = config_options(
        GenerateConfig,
        only=("num_samples", *PASSAGE_SAMPLING),
        types={"num_samples": click.IntRange(1, 256)},
        defaults={"num_samples": 4},
    )(f)
    f = click.option(
        "--out",
        "-o",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Folder to write into [default: FILE's name with -infill or -accompany].",
    )(f)
    # [CHECKPOINT] FILE: click cannot leave out a first argument before a required one
    return click.argument(
        "paths", nargs=-1, type=click.Path(path_type=Path), metavar="[CHECKPOINT] FILE"
    )(f)


def _split(paths: tuple[Path, ...]) -> tuple[Path | None, Path]:
    if len(paths) == 1:
        return None, paths[0]
    if len(paths) == 2:
        return paths[0], paths[1]
    raise MusicgenError("give the file to rewrite, after the checkpoint if any: [CHECKPOINT] FILE")


def parse_span(text: str | None, option: str, number=float) -> tuple[float, float] | None:
    if text is None:
        return None
    m = re.fullmatch(r"\s*([0-9.]+)\s*(?:-\s*([0-9.]+)\s*)?", text)
    try:
        a = number(m.group(1)) if m else None
        b = number(m.group(2)) if m and m.group(2) else a
    except ValueError:
        a = None
    if a is None:
        raise MusicgenError(f"{option} {text!r}: give a span FIRST-LAST, e.g. {option} 9-12")
    return a, b


def _run(checkpoint, file, out, num_samples, device, sampling, verb, make, task):
    """Load, generate, write: the steps infill and accompany share."""
    from musicgen.checkpoint import load_model
    from musicgen.generate import rewrite_command, write_songs

    if not Path(file).is_file():
        raise MusicgenError(f"{file} does not exist")
    cfg = build_config(GenerateConfig, plan_of(sampling), num_samples=num_samples)
    if checkpoint is None:
        from musicgen.pretrained import default_checkpoint

        checkpoint = default_checkpoint()
        click.echo(f"using the pretrained default {checkpoint}")
    model = load_model(checkpoint, device)
    songs, piece, what = make(model, cfg, task, device)
    out = out or Path(f"{Path(file).stem}-{verb}")
    command = rewrite_command(verb, model.path, Path(file), task.args(), out, cfg)
    try:
        paths = write_songs(
            songs,
            out / f"{Path(file).stem}.mid",
            model,
            cfg,
            None,
            task={verb: {**vars(task), "what": what}},
            command=command,
        )
    except OSError as exc:
        raise MusicgenError(f"cannot write {out}: {exc.strerror or exc}") from None
    if piece.left_out:
        where = (
            "outside the span kept as read, inside it left out" if verb == "infill" else "left out"
        )
        click.echo(
            f"{piece.left_out} notes on instruments or keys the model has never seen: {where}"
        )
    for song, path in zip(songs, paths, strict=True):
        click.echo(f"{path}: {song.new_notes} new notes, {song.score.num_notes} in all")


@cli.command()
@_common
@click.option("--bars", "bars", help="The bars to write again, FIRST-LAST, counted from 1.")
@click.option("--seconds", "seconds", help="The span to write again, A-B seconds of the file.")
@config_options(InfillConfig, only=("candidates",))
def infill(paths, out, num_samples, device, bars, seconds, candidates, **sampling):
    """Write a span of FILE again, -n times, leading into what follows it.

    Needs a model trained with --infill (the shipped ones are). Everything outside the
    span is written back as read; each version is a whole MIDI file with its sidecar.

    \b
    Examples:
      musicgen infill song.mid --bars 9-12 -n 4
      musicgen infill run/best.ckpt song.mid --seconds 20-30 --out takes -t 0.9
    """
    from musicgen.generate.infill import infill_songs

    checkpoint, file = _split(paths)
    if (bars is None) == (seconds is None):
        raise MusicgenError("give the span: --bars FIRST-LAST or --seconds A-B")
    if bars is not None:
        first, last = parse_span(bars, "--bars", int)
        span = ("bars", first, last)
    else:
        a, b = parse_span(seconds, "--seconds")
        span = ("seconds", a, b)
    unit, start, end = span
    task = build_config(
        InfillConfig,
        {"candidates": candidates},
        file=str(file),
        unit=unit,
        start=start,
        end=end,
    )

    def make(model, cfg, task, device):
        songs, piece, span = infill_songs(model, cfg, task, device)
        return songs, piece, f"{task.unit} {task.start:g}-{task.end:g}"

    _run(checkpoint, file, out, num_samples, device, sampling, "infill", make, task)


@cli.command()
@_common
@click.option(
    "--keep",
    default="top",
    show_default=True,
    help="The part kept: 'top' (the top voice), an instrument's place in the line-up (1 = lowest program), program:N, or a name (violin, drums).",
)
def accompany(paths, out, num_samples, device, keep, **sampling):
    """Keep one part of FILE and write everything else around it, -n times.

    The kept part is written back note for note; the line-up, tempo and metre are FILE's.

    \b
    Examples:
      musicgen accompany melody.mid --keep top -n 4
      musicgen accompany run/best.ckpt song.mid --keep violin --out band
    """
    from musicgen.generate.accompany import accompany_songs

    checkpoint, file = _split(paths)
    task = AccompanyConfig(str(file), keep)
    _run(
        checkpoint,
        file,
        out,
        num_samples,
        device,
        sampling,
        "accompany",
        accompany_songs,
        task,
    )
