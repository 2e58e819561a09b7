"""Control tokens: what a piece is asked to be, learnt from the music itself.

Per bar, four attributes measured on the bar's notes (musicgen/analysis/bars.py), each
as one of `LEVELS` levels cut at the quantiles of the training corpus's own bars:

    Density_l     note onsets in the bar                    1 = sparsest ... 5 = densest
    Polyphony_l   notes sounding at once
    Register_l    mean pitch                                1 = lowest ... 5 = highest
    Dynamics_l    mean velocity                             1 = softest ... 5 = loudest

and the piece's key (musicgen/analysis/key.py), `Key_D_minor`, stated with every bar's
controls so that a window of the piece, or a transformer's sliding context, always holds it.

Where they stand in the stream (the grammar in stream.py allows them only there):

    BOS [bar controls] Inst+ body ...     the first bar's, before the line-up it may shape
    ... Shift [bar controls] ...          after the Shift that enters a new bar

A bar's controls are [Key] then `BAR_CONTROLS` in order, each at most once, any of them
left out. They move no time and change nothing else the grammar follows, so a stream
with its controls taken out is the same music. They are never written to MIDI and
never predicted: training inserts them into each window after transposition (so the
key and register move with the pitches), drops each at random, and leaves them out of
the loss; generation forces the ones asked for and bans the rest.
"""

from __future__ import annotations

from musicgen.config.controls import (  # noqa: F401 - the control tokens' names and levels
    BAR_CONTROLS,
    KEYS,
    LEVELS,
    MODES,
    PITCH_CLASSES,
    key_name,
)


def ctrl_value(attribute: str, level: int) -> int:
    """The value of a bar control's token: `level` counts from 0 (0 .. LEVELS - 1)."""
    if not 0 <= level < LEVELS:
        raise ValueError(f"a control level is 0..{LEVELS - 1}, got {level}")
    return BAR_CONTROLS.index(attribute) * LEVELS + level


def ctrl_of(value: int) -> tuple[int, int]:
    """(attribute index, level) of a bar control's value."""
    return divmod(int(value), LEVELS)


def key_value(tonic: int, mode: int) -> int:
    """The value of a Key token: tonic 0..11 (C = 0), mode 0 major, 1 minor."""
    return int(tonic) % 12 + 12 * int(mode)


def key_of(value: int) -> tuple[int, int]:
    """(tonic, mode) of a Key token's value."""
    return int(value) % 12, int(value) // 12


def ctrl_strings() -> list[str]:
    return [f"{a.title()}_{lvl + 1}" for a in BAR_CONTROLS for lvl in range(LEVELS)]


def key_strings() -> list[str]:
    return [f"Key_{key_name(v).replace(' ', '_')}" for v in range(KEYS)]
