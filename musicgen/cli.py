"""The `musicgen` command line: each command parses, validates, calls the library.

Errors a user can cause print one line (`error: ...`) and exit with code 2;
nothing here prints a traceback unless MUSICGEN_DEBUG=1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from musicgen.config import (
    MODEL_NAMES,
    TIME_MODES,
    EncodingConfig,
    GenerateConfig,
    IngestConfig,
    ModelConfig,
    TrainConfig,
)
from musicgen.errors import MusicgenError
from musicgen.text import plural


class Group(click.Group):
    """Turns library errors into one line and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MusicgenError as exc:
            if os.environ.get("MUSICGEN_DEBUG"):
                raise
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="musicgen")
def cli() -> None:
    """Train sequence models on your MIDI, generate songs, listen and compare."""


class Duration(click.ParamType):
    """A time budget in minutes, written as `5`, `90s`, `1h30m` or DD:HH:MM:SS."""

    name = "duration"

    def convert(self, value, param, ctx):
        from musicgen.durations import parse_minutes

        try:
            return parse_minutes(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def config_options(
    cls,
    types: dict | None = None,
    defaults: dict | None = None,
    only: tuple[str, ...] | None = None,
):
    """Options for the fields of a config dataclass made with `config.opt`: the flag, the
    default and the help come from the field, so the CLI never restates a setting."""
    import dataclasses

    types, defaults = types or {}, defaults or {}

    def decorate(f):
        for fld in reversed(dataclasses.fields(cls)):
            meta = fld.metadata
            if not meta.get("cli") or (only is not None and fld.name not in only):
                continue
            flag = "--" + (meta.get("flag") or fld.name).replace("_", "-")
            decls = [flag, *([meta["short"]] if meta.get("short") else [])]
            default = defaults.get(fld.name, fld.default)
            if isinstance(fld.default, bool) or fld.type in ("bool", "bool | None"):
                f = click.option(
                    f"{flag}/--no-{flag[2:]}",
                    fld.name,
                    default=default,
                    show_default=default is not None,
                    help=meta["help"],
                )(f)
            else:
                kind = types.get(fld.name) or {"int": int, "float": float}.get(str(fld.type), str)
                f = click.option(
                    *decls,
                    fld.name,
                    type=kind,
                    default=default,
                    show_default=default is not None,
                    help=meta["help"],
                )(f)
        return f

    return decorate


def build_config(cls, values: dict, **fixed):
    """A config from the command's values (its own fields only); a bad value is one line."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(cls)}
    try:
        return cls(**{k: v for k, v in values.items() if k in names}, **fixed)
    except ValueError as exc:
        raise MusicgenError(str(exc)) from None


SAMPLING = ("temperature", "top_k", "top_p", "seed", "repeat_bias")


def sampling_options(f):
    """The sampling settings every command that generates takes (generate, compare ...)."""
    return config_options(GenerateConfig, only=SAMPLING)(f)


def encoding_options(f):
    """Options shared by every command that encodes music."""
    d = EncodingConfig()
    opts = [
        click.option(
            "--time",
            type=click.Choice(TIME_MODES),
            default=d.time,
            show_default=True,
            help="Clock: beats (a grid of 1/48 quarter, tempo map and bars kept), seconds (10 ms steps, for played music), or auto (chosen per corpus).",
        ),
        click.option(
            "--velocity-bins",
            type=click.IntRange(0, 127),
            default=d.velocity_bins,
            show_default=True,
            help="Velocity levels kept; 0 drops velocity.",
        ),
        click.option(
            "--programs",
            type=click.Choice(["note", "main"]),
            default=d.programs,
            show_default=True,
            help="Keep each note's instrument, or map all to the piece's main one.",
        ),
        click.option(
            "--drums/--no-drums",
            default=d.drums,
            show_default=True,
            help="Keep drum-channel notes (each drum key a token of its own).",
        ),
        click.option(
            "--max-duration",
            "max_duration_quarters",
            type=click.FloatRange(0, min_open=True),
            default=d.max_duration_quarters,
            show_default=True,
            help="Longest note in beats mode, in quarters; longer ones are clipped (counted).",
        ),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def build_encoding(**kw) -> EncodingConfig:
    keys = ("time", "velocity_bins", "programs", "drums", "max_duration_quarters")
    try:
        return EncodingConfig(**{k: kw.pop(k) for k in keys})
    except ValueError as exc:
        raise MusicgenError(str(exc)) from None


@cli.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out", "-o", type=click.Path(path_type=Path), required=True, help="Dataset folder to write."
)
@click.option(
    "--val-fraction",
    type=click.FloatRange(0.0, 1.0, max_open=True),
    default=0.1,
    show_default=True,
    help="Share of files held out for validation, decided by path.",
)
@click.option(
    "--workers",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Worker processes; 0 uses every core.",
)
@click.option(
    "--file-timeout",
    type=click.FloatRange(0.1),
    default=20.0,
    show_default=True,
    help="Seconds one file may take before it is skipped.",
)
@encoding_options
def ingest(sources, out, val_fraction, workers, file_timeout, **enc):
    """Turn MIDI / MusicXML / ABC / Humdrum files into a token dataset.

    \b
    Example:
      musicgen ingest data/midi --out work/bach
    """
    from tqdm import tqdm

    from musicgen.data.ingest import ingest as run

    cfg = build_encoding(**enc)
    bar = tqdm(total=0, unit="file", disable=None, leave=False, file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        summary = run(
            sources,
            out,
            cfg,
            IngestConfig(val_fraction=val_fraction, workers=workers, file_timeout=file_timeout),
            progress,
        )
    finally:
        bar.close()
    for line in summary.lines():
        click.echo(line)
    click.echo(f"report: {out / 'report.json'}")


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the decoded MIDI here to hear what quantisation did.",
)
@click.option(
    "--show",
    type=click.IntRange(0),
    default=40,
    show_default=True,
    help="How many tokens to print.",
)
@encoding_options
def tokenize(file, out, show, **enc):
    """Show what a model sees for one file; optionally write the round trip.

    \b
    Example:
      musicgen tokenize data/midi/bwv1.6.mid --out roundtrip.mid
    """
    from musicgen.errors import ReadError
    from musicgen.midi import read_score, write_midi
    from musicgen.tokens import decode, encode, token_space
    from musicgen.tokens.timebase import resolve_time

    cfg = build_encoding(**enc)
    try:
        score = read_score(file)
    except ReadError as exc:
        raise MusicgenError(f"{file}: {exc}") from None
    cfg, choice = resolve_time(cfg, [score])
    enc_ = encode(score, cfg)
    strings = token_space(cfg).strings()
    stats = enc_.stats
    click.echo(f"file: {file}")
    click.echo(f"time: {choice.mode} ({choice.reason})")
    click.echo(
        f"tracks: {score.n_tracks}  notes read: {stats['notes_in']}  kept: {len(enc_.notes)}"
    )
    for key in sorted(stats):
        if key not in ("notes_in", "notes_kept") and stats[key]:
            click.echo(f"  {key.replace('_', ' ')}: {stats[key]}")
    click.echo(f"tokens: {len(enc_.ids)}  tokens/note: {enc_.tokens_per_note:.2f}")
    click.echo("first tokens: " + " ".join(strings[i] for i in enc_.ids[:show].tolist()))
    if out:
        decoded, _ = decode(enc_.ids, cfg)
        write_midi(decoded, out)
        click.echo(f"wrote {out} ({decoded.num_notes} notes, {decoded.duration_seconds:.1f} s)")


def load_yaml_defaults(ctx: click.Context, param: click.Parameter, value):
    """--config FILE: YAML whose keys match the long option names set the defaults."""
    if value is None:
        return value
    import yaml

    try:
        data = yaml.safe_load(Path(value).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise click.BadParameter(f"cannot read {value}: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise click.BadParameter(f"{value} must hold a mapping of option names to values")
    # A key is a long option name (`hidden`, `max-steps`, `max_steps`); the parameter
    # behind it may be called differently (--hidden sets d_model, --data sets data_dir).
    names: dict[str, str] = {}
    for p in ctx.command.params:
        if p.name == "config" or not isinstance(p, click.Option):
            continue
        names[p.name] = p.name
        for opt in p.opts:
            if opt.startswith("--"):
                names[opt[2:].replace("-", "_")] = p.name
    defaults = {}
    for key, v in data.items():
        name = names.get(str(key).replace("-", "_"))
        if name is None:
            raise click.BadParameter(f"{value}: unknown option {key!r}")
        defaults[name] = v
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


@cli.command()
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False),
    callback=load_yaml_defaults,
    is_eager=True,
    expose_value=False,
    help="YAML file whose keys match these options (command-line flags win).",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="Dataset folder written by `musicgen ingest`.",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run folder [default: checkpoints/MODEL].",
)
@config_options(ModelConfig, types={"name": click.Choice(MODEL_NAMES)})
@config_options(TrainConfig, types={"max_time": Duration()}, defaults={"epochs": None})
@click.option(
    "--accelerator",
    default="auto",
    show_default=True,
    help="Lightning accelerator: cpu, gpu, mps, auto.",
)
@click.option(
    "--devices",
    default="auto",
    show_default=True,
    help="Lightning devices: a count, a list like 0,1, or auto.",
)
@click.option(
    "--num-nodes",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Machines for multi-node DDP.",
)
@click.option(
    "--strategy",
    default="auto",
    show_default=True,
    help="Lightning strategy: auto, ddp, ddp_spawn, fsdp ...",
)
@click.option(
    "--precision",
    default="auto",
    show_default=True,
    help="32-true, bf16-mixed, 16-mixed; auto = bf16-mixed on GPUs that have it.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the run in --out from last.ckpt (weights, optimizer, step).",
)
@click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Show the progress bar."
)
def train(
    data_dir, out, accelerator, devices, num_nodes, strategy, precision, resume, progress, **kw
):
    """Train a model on an ingested dataset.

    \b
    Example:
      musicgen train --data work/bach --model transformer --max-time 5
    """
    from musicgen.quiet import quiet_lightning
    from musicgen.train import HardwareConfig
    from musicgen.train import train as run

    quiet_lightning()
    if kw["epochs"] is None:  # a time budget alone means "train for that long"
        kw["epochs"] = 0 if kw["max_time"] > 0 else 20
    if kw["val_every"] > 1:
        kw["val_every"] = int(kw["val_every"])  # a number of batches, not a fraction of an epoch
    model_cfg = build_config(ModelConfig, kw, max_len=kw["seq_len"])
    train_cfg = build_config(TrainConfig, kw)
    model_name = model_cfg.name
    hw = HardwareConfig(accelerator, str(devices), num_nodes, strategy, precision)
    ctx = click.get_current_context()
    size_flags = ("d_model", "n_layers", "n_heads", "seq_len", "batch_size")
    given = [
        n
        for n in size_flags
        if ctx.get_parameter_source(n) not in (click.core.ParameterSource.DEFAULT, None)
    ]
    sized = train_cfg.max_time > 0 and not given and not resume
    if sized:
        model_cfg, train_cfg = _sized(data_dir, model_cfg, train_cfg, hw)
    out = out or Path("checkpoints") / model_name
    result = run(data_dir, out, model_cfg, train_cfg, hw, resume=resume, progress_bar=progress)
    if not result.is_global_zero:
        return  # with several devices every process runs this command; one reports
    if result.best is None and not result.interrupted:
        raise MusicgenError("training ended before the first validation; no checkpoint was written")
    stopped = "interrupted after " if result.interrupted else ""
    best = (
        f", best validation {result.best_val_bpn:.3f} bits/note"
        if result.best
        else ", no validation yet"
    )
    click.echo(
        f"{model_name}: {stopped}{result.steps} steps in {result.seconds / 60:.1f} min{best}"
    )
    if result.best:
        click.echo(f"best: {result.best}")
    if result.last:
        click.echo(
            f"last: {result.last}" + ("  (continue with --resume)" if result.interrupted else "")
        )
    if result.interrupted:
        sys.exit(130)  # the shell's code for a run stopped by Ctrl-C
    if not result.val_is_held_out:
        click.echo(
            f"warning: {data_dir} has no validation files, so validation used the first training piece and "
            "its scores are not held out; ingest with a larger --val-fraction"
        )


def _sized(data_dir: Path, model_cfg, train_cfg, hw):
    """Size the model for the time budget on the device it will train on (musicgen/sizing.py).

    With several devices, the first process probes and hands its choice to the ones
    Lightning launches (they inherit the environment), so every rank builds one model."""
    import json

    from musicgen.config import ModelConfig, TrainConfig, from_dict, to_dict
    from musicgen.sizing import size_for_budget

    run = [str(data_dir), model_cfg.name, train_cfg.max_time]
    chosen = json.loads(os.environ.get("MUSICGEN_SIZED", "{}"))
    if chosen.get("run") == run:  # a process Lightning launched: the first one has probed
        return from_dict(ModelConfig, chosen["model"]), from_dict(TrainConfig, chosen["train"])
    if hw.num_nodes > 1:
        raise MusicgenError(
            "sizing by budget works on one machine; with several nodes give --hidden, --layers, --heads and --seq-len"
        )
    import time
    from dataclasses import replace

    import torch

    gpu = hw.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    device = torch.device("cuda" if gpu else "cpu")
    t0 = time.perf_counter()
    sizing = size_for_budget(data_dir, model_cfg, train_cfg, device)
    # the probe's time comes out of the budget: M minutes means M minutes in all
    sizing.train = replace(
        sizing.train, max_time=max(train_cfg.max_time - (time.perf_counter() - t0) / 60, 0.05)
    )
    click.echo(
        sizing.describe(train_cfg.max_time, "a GPU" if gpu else "this CPU")
        + "; give --hidden, --layers, --seq-len ... to choose yourself"
    )
    os.environ["MUSICGEN_SIZED"] = json.dumps(
        {"run": run, "model": to_dict(sizing.model), "train": to_dict(sizing.train)}
    )
    return sizing.model, sizing.train


@cli.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.argument("sources", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--data",
    "data_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Dataset: its validation split is scored and its training split trains the n-gram baseline [default: the one the checkpoint was trained on].",
)
@click.option(
    "--context",
    type=click.IntRange(2),
    help="Score in independent windows of N tokens, each starting cold [default: every piece whole, each token with all that came before it, as in generation].",
)
@click.option("--no-ngram", is_flag=True, help="Skip the Kneser-Ney baseline.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def evaluate(checkpoint, sources, data_dir, context, no_ngram, as_json):
    """Held-out bits per note of a checkpoint, beside an n-gram baseline.

    \b
    Examples:
      musicgen evaluate checkpoints/gru/best.ckpt
      musicgen evaluate checkpoints/gru/best.ckpt my_songs/ --data work/bach --json
    """
    import json

    from musicgen.checkpoint import load_model
    from musicgen.evaluate import evaluate as run

    model = load_model(checkpoint)
    rep = run(model, data_dir=data_dir, sources=list(sources), context=context, ngram=not no_ngram)
    if as_json:
        click.echo(json.dumps(rep.to_dict()))
        return
    click.echo(
        f"{rep.model} ({rep.checkpoint}) on {plural(rep.pieces, 'piece')}, {rep.notes:,} notes, {rep.tokens:,} tokens, "
        + (f"windows of {rep.context}" if rep.context else "whole pieces")
    )
    click.echo(
        f"  bits/note {rep.bits_per_note:.3f}  bits/token {rep.bits_per_token:.3f}  perplexity {rep.perplexity:.2f}  accuracy {rep.accuracy:.1%}"
    )
    if rep.files_in_training:
        click.echo(
            f"  warning: {rep.files_in_training} of these files are in the training split, so their scores are not held out (and the n-gram has memorised them)"
        )
    if rep.unknown_tokens:
        click.echo(
            f"  {rep.unknown_tokens} tokens unknown to the vocabulary were dropped before scoring"
        )
    for name, why in rep.files_skipped.items():
        click.echo(f"  skipped {name}: {why}")
    if rep.ngram_order is not None:
        click.echo(
            f"  n-gram (Kneser-Ney, best order {rep.ngram_order}): bits/note {rep.ngram_bits_per_note:.3f}; model / n-gram = {rep.ratio_to_ngram:.3f}"
        )


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
@click.option(
    "--num-samples",
    "-n",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Songs to generate (decoded together as one batch).",
)
@sampling_options
@click.option("--primer", type=click.Path(path_type=Path), help="MIDI file to continue.")
@click.option("--primer-bars", type=click.IntRange(1), help="Use only the primer's first N bars.")
@click.option(
    "--bars",
    type=click.FloatRange(0, min_open=True),
    help="Length of new music in bars [default: 16].",
)
@click.option(
    "--seconds", type=click.FloatRange(0, min_open=True), help="Length of new music in seconds."
)
@click.option("--notes", type=click.IntRange(1), help="Length of new music in notes.")
@click.option("--tokens", type=click.IntRange(1), help="Length of new music in tokens.")
@click.option("--tempo", type=float, help="Play back at this tempo (quarter notes per minute).")
@click.option("--program", type=int, help="Play every note with this General MIDI program (0-127).")
@click.option(
    "--instruments",
    help="The line-up, e.g. 0,33,25,drums (General MIDI programs and 'drums') [default: the model chooses, as the corpus does].",
)
@click.option(
    "--no-cache",
    is_flag=True,
    help="Recompute the whole context every step (for benchmarks and checks).",
)
@click.option(
    "--device", default="cpu", show_default=True, help="torch device to sample on (cpu, cuda, mps)."
)
def generate(
    checkpoint,
    out,
    num_samples,
    primer,
    primer_bars,
    bars,
    seconds,
    notes,
    tokens,
    tempo,
    program,
    instruments,
    no_cache,
    device,
    **sampling,
):
    """Generate songs from a checkpoint.

    \b
    Examples:
      musicgen generate checkpoints/transformer/best.ckpt --out song.mid --bars 16
      musicgen generate run/best.ckpt -n 4 -t 0.9 --top-p 0.9 --primer intro.mid --primer-bars 4
    """
    from musicgen.checkpoint import load_model
    from musicgen.generate import generate_songs, parse_instruments, write_songs

    lineup = parse_instruments(instruments) if instruments is not None else None
    lengths = {
        k: v
        for k, v in (("bars", bars), ("seconds", seconds), ("notes", notes), ("tokens", tokens))
        if v is not None
    }
    if len(lengths) > 1:
        raise MusicgenError("give one length: --bars, --seconds, --notes or --tokens")
    unit, length = next(iter(lengths.items())) if lengths else ("bars", 16)
    if primer is not None and not primer.is_file():
        raise MusicgenError(f"primer {primer} does not exist")
    if primer_bars is not None and primer is None:
        raise MusicgenError("--primer-bars needs --primer")
    cfg = build_config(
        GenerateConfig,
        sampling,
        num_samples=num_samples,
        unit=unit,
        length=float(length),
        primer=str(primer) if primer else None,
        primer_bars=primer_bars,
        tempo=tempo,
        program=program,
        instruments=lineup,
        use_cache=not no_cache,
    )
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
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def metrics(files, reference, train_dir, as_json):
    """Objective statistics of MIDI files, per file and per set.

    \b
    Examples:
      musicgen metrics samples/*.mid
      musicgen metrics samples/ --reference work/bach --train work/bach --json
    """
    import json

    from musicgen.data.ingest import discover
    from musicgen.errors import ReadError
    from musicgen.listen import metrics as M
    from musicgen.midi import read_score

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
    if as_json:
        click.echo(json.dumps(M.jsonable(out)))
        return
    click.echo(_metrics_text(out))


def _metrics_text(out: dict) -> str:
    from musicgen.listen import metrics as M

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
    soundfont,
    builtin_synth,
    device,
    **sampling,
):
    """Continue one primer with several checkpoints; write a listening page.

    \b
    Examples:
      musicgen compare checkpoints/gru/best.ckpt checkpoints/transformer/best.ckpt --data work/bach --out work/compare
      musicgen compare a.ckpt b.ckpt --primer intro.mid --out listen --blind
    """
    from musicgen.generate import parse_instruments
    from musicgen.listen.compare import CompareConfig, run_compare

    lineup = parse_instruments(instruments) if instruments is not None else None
    gen = build_config(
        GenerateConfig,
        sampling,
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
    )
    summary = run_compare(list(checkpoints), cfg, echo=click.echo)
    cols = summary["columns"]
    click.echo(
        f"wrote {out / 'index.html'}: {len(summary['rows'])} rows x {len(cols)} columns ({', '.join(c['name'] for c in cols)})"
    )


@cli.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for model.safetensors + musicgen.json.",
)
def export(checkpoint, out):
    """Export a checkpoint as safetensors + JSON (no pickle at all).

    \b
    Example:
      musicgen export checkpoints/gru/best.ckpt --out checkpoints/pretrained/gru
    """
    from musicgen.checkpoint import export_model, load_model

    path = export_model(checkpoint, out)
    model = load_model(path)  # prove the export loads on its own
    n = sum(p.numel() for p in model.core.parameters())
    click.echo(
        f"wrote {path / 'model.safetensors'} and {path / 'musicgen.json'} ({model.model_cfg.name}, {n:,} parameters)"
    )


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
