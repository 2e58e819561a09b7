"""Commands that make and judge models: train (with sizing by budget), evaluate, export."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from musicgen.cli.group import cli
from musicgen.cli.options import (
    Duration,
    build_config,
    config_options,
    load_yaml_defaults,
)
from musicgen.config import (
    MODEL_NAMES,
    HardwareConfig,
    ModelConfig,
    TrainConfig,
)
from musicgen.errors import MusicgenError
from musicgen.text import plural


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
@config_options(HardwareConfig)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the run in --out from last.ckpt (weights, optimizer, step, settings); only --epochs, --max-steps, --max-time, --val-every, --patience, --log-every and --num-workers may change.",
)
@click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Show the progress bar."
)
def train(data_dir, out, resume, progress, **kw):
    """Train a model on an ingested dataset.

    \b
    Example:
      musicgen train --data work/bach --model transformer --max-time 5
    """
    from musicgen.train import train as run
    from musicgen.train.init import resolve_init
    from musicgen.train.quiet import quiet_lightning

    quiet_lightning()
    if kw["epochs"] is None:  # a time budget alone means "train for that long"
        kw["epochs"] = 0 if kw["max_time"] > 0 else 20
    if kw["val_every"] > 1:
        kw["val_every"] = int(kw["val_every"])  # a number of batches, not a fraction of an epoch
    model_cfg = build_config(ModelConfig, kw, max_len=kw["seq_len"])
    train_cfg = build_config(TrainConfig, kw)
    model_name = model_cfg.name
    hw = build_config(HardwareConfig, kw)
    # the options the user chose, on the command line or in --config: on --resume these are
    # compared with the checkpoint's settings, and the others are taken from it
    ctx = click.get_current_context()
    given = {
        p.name
        for p in ctx.command.params
        if ctx.get_parameter_source(p.name) not in (click.core.ParameterSource.DEFAULT, None)
    }
    size_flags = {"d_model", "n_layers", "n_heads", "seq_len", "batch_size"}
    start = None
    if not resume:  # a resumed run keeps where it started (train/resume.py)
        start = resolve_init(train_cfg.init, model_name)
        click.echo(start.note)
    if start is not None and start.model is not None:
        model_cfg, train_cfg = _fine_tune(start, model_cfg, train_cfg, sorted(given & size_flags))
    elif train_cfg.max_time > 0 and not given & size_flags and not resume:
        model_cfg, train_cfg = _sized(data_dir, model_cfg, train_cfg, hw)
    out = out or Path("checkpoints") / model_name
    result = run(
        data_dir,
        out,
        model_cfg,
        train_cfg,
        hw,
        resume=resume,
        given=given,
        progress_bar=progress,
        start=start,
        echo=click.echo,
    )
    model_name = result.model or model_name  # on --resume, the checkpoint's
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
    if result.start_bpn is not None:  # a fine-tune: what its start read, for scale
        click.echo(f"before the first step: {result.start_bpn:.3f} bits/note")
        if result.best and result.best_val_bpn > result.start_bpn:
            click.echo(
                "warning: the weights it started from read your validation pieces better "
                "than best.ckpt does; on few pieces a fine-tune can, and still sound more like "
                "them than its start (listen), or train on more pieces"
            )
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


def _fine_tune(start, model_cfg, train_cfg, given: list[str]):
    """A fine-tune keeps its starting point's size and, by default, its batch and its training
    window up to `--seq-len`'s default; asking for another size is a one-line error.

    The window is capped because a base's longer one costs more per step than it gives in a
    fine-tune of minutes: the transformer base's 512 tokens let a 5-minute fine-tune on 100
    folk tunes take 103 steps (3.384 held-out bits/note), 256 tokens 233 steps (3.067), 128
    tokens 501 steps (3.063); 2026-12-06, docs/results.md."""
    from dataclasses import replace

    architecture = [n for n in given if n in ("d_model", "n_layers", "n_heads")]
    if architecture:
        base = start.model.model_cfg
        flags = {"d_model": "--hidden", "n_layers": "--layers", "n_heads": "--heads"}
        raise MusicgenError(
            f"{', '.join(flags[n] for n in architecture)}: a fine-tune keeps the size of "
            f"{start.model.path} ({base.d_model} wide, {base.n_layers} layers); "
            "use --init scratch to choose one"
        )
    saved = start.model.meta.get("train") or {}
    keep = {n: saved[n] for n in ("seq_len", "batch_size") if n not in given and n in saved}
    if "seq_len" in keep:
        keep["seq_len"] = min(keep["seq_len"], train_cfg.seq_len)  # the default, not given
    return replace(model_cfg, max_len=keep.get("seq_len", train_cfg.seq_len)), replace(
        train_cfg, **keep
    )


def _sized(data_dir: Path, model_cfg, train_cfg, hw):
    """Size the model for the time budget on the device it will train on (musicgen/sizing.py).

    With several devices, the first process probes and hands its choice to the ones
    Lightning launches (they inherit the environment), so every rank builds one model."""
    import json

    from musicgen.config import ModelConfig, TrainConfig, from_dict, to_dict
    from musicgen.train.sizing import size_for_budget

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
    sizing = size_for_budget(data_dir, model_cfg, train_cfg, device, hw.resolved_precision())
    # the probe's time comes out of the budget: M minutes means M minutes in all
    sizing.train = replace(sizing.train, probe_minutes=(time.perf_counter() - t0) / 60)
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
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for model.safetensors + musicgen.json.",
)
@click.option(
    "--base",
    "as_base",
    is_flag=True,
    help="Mark it as a base that `musicgen train --init` fine-tunes (scripts/train_base.sh).",
)
@click.option(
    "--float16",
    is_flag=True,
    help="Store the weights in float16: half the bytes; read back into float32.",
)
def export(checkpoint, out, as_base, float16):
    """Export a checkpoint as safetensors + JSON (no pickle at all).

    \b
    Example:
      musicgen export checkpoints/gru/best.ckpt --out checkpoints/pretrained/gru
    """
    from musicgen.checkpoint import export_model, load_model
    from musicgen.train.init import BASE_VERSION

    extra = {"base": {"version": BASE_VERSION}} if as_base else None
    path = export_model(checkpoint, out, extra, float16=float16)
    model = load_model(path)  # prove the export loads on its own
    n = sum(p.numel() for p in model.core.parameters())
    click.echo(
        f"wrote {path / 'model.safetensors'} and {path / 'musicgen.json'} ({model.model_cfg.name}, {n:,} parameters)"
    )
