"""Accompaniment: one part of a piece kept, everything else written around it.

Constrained decoding, so any model does it, trained to fill or not: the model writes
the piece from its start with the file's line-up, and the kept part's notes are
written into the stream at their own steps (`KeptRules`). Its Shifts may not pass the
next kept onset; there, the instruments that come before the kept one (the stream's
order within a step: instruments upwards, drums last; within one, the highest key
first) may play first, and then the kept notes are written, the model's choice or not.
So at every onset the model hears all of the kept part up to and including it when
its instrument comes first, as the top voice does. The tempo and metre are the file's.
The kept part is written back as read, note for note.

Which part: `--keep top` (the top voice: each note at least as high as every note
sounding at its onset), an instrument by its place in the line-up (1 is the lowest
program), by General MIDI program (`program:41`, or `41` past the line-up's length),
by name (`violin`, `drums`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pretty_midi

from musicgen.checkpoint import LoadedModel
from musicgen.config import AccompanyConfig, GenerateConfig
from musicgen.errors import MusicgenError
from musicgen.generate.controls import ControlPlan, open_piece
from musicgen.generate.piece import Piece, read_piece
from musicgen.generate.rules import RowRules, follow
from musicgen.generate.songs import Song, decode_rows
from musicgen.tokens.encoding import programs_of
from musicgen.tokens.space import DRUMS, EOS, PAD
from musicgen.tokens.stream import AFTER_PITCH, AFTER_VEL, FREE


def _programs(notes: np.ndarray) -> np.ndarray:
    """Each note's instrument: its program, or DRUMS for the drum kit."""
    return np.where(notes["drum"], DRUMS, notes["program"]).astype(int)


def instruments_of(score) -> list[int]:
    """The piece's line-up as the encoding sees it: programs by number, DRUMS last."""
    return sorted(set(_programs(score.notes).tolist()))


def top_voice(notes: np.ndarray) -> np.ndarray:
    """Bool per note (pitched): at least as high as every pitched note sounding at its onset."""
    top = np.zeros(len(notes), dtype=bool)
    pitched = np.flatnonzero(~notes["drum"])
    start, end = notes["start"][pitched], notes["start"][pitched] + notes["duration"][pitched]
    pitch = notes["pitch"][pitched]
    for k, i in enumerate(pitched.tolist()):
        sounding = (start <= start[k] + 1e-9) & (end > start[k] + 1e-9)
        top[i] = pitch[k] >= pitch[sounding].max()
    return top


def kept_part(score, keep: str) -> tuple[np.ndarray, str, int | None]:
    """(bool per note: the kept part, how to name it, the instrument if it is kept whole);
    a one-line error if it is not there."""
    notes = score.notes
    lineup = instruments_of(score)
    program = _programs(notes)
    text = keep.strip().lower()
    if text == "top":
        kept = top_voice(notes)
        if not kept.any():
            raise MusicgenError("--keep top: the piece has no pitched notes")
        return kept, "the top voice", None
    if text.startswith("program:") or (text.isdigit() and int(text) > len(lineup)):
        value = text.removeprefix("program:")
        if not value.isdigit() or not 0 <= int(value) <= 127:
            raise MusicgenError(f"--keep {keep}: not a General MIDI program 0-127")
        chosen = int(value)
    elif text.isdigit():
        if int(text) < 1:
            raise MusicgenError(f"--keep {keep}: instruments are numbered from 1")
        chosen = lineup[int(text) - 1]
    elif text in ("drums", "drum", "kit"):
        chosen = DRUMS
    else:
        try:
            chosen = pretty_midi.instrument_name_to_program(keep.strip().title())
        except ValueError:
            matches = [
                p
                for p in lineup
                if p != DRUMS and text in pretty_midi.program_to_instrument_name(p).lower()
            ]
            if not matches:
                raise MusicgenError(
                    f"--keep {keep}: no such instrument in the piece; it has {_names(lineup)}"
                ) from None
            chosen = matches[0]
    if chosen not in lineup:
        raise MusicgenError(
            f"--keep {keep}: the piece has no such instrument; it has {_names(lineup)}"
        )
    if len(lineup) == 1:
        raise MusicgenError(
            f"--keep {keep} keeps the piece's only instrument and leaves nothing to write; "
            "try --keep top"
        )
    return program == chosen, _names([chosen]), chosen


