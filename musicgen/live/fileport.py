"""A MIDI file as the player: its notes arrive on an input port at their own times.

For demos without a keyboard and for tests: `musicgen play --in tune.mid` lets a file
play the human part, and the rest of live play (listening, rests, the model answering)
runs exactly as with a device. The file is read by `musicgen.midi` (so the sustain
pedal is already folded into durations and the tempo map is applied) and played on the
session's clock, stamping each message with its scheduled time.
"""

from __future__ import annotations

import threading
from pathlib import Path

import mido
import numpy as np

from musicgen.errors import ReadError
from musicgen.live.clock import Clock, Wake
from musicgen.live.ports import InputPort
from musicgen.midi import Score, read_score

DRUM_CHANNEL = 9
_MELODIC_CHANNELS = [c for c in range(16) if c != DRUM_CHANNEL]


def file_events(score: Score, start_at: float = 0.0) -> list[tuple[float, mido.Message]]:
    """The score's notes as (clock seconds, message), in the order to play them: a
    channel per instrument (drums on channel 10), its program set first, and at one
    instant note-offs before note-ons, so a key struck again sounds again."""
    notes = score.notes
    channels: dict[tuple[bool, int], int] = {}
    for drum, program in zip(notes["drum"].tolist(), notes["program"].tolist(), strict=True):
        key = (bool(drum), int(program))
        if key not in channels:  # order of first appearance; beyond 15 instruments, share
            channels[key] = (
                DRUM_CHANNEL if drum else _MELODIC_CHANNELS[len(channels) % len(_MELODIC_CHANNELS)]
            )
    events: list[tuple[float, int, mido.Message]] = []
    for (drum, program), ch in channels.items():
        if not drum:
            events.append(
                (start_at, 0, mido.Message("program_change", channel=ch, program=program))
            )
    on = score.quarters_to_seconds(notes["start"]) + start_at
    off = score.quarters_to_seconds(notes["start"] + notes["duration"]) + start_at
    for i in np.argsort(notes["start"], kind="stable").tolist():
        ch = channels[(bool(notes["drum"][i]), int(notes["program"][i]))]
        pitch = int(np.clip(notes["pitch"][i], 0, 127))
        vel = int(np.clip(notes["velocity"][i], 1, 127))
        events.append(
            (float(on[i]), 2, mido.Message("note_on", channel=ch, note=pitch, velocity=vel))
        )
        events.append((float(off[i]), 1, mido.Message("note_off", channel=ch, note=pitch)))
    events.sort(key=lambda e: (e[0], e[1]))  # stable: equal keys keep the file's order
    return [(t, m) for t, _, m in events]


class FilePlayer(InputPort):
    """Plays `path` on `clock` from `start_at` (default: now) in its own thread.

    Closing it early lifts every key it holds (note-offs at the closing time), as a
    player's hands leave the keyboard; when the file is done the port `ended`.
    """

    def __init__(self, path: str | Path, clock: Clock, *, start_at: float | None = None) -> None:
        try:
            score = read_score(path)
        except ReadError as exc:  # a missing or damaged file: one line that names it
            raise ReadError(f"{path}: {exc}") from None
        start = clock.now() if start_at is None else float(start_at)
        self.events = file_events(score, start)
        self._stop = Wake()
        super().__init__(Path(path).name, clock)
        self._thread = threading.Thread(
            target=self._run, name=f"file-player {self.name}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        held: set[tuple[int, int]] = set()
        for t, msg in self.events:
            if not self.clock.sleep_until(t, self._stop):
                break
            self.deliver(msg, t)
            if msg.type == "note_on":
                held.add((msg.channel, msg.note))
            elif msg.type == "note_off":
                held.discard((msg.channel, msg.note))
        now = self.clock.now()
        for ch, note in sorted(held):  # empty unless closed mid-piece
            self.deliver(mido.Message("note_off", channel=ch, note=note), now)
        self.end()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the file to finish (or the player to close)."""
        self._thread.join(timeout)

    def _close(self) -> None:
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(2.0)
        super()._close()
