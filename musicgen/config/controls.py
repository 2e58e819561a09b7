"""The controls a user can ask for (tokens/controls.py is their place in the stream):
their names, their levels, the keys, and how a command line spells them."""

from __future__ import annotations

import re

from musicgen.errors import MusicgenError

BAR_CONTROLS = ("density", "polyphony", "register", "dynamics")
# The bar controls `--prior corpus` draws for a new piece, bar by bar, from the training piece
# its line-up comes from: its texture. Not the register (a piece is moved into its key
# afterwards, which shifts every bar) nor the dynamics (a corpus often plays at one level).
TEXTURE = ("density", "polyphony")
LEVELS = 5
PITCH_CLASSES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MODES = ("major", "minor")
KEYS = len(PITCH_CLASSES) * len(MODES)
_LETTERS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}


def key_name(value: int) -> str:
    """'D minor' for the key tonic + 12 * mode."""
    return f"{PITCH_CLASSES[int(value) % 12]} {MODES[int(value) // 12]}"


def parse_key(text: str) -> int:
    """'D minor', 'Dm', 'F#', 'Bb major' -> tonic + 12 * mode (major unless it says minor)."""
    m = re.fullmatch(r"\s*([A-Ga-g])\s*([#b♯♭]?)\s*(major|minor|maj|min|m)?\s*", text)
    if not m:
        raise MusicgenError(f"--key {text!r}: give a key such as 'D minor', 'F#', 'Bb major'")
    tonic = _LETTERS[m.group(1).lower()] + {"#": 1, "♯": 1, "b": -1, "♭": -1}.get(m.group(2), 0)
    minor = (m.group(3) or "").startswith("m") and m.group(3) not in ("maj", "major")
    return tonic % 12 + 12 * int(minor)


def parse_levels(text: str, name: str = "level") -> tuple[int, ...]:
    """'3' (every bar) or '1,1,2,3' (bar by bar, the last one held) -> levels 1..LEVELS."""
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or not all(p.isdigit() and 1 <= int(p) <= LEVELS for p in parts):
        raise MusicgenError(
            f"--{name} {text!r}: give a level from 1 to {LEVELS}, or one per bar (1,1,2,3)"
        )
    return tuple(int(p) for p in parts)


def show_levels(levels: tuple[int, ...]) -> str:
    return ",".join(map(str, levels))
