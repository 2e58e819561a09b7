"""The click group: library errors become one line and exit code 2."""

from __future__ import annotations

import os

import click

from musicgen.errors import MusicgenError


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


def main() -> None:
    cli()
