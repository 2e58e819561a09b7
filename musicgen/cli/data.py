"""Commands that read music: ingest, tokenize."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from musicgen.cli.group import cli
from musicgen.cli.options import build_config, build_encoding, config_options, encoding_options
from musicgen.config import IngestConfig
from musicgen.errors import MusicgenError


@cli.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out", "-o", type=click.Path(path_type=Path), required=True, help="Dataset folder to write."
)
@config_options(IngestConfig)
@encoding_options
def ingest(sources, out, **kw):
    """Turn MIDI / MusicXML / ABC / Humdrum files into a token dataset.

    \b
    Example:
      musicgen ingest data/midi --out work/bach
    """
    from tqdm import tqdm

    from musicgen.data.ingest import ingest as run

    cfg = build_encoding(kw)
    bar = tqdm(total=0, unit="file", disable=None, leave=False, file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        summary = run(
            sources,
            out,
            cfg,
            build_config(IngestConfig, kw),
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
def tokenize(file, out, show, **kw):
    """Show what a model sees for one file; optionally write the round trip.

    \b
    Example:
      musicgen tokenize data/midi/bwv1.6.mid --out roundtrip.mid
    """
    from musicgen.errors import ReadError
    from musicgen.midi import read_score, write_midi
    from musicgen.tokens import decode, encode, token_space
    from musicgen.tokens.timebase import resolve_time

    cfg = build_encoding(kw)
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
