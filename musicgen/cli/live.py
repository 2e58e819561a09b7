"""Commands for live play: ports (what MIDI ports there are) and play."""

from __future__ import annotations

from pathlib import Path

import click

from musicgen.cli.group import cli
from musicgen.cli.options import build_config, config_options, control_options, plan_of
from musicgen.config import PASSAGE_SAMPLING, PLAY_MODES, GenerateConfig, LiveConfig
from musicgen.errors import MusicgenError


@cli.command()
def ports():
    """List the MIDI inputs and outputs (through python-rtmidi)."""
    from musicgen.live.ports import list_ports

    found = list_ports()
    for kind, names in (("inputs", found.inputs), ("outputs", found.outputs)):
        click.echo(f"{kind}: " + (", ".join(repr(n) for n in names) if names else "none"))


@cli.command()
@click.argument("checkpoint", type=click.Path(path_type=Path), required=False)
@click.option(
    "--in",
    "inport",
    help="The player: a MIDI input port (a unique part of its name), or a MIDI file played in real time [default: the first input].",
)
@click.option(
    "--out",
    "outport",
    help="Where the model plays: a MIDI output port [default: a new virtual port 'musicgen' where the system has them].",
)
@config_options(LiveConfig, types={"mode": click.Choice(PLAY_MODES)})
@config_options(GenerateConfig, only=(*PASSAGE_SAMPLING, "program"))
@control_options
@click.option(
    "--record",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the session here: the player's part and the model's on their own tracks, with a sidecar.",
)
@click.option("--device", default="cpu", show_default=True, help="torch device to decode on.")
def play(checkpoint, inport, outport, record, device, **settings):
    """Play with a model: it answers when you rest, or plays on from what you played.

    \b
    Examples:
      musicgen play --in tune.mid --out 'FLUID Synth'
      musicgen play run/best.ckpt --in 'Keystation' --mode continue --record sessions/
    """
    import sys
    import time

    from musicgen.checkpoint import load_model
    from musicgen.live.clock import RealClock
    from musicgen.live.ports import open_input, open_output
    from musicgen.live.record import write_session
    from musicgen.live.session import play as run

    live = build_config(LiveConfig, settings)
    cfg = build_config(GenerateConfig, plan_of(settings))
    clock = RealClock()
    source = open_input(inport, clock)  # a port that is not there: one line, before loading
    output = open_output(outport or "musicgen", virtual=outport is None)
    if checkpoint is None:
        from musicgen.pretrained import default_checkpoint

        checkpoint = default_checkpoint()
        click.echo(f"using the pretrained default {checkpoint}")
    model = load_model(checkpoint, device)
    # the decoding thread's Python work must not hold the scheduler's thread back for
    # the interpreter's default 5 ms (benchmarks/live.py measured it)
    sys.setswitchinterval(0.001)
    click.echo(f"playing with {model.model_cfg.name} ({live.mode}); Ctrl-C to stop")
    session = run(model, cfg, live, source, output, clock)
    click.echo(f"{session.ended}: {session.takes} answers, {len(session.sent)} messages sent")
    if record is not None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        info = {
            "checkpoint": str(model.path),
            "seed": cfg.seed,
            "settings": {"live": vars(live), "sampling": vars(cfg)},
        }
        mid, _ = write_session(
            record / f"session-{stamp}.mid",
            session.played,
            session.sent,
            info,
            tempo=session.tempo,
        )
        click.echo(f"recorded {mid}")
    if session.ended.startswith("stopped"):
        raise SystemExit(130)
    if session.ended != "end of input":
        raise MusicgenError(session.ended)
