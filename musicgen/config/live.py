"""Live play (`musicgen play`): how the model takes part, and when."""

from __future__ import annotations

from dataclasses import dataclass

from musicgen.config.fields import opt

PLAY_MODES = ("answer", "continue", "accompany")


@dataclass(frozen=True)
class LiveConfig:
    mode: str = opt(
        "answer",
        "answer: when you rest, the model answers for --bars and gives way when you play again; continue: it plays on from what you played until you play again or stop it; accompany: it plays under you on your instrument, beat by beat as you play (the Python API also takes a line-up of its own).",
    )
    bars: float = opt(2.0, "Bars of each answer (answer mode).", flag="bars")
    wait: float | None = opt(
        None,
        "Seconds of rest before the model answers [default: one bar at your tempo].",
    )
    tempo: float | None = opt(
        None, "Fix the tempo, in quarter notes a minute [default: followed from your onsets]."
    )
    channel: int = opt(
        2,
        "First MIDI channel (1-16) the model plays on; each of its instruments takes the next, drums channel 10.",
    )
    lead: float = opt(
        0.5,
        "Seconds before the rest is certain that the model starts thinking of its answer.",
        cli=False,
    )
    ahead: float = opt(
        1.0, "Seconds of music the model decodes ahead of the clock, at most.", cli=False
    )

    def __post_init__(self) -> None:
        if self.mode not in PLAY_MODES:
            raise ValueError(f"mode must be one of {', '.join(PLAY_MODES)}, got {self.mode!r}")
        if not self.bars > 0:
            raise ValueError("bars must be positive")
        if self.wait is not None and not self.wait > 0:
            raise ValueError("wait must be a positive number of seconds")
        if self.tempo is not None and not 20 <= self.tempo <= 400:
            raise ValueError("tempo must be between 20 and 400 quarter notes a minute")
        if not 1 <= self.channel <= 16 or self.channel == 10:
            raise ValueError("channel must be 1-16 and not 10 (the drums' channel)")

    def rest_seconds(self) -> float:
        """The rest that cues an answer: --wait, or one 4/4 bar at the tempo (120 qpm if
        it is followed, the tempo the follower starts from)."""
        return self.wait if self.wait is not None else 4 * 60.0 / (self.tempo or 120.0)
