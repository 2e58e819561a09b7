"""A whole MIDI file in a model's tokens, for the commands that rewrite part of it
(infill, accompany): its notes as read, its tokens, and the map between the steps
of the model's clock and the file's own time.

The map is the encoder's: quarters (beats mode) or seconds through the file's tempo
map (seconds mode), on the step grid, less the steps cut from long silences. So a
passage written in steps lands in the file's time, beside the notes kept as read.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicgen.errors import MusicgenError, ReadError
from musicgen.generate.primer import model_tokens
from musicgen.midi.read import read_score
from musicgen.midi.score import NOTE_DTYPE, Score
from musicgen.tokens.fill import Timeline
from musicgen.tokens.space import DRUMS
from musicgen.tokens.stream import Note


@dataclass
class Piece:
    path: Path
    score: Score  # as read: the notes kept are written back from here
    uids: np.ndarray  # universal ids in the model's vocabulary, BOS ... EOS
    line: Timeline
    cut: np.ndarray  # (step, steps cut before it), by step (Encoded.cut)
    unknown: int  # values snapped to the nearest the vocabulary has
    left_out: int  # notes on instruments or keys the model has never seen

    @property
    def cfg(self):
        return self.line.vocab.cfg

    # --- the clock ---------------------------------------------------------------------
    def _units(self, quarters) -> np.ndarray:
        """Quarters of the file -> the model's time unit (quarters or seconds)."""
        q = np.asarray(quarters, dtype=np.float64)
        return q if self.cfg.time == "beats" else self.score.quarters_to_seconds(q)

    def _quarters(self, units) -> np.ndarray:
        u = np.asarray(units, dtype=np.float64)
        return u if self.cfg.time == "beats" else self.quarters_at_seconds(u)

    def quarters_at_seconds(self, seconds) -> np.ndarray:
        """The tempo map's inverse: seconds are piecewise linear in quarters."""
        knots = np.array(sorted({0.0, *(t for t, _ in self.score.tempos)}))
        far = max(float(knots[-1]), float(self.score.end)) + 1e6
        knots = np.append(knots, far)
        return np.interp(seconds, self.score.quarters_to_seconds(knots), knots)

    def steps_of(self, quarters) -> np.ndarray:
        """Step of the model's clock at these quarters of the file; a time inside a silence
        the encoder shortened lands where the music after the silence begins, at the latest."""
        raw = np.rint(self._units(quarters) * self.cfg.steps_per_unit).astype(np.int64)
        steps = raw - self._cut_before(raw, moved=False)
        if len(self.cut) and self.cut[:, 1].any():
            k = np.searchsorted(self.cut[:, 0] + self.cut[:, 1], raw, side="right")
            nxt = self.cut[np.minimum(k, len(self.cut) - 1), 0]
            steps = np.where(k < len(self.cut), np.minimum(steps, nxt), steps)
        return steps

    def quarters_of(self, steps) -> np.ndarray:
        """Quarters of the file at these steps of the model's clock."""
        steps = np.asarray(steps, dtype=np.int64)
        raw = steps + self._cut_before(steps, moved=True)
        return self._quarters(raw / self.cfg.steps_per_unit)

    def _cut_before(self, steps: np.ndarray, *, moved: bool) -> np.ndarray:
        if not len(self.cut) or not self.cut[:, 1].any():
            return np.zeros_like(steps)
        at = self.cut[:, 0] if moved else self.cut[:, 0] + self.cut[:, 1]
        k = np.searchsorted(at, steps, side="right") - 1
        return np.where(k >= 0, self.cut[np.maximum(k, 0), 1], 0)

    def notes_to_score(self, notes: list[Note]) -> np.ndarray:
        """Notes read from the stream (steps) as score notes in the file's time."""
        out = np.zeros(len(notes), dtype=NOTE_DTYPE)
        if not notes:
            return out
        arr = np.array([(n.step, n.dur, n.pitch, n.velocity, n.program) for n in notes])
        start = self.quarters_of(arr[:, 0])
        out["start"] = start
        out["duration"] = np.maximum(self.quarters_of(arr[:, 0] + arr[:, 1]) - start, 1e-3)
        out["pitch"], out["velocity"] = arr[:, 2], arr[:, 3]
        drum = arr[:, 4] == DRUMS
        out["program"] = np.where(drum, 0, arr[:, 4])
        out["drum"] = drum
        return out

    def with_notes(self, kept: np.ndarray, new: np.ndarray) -> Score:
        """The file's score (tempo and metre maps) holding the notes `kept` as read and the
        `new` ones around them. A MIDI channel cannot hold two sounding notes of one key,
        so a new note that would overlap a kept one of its key and instrument is shortened
        to end where the kept one begins, or left out if it would begin inside it; the
        kept notes then read back exactly as they are."""
        voice = lambda n: n["pitch"].astype(np.int64) * 256 + np.where(n["drum"], 255, n["program"])  # noqa: E731
        keep = np.ones(len(new), dtype=bool)
        new = new.copy()
        kv, nv = voice(kept), voice(new)
        for i in range(len(new)):
            same = kept[kv == nv[i]]
            start = new["start"][i]
            if (
                (same["start"] <= start + 1e-9) & (same["start"] + same["duration"] > start + 1e-9)
            ).any():
                keep[i] = False
                continue
            later = same["start"][same["start"] > start + 1e-9]
            if len(later):
                new["duration"][i] = min(new["duration"][i], later.min() - start)
        out = copy.copy(self.score)
        out.notes = np.sort(
            np.concatenate([kept, new[keep]]), order=["start", "pitch"], kind="stable"
        )
        return out


def read_piece(path: str | Path, vocab) -> Piece:
    """A file in `vocab`'s tokens; a file that cannot be read is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise MusicgenError(f"{path} does not exist")
    try:
        score = read_score(path)
    except ReadError as exc:
        raise MusicgenError(f"{path}: {exc}") from None
    try:
        enc, uids, unknown, left_out = model_tokens(copy.deepcopy(score), vocab)
    except MusicgenError as exc:
        raise MusicgenError(f"{path}: {exc}") from None
    return Piece(path, score, uids, Timeline(uids, vocab), enc.cut, unknown, left_out)
