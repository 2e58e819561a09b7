"""Fixtures for live play: a test-driven clock, in-process ports, a running scheduler,
and a check that a stream of sent messages leaves nothing sounding."""

from __future__ import annotations

from collections import Counter

import mido
import pytest

from musicgen.live.clock import ManualClock
from musicgen.live.ports import MemoryOutput
from musicgen.live.scheduler import Scheduler


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(0.0)


@pytest.fixture
def out(clock) -> MemoryOutput:
    return MemoryOutput("synth", clock=clock)


@pytest.fixture
def scheduler(out, clock):
    s = Scheduler(out, clock).start()
    yield s
    s.stop()


def synth_state(messages: list[mido.Message]) -> tuple[Counter, set[int]]:
    """What a synth would hold after `messages`: strikes still sounding per (channel, key)
    (a note-off ends all strikes of its key, as on most synths; CC 123 ends the channel's),
    and the channels whose sustain pedal is down."""
    sounding: Counter = Counter()
    pedal: set[int] = set()
    for m in messages:
        if m.type == "note_on" and m.velocity > 0:
            sounding[(m.channel, m.note)] += 1
        elif m.type in ("note_on", "note_off"):
            sounding.pop((m.channel, m.note), None)
        elif m.type == "control_change" and m.control == 123:
            for key in [k for k in sounding if k[0] == m.channel]:
                del sounding[key]
        elif m.type == "control_change" and m.control == 64:
            (pedal.add if m.value >= 64 else pedal.discard)(m.channel)
    return sounding, pedal


def note_balance(messages: list[mido.Message]) -> tuple[int, int]:
    ons = sum(1 for m in messages if m.type == "note_on" and m.velocity > 0)
    offs = sum(
        1 for m in messages if m.type == "note_off" or (m.type == "note_on" and m.velocity == 0)
    )
    return ons, offs


@pytest.fixture
def tiny_midi(tmp_path):
    """120 qpm, then 60 qpm from quarter 2: C4 at 0 s for 0.5 s; E4 at 0.5 s for 0.5 s with
    a bass D2 (program 33) for 0.25 s; G4 at 1 s for one quarter, now 1 s."""
    import numpy as np

    from musicgen.midi import NOTE_DTYPE, Score, write_midi

    rows = [
        (0.0, 1.0, 60, 80, 0, False),
        (1.0, 1.0, 64, 90, 0, False),
        (1.0, 0.5, 38, 70, 33, False),
        (2.0, 1.0, 67, 100, 0, False),
    ]
    score = Score(notes=np.array(rows, dtype=NOTE_DTYPE), tempos=[(0.0, 120.0), (2.0, 60.0)])
    return write_midi(score, tmp_path / "tiny.mid")
