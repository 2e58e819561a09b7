"""Commands that make and measure music: generate, render, metrics, compare."""

from __future__ import annotations

from pathlib import Path

import click

from musicgen.cli.group import cli
from musicgen.cli.options import (
    build_config,
    config_options,
    control_options,
    length_of,
    length_options,
    plan_of,
    plan_option,
    sampling_options,
)
from musicgen.config import (
    GenerateConfig,
)
from musicgen.errors import MusicgenError


@cli.command()
@click.argument("checkpoint", type=click.Path(path_type=Path), required=False)
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("song.mid"),
    show_default=True,
    help="MIDI file to write; with several samples, song-001.mid, song-002.mid ...",
)
@length_options
@config_options(GenerateConfig, types={"num_samples": click.IntRange(1, 256)})
@plan_option
@click.option(
    "--device", default="cpu", show_default=True, help="torch device to sample on (cpu, cuda, mps)."
)
def generate(checkpoint, out, device, **settings):
    """Generate songs from a checkpoint.

    \b
    Examples:
      musicgen generate checkpoints/transformer/best.ckpt --out song.mid --bars 16
      musicgen generate run/best.ckpt -n 4 -t 0.9 --top-p 0.9 --primer intro.mid --primer-bars 4
    """
    from musicgen.checkpoint import load_model
    from musicgen.generate import generate_songs, write_songs

    length = length_of(settings)
    settings = plan_of(settings)
    primer = settings.get("primer")
    if primer is not None and not Path(primer).is_file():
        raise MusicgenError(f"primer {primer} does not exist")
    if settings.get("primer_bars") is not None and primer is None:
        raise MusicgenError("--primer-bars needs --primer")
    cfg = build_config(GenerateConfig, settings, **length)
    if checkpoint is None:
        from musicgen.pretrained import default_checkpoint

        checkpoint = default_checkpoint()
        click.echo(f"using the pretrained default {checkpoint}")
    model = load_model(checkpoint, device)
    songs, primer_info = generate_songs(model, cfg, device)
    if primer_info and primer_info.unknown:
        click.echo(
            f"primer: {primer_info.unknown} values unknown to the model's vocabulary became the nearest it knows"
        )
    if primer_info and primer_info.left_out:
        click.echo(
            f"primer: {primer_info.left_out} notes on instruments the model has never seen were left out"
        )
    try:
        paths = write_songs(songs, out, model, cfg, primer_info)
    except OSError as exc:
        raise MusicgenError(f"cannot write {out}: {exc.strerror or exc}") from None
    for song, path in zip(songs, paths, strict=True):
        click.echo(f"{path}: {song.score.num_notes} notes, {song.score.duration_seconds:.1f} s")


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="WAV file to write [default: FILE with .wav].",
)
@click.option(
    "--soundfont",
    type=click.Path(dir_okay=False, path_type=Path),
    help="General MIDI soundfont (.sf2) for FluidSynth [default: the system's, e.g. FluidR3_GM].",
)
@click.option(
    "--png",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also draw a piano roll to this PNG.",
)
@click.option(
    "--builtin", is_flag=True, help="Use the built-in synth even when FluidSynth is installed."
)
def render(file, out, soundfont, png, builtin):
    """Render a MIDI file to WAV (FluidSynth, or a built-in synth) and a piano roll.

    \b
    Examples:
      musicgen render song.mid
      musicgen render song.mid --out song.wav --png song.png
    """
    from musicgen.listen.render import render as run

    out = out or file.with_suffix(".wav")
    try:
        result = run(file, out, soundfont=soundfont, use_fluidsynth=not builtin)
    except OSError as exc:
        raise MusicgenError(f"cannot write {out}: {exc.strerror or exc}") from None
    click.echo(
        f"wrote {result.path} ({result.seconds:.1f} s, {result.rate} Hz mono), rendered by {result.note}"
    )
    if png:
        from musicgen.listen.pianoroll import draw_pianoroll
        from musicgen.midi import read_score

        try:
            draw_pianoroll(read_score(file), png, title=file.name)
        except OSError as exc:
            raise MusicgenError(f"cannot write {png}: {exc.strerror or exc}") from None
        click.echo(f"wrote {png}")


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--reference",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Real music to compare with: a folder of MIDI or a dataset (its validation split).",
)
@click.option(
    "--train",
    "train_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Training corpus for the memorisation check: a folder of MIDI or a dataset (its training split).",
)
@click.option(
    "--bars",
    "per_bar",
    is_flag=True,
    help="Each bar's density, polyphony, register and dynamics, and the key: what the controls ask for.",
)
@click.option(
    "--levels",
    "levels_of",
    type=click.Path(exists=True, path_type=Path),
    help="With --bars: also each bar's levels 1-5, as this model's controls count them.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def metrics(files, reference, train_dir, per_bar, levels_of, as_json):
    """Objective statistics of MIDI files, per file and per set.

    \b
    Examples:
      musicgen metrics samples/*.mid
      musicgen metrics samples/ --reference work/bach --train work/bach --json
      musicgen metrics song.mid --bars --levels checkpoints/gru/best.ckpt
    """
    import json

    from musicgen.listen.metrics import jsonable
    from musicgen.listen.report import as_text, measure

    edges = None
    if levels_of is not None:
        from musicgen.checkpoint import load_model

        edges = (load_model(levels_of).meta.get("controls") or {}).get("edges")
        if not edges:
            raise MusicgenError(f"--levels {levels_of}: the model was trained without controls")
    out = measure(
        files,
        reference=reference,
        train_dir=train_dir,
        per_bar=per_bar or edges is not None,
        edges=edges,
    )
    click.echo(json.dumps(jsonable(out)) if as_json else as_text(out))


@cli.command()
@click.argument("checkpoints", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for the page, audio, piano rolls and MIDI.",
)
@click.option("--primer", type=click.Path(path_type=Path), help="MIDI file every model continues.")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Dataset: primer from a held-out piece, real continuation, n-gram baseline, bits per note.",
)
@click.option(
    "--primer-bars",
    type=click.IntRange(1),
    default=4,
    show_default=True,
    help="Bars of the primer piece to continue.",
)
@click.option(
    "--samples",
    "-n",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Samples (rows) per model.",
)
@click.option(
    "--bars",
    type=click.IntRange(1),
    default=8,
    show_default=True,
    help="Bars of new music per sample.",
)
@sampling_options
@control_options
@click.option(
    "--instruments", help="Add these instruments to the primer's line-up, e.g. 0,33,drums."
)
@click.option(
    "--reference/--no-reference",
    default=True,
    show_default=True,
    help="Add the real continuation of the primer as a column.",
)
@click.option(
    "--ngram/--no-ngram",
    default=True,
    show_default=True,
    help="Add a Kneser-Ney n-gram baseline column (needs a dataset).",
)
@click.option(
    "--blind",
    is_flag=True,
    help="Hide and shuffle the candidates in each row; reveal after voting.",
)
@click.option("--no-eval", is_flag=True, help="Skip held-out bits per note.")
@click.option(
    "--infill",
    "infill_bars",
    help="Compare infilling instead: bars FIRST-LAST of the piece (--primer, or a held-out piece) written again.",
)
@click.option(
    "--accompany",
    "keep",
    help="Compare accompaniment instead: keep this part of the piece (top, an instrument) and write the rest.",
)
@click.option(
    "--soundfont",
    type=click.Path(dir_okay=False, path_type=Path),
    help="General MIDI soundfont for FluidSynth.",
)
@click.option(
    "--builtin-synth",
    is_flag=True,
    help="Render with the built-in synth even when FluidSynth is installed.",
)
@click.option("--device", default="cpu", show_default=True, help="torch device to sample on.")
def compare(
    checkpoints,
    out,
    primer,
    data_dir,
    primer_bars,
    samples,
    bars,
    instruments,
    reference,
    ngram,
    blind,
    no_eval,
    infill_bars,
    keep,
    soundfont,
    builtin_synth,
    device,
    **sampling,
):
    """Continue one primer with several checkpoints; write a listening page.

    With --infill or --accompany every model does the same rewrite of one piece instead.

    \b
    Examples:
      musicgen compare checkpoints/gru/best.ckpt checkpoints/transformer/best.ckpt --data work/bach --out work/compare
      musicgen compare a.ckpt b.ckpt --primer intro.mid --out listen --blind
      musicgen compare a.ckpt b.ckpt --data work/bach --infill 5-8 --out fills
    """
    from musicgen.cli.passage import parse_span
    from musicgen.generate.primer import parse_instruments
    from musicgen.listen.compare import CompareConfig, run_compare

    lineup = parse_instruments(instruments) if instruments is not None else None
    gen = build_config(
        GenerateConfig,
        plan_of(sampling),
        num_samples=samples,
        unit="bars",
        length=float(bars),
        instruments=lineup,
    )
    cfg = CompareConfig(
        out=out,
        primer=primer,
        data=data_dir,
        primer_bars=primer_bars,
        sampling=gen,
        reference=reference,
        ngram=ngram,
        blind=blind,
        evaluate=not no_eval,
        soundfont=soundfont,
        use_fluidsynth=not builtin_synth,
        device=device,
        infill=parse_span(infill_bars, "--infill", int) if infill_bars else None,
        accompany=keep,
    )
    summary = run_compare(list(checkpoints), cfg, echo=click.echo)
    cols = summary["columns"]
    click.echo(
        f"wrote {out / 'index.html'}: {len(summary['rows'])} rows x {len(cols)} columns ({', '.join(c['name'] for c in cols)})"
    )
