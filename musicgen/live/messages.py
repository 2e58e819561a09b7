"""What the performer hands the scheduler: `Timed` messages, checked and clamped.

A model's numbers can fall outside MIDI (a pitch transposed past 127, a velocity of 0
meaning "silent" to the model but "note-off" to a synth), and a mido message built with
`skip_checks` can hold anything. Everything bound for the output port passes `clean`,
which rebuilds the message from its fields clamped into range, so the port never sees
an invalid byte and the scheduler's bookkeeping sees the message the synth will.
"""

from __future__ import annotations

from numbers import Integral
from typing import NamedTuple

import mido

# What the scheduler sends and a player plays: channel voice messages. (Clock ticks,
# active sensing and sysex from a keyboard would only flood the listener.)
CHANNEL_TYPES = frozenset(
    {
        "note_on",
        "note_off",
        "control_change",
        "program_change",
        "pitchwheel",
        "aftertouch",
        "polytouch",
    }
)
_RANGES = {"channel": (0, 15), "pitch": (-8192, 8191)}  # every other field is a data byte


class Timed(NamedTuple):
    """A message and the clock second it is due: the performer's queue item."""

    time: float
    msg: mido.Message


def clean(msg: mido.Message) -> mido.Message:
    """A valid copy of a channel message, each field clamped into range; a velocity-0
    note-on becomes the note-off it means. ValueError for anything else."""
    if not isinstance(msg, mido.Message) or msg.type not in CHANNEL_TYPES:
        raise ValueError(f"the scheduler sends channel messages only, not {msg!r}")
    fields = {}
    for name, value in msg.dict().items():
        if name in ("type", "time"):
            continue
        if not isinstance(value, Integral) or isinstance(value, bool):
            raise ValueError(f"{msg.type} {name} must be an integer, not {value!r}")
        lo, hi = _RANGES.get(name, (0, 127))
        fields[name] = min(max(int(value), lo), hi)
    if msg.type == "note_on" and fields["velocity"] == 0:
        return mido.Message("note_off", **fields)
    return mido.Message(msg.type, **fields)


def note(start: float, end: float, pitch: int, velocity: int, channel: int = 0) -> list[Timed]:
    """A note as its two timed messages (clamped: a model's numbers may fall outside MIDI)."""
    key = dict(channel=min(max(int(channel), 0), 15), note=min(max(int(pitch), 0), 127))
    vel = min(max(int(velocity), 1), 127)
    return [
        Timed(float(start), mido.Message("note_on", velocity=vel, **key)),
        Timed(float(max(end, start)), mido.Message("note_off", **key)),
    ]