def _names(programs) -> str:
    return ", ".join(
        "drums" if p == DRUMS else f"{k}: {pretty_midi.program_to_instrument_name(p)} ({p})"
        for k, p in enumerate(programs, 1)
    )


@dataclass(frozen=True)
class KeptNote:
    step: int
    program: int
    key: int  # pitch, or drum key
    dur: int  # universal id of its Dur (pitched)
    vel: int | None  # universal id of its Vel level, if the encoding has velocity
    level: int


class KeptRules(RowRules):
    """The decode loop's rules while a part is written around the kept one (see module)."""

    def __init__(
        self,
        piece: Piece,
        kept: np.ndarray,
        header: np.ndarray,
        batch: int,
        exclusive: int | None = None,
        plan: ControlPlan | None = None,
    ):
        self.exclusive = exclusive  # an instrument kept whole: the model writes none of its notes
        vocab = self.vocab = piece.line.vocab
        space = vocab.space
        self.space = space
        notes = piece.score.notes[kept]
        program = programs_of(piece.score.notes, vocab.cfg)[kept]  # as the encoder names them
        unknown = sorted({int(p) for p in program if vocab.lookup[space.prog.offset + int(p)] < 0})
        if unknown:
            raise MusicgenError(
                f"the model never saw {_names(unknown)} in training, so it cannot hear the kept part"
            )
        # a kept note the vocabulary cannot spell (a key out of range, a drum it lacks) is
        # written back all the same, but the model does not hear it
        pitch = notes["pitch"].astype(int)
        cfg = vocab.cfg
        spellable = np.where(
            program == DRUMS,
            vocab.lookup[space.drum.offset + np.clip(pitch, 0, 127)] >= 0,
            (pitch >= cfg.pitch_min) & (pitch <= cfg.pitch_max),
        )
        notes, program = notes[spellable], program[spellable]
        steps = piece.steps_of(notes["start"])
        ends = piece.steps_of(notes["start"] + notes["duration"])
        self.kept: list[KeptNote] = []
        seen: set[tuple[int, int, int]] = set()  # a unison doubling is one note, as encoded
        for k in np.lexsort((-notes["pitch"], program, steps)).tolist():
            if (int(steps[k]), int(program[k]), int(notes["pitch"][k])) in seen:
                continue
            seen.add((int(steps[k]), int(program[k]), int(notes["pitch"][k])))
            drum = program[k] == DRUMS
            dur = None if drum else vocab.nearest("dur", max(int(ends[k] - steps[k]), 1))
            vel = vocab.nearest("vel", int(notes["velocity"][k])) if vocab.grammar.has_vel else None
            key = int(notes["pitch"][k])
            level = int(space.value[vel]) if vel is not None else vocab.cfg.default_velocity
            self.kept.append(KeptNote(int(steps[k]), int(program[k]), key, dur or 0, vel, level))
        # the conductor: the file's TimeSig and Tempo tokens, by step
        line = piece.line
        meta = space.tempo.contains(line.uids) | space.timesig.contains(line.uids)
        self.meta = [(int(line.before[i]), int(line.uids[i])) for i in np.flatnonzero(meta)]
        self.end = int(line.before[-1])  # the piece's last onset
        # the piece from its start: the plan's first bar is the piece's (its controls in header)
        super().__init__(vocab, follow(vocab, header, batch, end_header=True), plan, 0)
        self.next_kept, self.next_meta = [0] * batch, [0] * batch
        self.forcing = [False] * batch
        self.generated: list[list] = [[] for _ in range(batch)]
        self.min_shift = float(vocab.shift_steps.min())
        fam = vocab.families
        self.note_family = (fam == "vel") | (fam == "pitch") | (fam == "dur") | (fam == "drum")
        self.prog_value = np.where(fam == "prog", space.value[vocab.uids], -1)

    def _kept_token(self, stream, note: KeptNote) -> int:
        """The next token (universal id) the kept note needs, given where the stream is."""
        s = self.space
        play = int((s.drum if note.program == DRUMS else s.pitch).id_of_value(note.key))
        if stream.after == AFTER_PITCH:
            return note.dur
        if stream.after == FREE and stream.program != note.program:
            return int(s.prog.offset + note.program)
        if stream.after != AFTER_VEL and note.vel is not None:
            if stream.velocity.get(note.program) != note.level:
                return note.vel
        return play

    def _here(self, b: int, step: int) -> bool:
        """Has row b's stream come to `step` (or as near as its Shifts can take it)?"""
        return step - self.streams[b].step < self.min_shift

    def _kept_here(self, b: int) -> KeptNote | None:
        k = self.next_kept[b]
        if k < len(self.kept) and self._here(b, self.kept[k].step):
            return self.kept[k]
        return None

    def _meta_here(self, b: int) -> int | None:
        m = self.next_meta[b]
        if m < len(self.meta) and self._here(b, self.meta[m][0]):
            return self.meta[m][1]
        return None

    def allowed(self, b: int) -> np.ndarray:
        vocab, stream = self.vocab, self.streams[b]
        row = np.zeros(len(vocab), dtype=bool)
        note = self._kept_here(b)
        if self.forcing[b]:
            row[vocab.lookup[self._kept_token(stream, note)]] = True
            return row
        allowed = vocab.allowed(stream)
        if stream.after != FREE:  # the model finishes a note of its own
            return allowed.copy()
        while (uid := self._meta_here(b)) is not None:  # the file's tempo and metre, first
            if stream.allows(uid):
                row[vocab.lookup[uid]] = True
                return row
            self.next_meta[b] += 1  # it restates the value in force
        if self.exclusive is not None:
            allowed = allowed & (self.prog_value != self.exclusive)
            if stream.program == self.exclusive:
                allowed = allowed & ~self.note_family
        if note is not None:  # instruments below the kept one may play first, then it
            earlier = (self.prog_value >= 0) & (self.prog_value < note.program)
            if stream.program is not None and stream.program < note.program:
                earlier |= self.note_family
            row = allowed & earlier & (vocab.shift_steps == np.inf)
            row[vocab.lookup[self._kept_token(stream, note)]] = True
            row[vocab.eos_id] = False
            return row
        stops = [self.end]
        if self.next_kept[b] < len(self.kept):
            stops.append(self.kept[self.next_kept[b]].step)
        if self.next_meta[b] < len(self.meta):
            stops.append(self.meta[self.next_meta[b]][0])
        room = min(stops) - stream.step
        row = allowed & ((vocab.shift_steps == np.inf) | (vocab.shift_steps <= room))
        # the piece ends with its last onset, after every kept note
        row[vocab.eos_id] = bool(allowed[vocab.eos_id]) and self.next_kept[b] >= len(self.kept)
        if not row.any():  # only a Shift of the file's own would do: end here
            row[vocab.eos_id] = True
        return row

    def take(self, b: int, t: int) -> bool:
        stream, uid = self.streams[b], int(self.vocab.uids[t])
        if uid == EOS:
            return True
        if self._meta_here(b) == uid and stream.after == FREE:
            self.next_meta[b] += 1
        note = self._kept_here(b)
        if note is not None and stream.after == FREE and uid == self._kept_token(stream, note):
            self.forcing[b] = True  # the kept note begins
        played = stream.feed(uid)
        if played is None:
            return False
        if self.forcing[b]:
            self.next_kept[b] += 1
            self.forcing[b] = self._kept_here(b) is not None
        else:
            self.generated[b].append(played)
        return False


def accompany_songs(
    model: LoadedModel, cfg: GenerateConfig, task: AccompanyConfig, device="cpu"
) -> tuple[list[Song], Piece, str]:
    vocab = model.vocab
    piece = read_piece(task.file, vocab)
    kept, name, exclusive = kept_part(piece.score, task.keep)
    plan = ControlPlan.of(cfg, vocab)
    prompt = open_piece(vocab.lookup[piece.line.uids[: piece.line.body]], plan, vocab)
    header = vocab.uids[prompt]
    B = cfg.num_samples
    rules = KeptRules(piece, kept, header, B, exclusive, plan)
    body = len(piece.line.uids) - piece.line.body
    # a guard against a model that never reaches the end
    seq = decode_rows(model, cfg, prompt, body * 3 + 256, rules, device)
    songs = []
    for row in range(B):
        score = piece.with_notes(
            piece.score.notes[kept], piece.notes_to_score(rules.generated[row])
        )
        ids = seq[row]
        songs.append(Song(score, ids[ids != PAD], len(prompt), score.num_notes - int(kept.sum())))
    return songs, piece, name
