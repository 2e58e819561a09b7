"""The one interpreter of the token stream: its grammar, its clock, its notes.

A `Stream` reads tokens one at a time, as a player reads a part: it knows the
line-up declared after BOS, the current instrument and each instrument's
velocity, where it is in time (steps, seconds, the bar length) and which
tokens may come next. Decoding, generation (the grammar mask and the length
targets), primer repair and the metrics all read tokens through it; nothing
else parses the stream.

The grammar (`Stream.allowed`):

    piece   := BOS [bar] Inst+ body note EOS | BOS EOS    Inst_ values strictly rising
    body    := (Shift+ [bar] | TimeSig | Tempo | note)*
    note    := [Prog] [Vel] (Pitch Dur | Drum)
    bar     := [Key] [Density] [Polyphony] [Register] [Dynamics]    (tokens/controls.py)

* a Prog names a declared instrument other than the current one and leads into a note;
* an instrument's first note carries a Vel (when the encoding has velocity), and a
  Vel never restates the level the instrument already has;
* Pitch is for a pitched instrument, Drum for the drum kit;
* TimeSig and Tempo exist in beats mode only, and neither restates the value in force;
* a piece ends on a note (the encoder drops whatever follows the last onset);
* a bar's controls come only right after BOS (the first bar's, before the line-up, which
  they may shape) or right after the Shift that enters the bar; they move no time and
  change nothing else the grammar follows.

It also holds a generated piece to the encoder's canonical order, so no sequence
the grammar allows spells one piece in two ways: only a Shift of the longest
length may be followed by another Shift (the encoder writes a long gap as longest
Shifts and the rest); at one time step a TimeSig comes before
a Tempo, both before the notes, each at most once; the step's notes go by
instrument upwards (drums last) and, within one, from the highest key down.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from musicgen.tokens.controls import BAR_CONTROLS, ctrl_of
from musicgen.tokens.grammar import (  # noqa: F401 - the stream's states, named for its readers
    _CTRL,
    _DRUM,
    _DUR,
    _FILL,
    _INST,
    _KEY,
    _PITCH,
    _PROG,
    _SHIFT,
    _SPECIAL,
    _START,
    _TEMPO,
    _TIMESIG,
    _VEL,
    AFTER_PITCH,
    AFTER_PROG,
    AFTER_VEL,
    BODY,
    END,
    FREE,
    HEADER,
    START,
    Grammar,
    _grammar,
)
from musicgen.tokens.space import BOS, DRUMS, EOS, TokenSpace


@dataclass(frozen=True)
class Note:
    step: int
    dur: int  # steps; drum hits get `Stream.drum_steps`
    pitch: int
    velocity: int
    program: int  # 0..127, or DRUMS
    drum: bool


class Stream:
    """One piece read token by token. `feed` returns the note a token completes, if any."""

    def __init__(self, space: TokenSpace, grammar: Grammar | None = None):
        self.space = space
        self.grammar = grammar or _grammar(space)
        cfg = space.cfg
        self.beats = cfg.time == "beats"
        self.steps_per_unit = cfg.steps_per_unit
        self.drum_steps = (
            max(1, self.steps_per_unit // 4) if self.beats else max(1, cfg.steps_per_second // 10)
        )
        self._fam = space.family_index.tolist()
        self._val = space.value.tolist()
        self._offsets = [f.offset for f in space.families.values()]
        self.default_velocity = cfg.default_velocity
        self.stats: Counter = Counter()  # tokens that broke the grammar, by kind
        self.phase = START
        self.after = FREE
        self.program: int | None = None
        self.velocity: dict[int, int] = {}
        self.instruments: set[int] = set()
        self.last_inst = -1
        self.pitch: int | None = None
        # the canonical order within the current time step (see the module docstring)
        self.meta_here = 0  # 1: a TimeSig was given at this step, 2: a Tempo
        self.prog_here = -1  # the last instrument that played at this step
        self.key_here = 128  # the current instrument's last key at this step (128: none yet)
        self.shift_closed = (
            False  # the last token was a Shift shorter than the longest: the gap is over
        )
        self._longest_shift = int(space.shift.values[-1])
        self.tempo_uid = -1  # the Tempo and TimeSig in force (-1: none given yet)
        self.timesig_uid = -1
        self.at_note = False  # the last token completed a note
        self.step = 0
        self.seconds = 0.0
        self.qpm = 120.0
        # beats: one bar of the current metre; seconds: a nominal 4/4 bar at 120 qpm (2 s)
        self.bar_steps = cfg.bar_steps()
        self.bar_origin = 0  # the step the current metre's bars count from
        self.notes = 0
        # bars entered since the start (bar lines crossed); the first bar's controls may come
        # right after BOS, a later bar's right after the Shift that enters it
        self.bar = 0
        self.bar_open = True
        self.ctrl_last = -1  # the last of the bar's controls given: 0 the key, 1.. BAR_CONTROLS
        self.key_value: int | None = None  # the last Key token's value
        self.asked: dict[int, dict[str, int]] = {}  # bar -> {control: level or key} given
        self.tempos: list[tuple[int, float]] = []  # (step, qpm)
        self.time_signatures: list[tuple[int, int, int]] = []  # (step, num, den)

    # --- reading ---------------------------------------------------------------------
    def key(self) -> tuple:
        """Everything the grammar's next choice depends on."""
        prog = self.program
        level = self.velocity.get(prog) if prog is not None else None
        return (
            self.phase,
            self.after,
            prog,
            level,
            frozenset(self.instruments),
            self.last_inst,
            self.meta_here,
            self.prog_here,
            self.key_here,
            self.shift_closed,
            self.tempo_uid,
            self.timesig_uid,
            self.at_note,
            self.bar_open,
            self.ctrl_last,
        )

    def allowed(self) -> np.ndarray:
        """Bool mask over universal ids: the tokens the grammar allows next."""
        return self.grammar.allowed(self.key())

    @property
    def bar_position(self) -> int:
        """Steps since the last bar line."""
        return (self.step - self.bar_origin) % max(self.bar_steps, 1)

    def allows(self, uid: int) -> bool:
        return bool(self.allowed()[uid])

    def end_header(self) -> None:
        """No more Inst tokens: the line-up is fixed (a header given by the caller)."""
        if self.phase == HEADER:
            self.phase = BODY

    def begin_passage(self) -> None:
        """A passage written apart (the middle of an infill) begins here: it may open
        with a Shift even if the stream's last token was a short one."""
        self.shift_closed = False

    def feed(self, uid: int) -> Note | None:
        uid = int(uid)
        if not 0 <= uid < len(self._fam):
            self.stats["unknown_token"] += 1
            return None
        fam = self._fam[uid]
        if fam == _FILL:  # a seam of a rearranged passage is not music (tokens/fill.py)
            self.stats["fill_token"] += 1
            return None
        if fam == _START:  # a training piece's BOS, marked as moved from its own key
            return self._special(BOS)
        if fam in (_KEY, _CTRL):  # what the piece is asked to be: no time, no grammar state
            return self._control(fam, int(self._val[uid]))
        self.at_note = False
        if self.after == AFTER_PITCH and fam != _DUR:
            self.stats["pitch_without_duration"] += 1
            self.after, self.pitch = FREE, None
        if fam == _SPECIAL:
            return self._special(uid)
        if self.phase == START:
            self.stats["token_before_bos"] += 1
            self.phase = HEADER
        elif self.phase == END:
            self.stats["token_after_eos"] += 1
            return None
        if fam == _INST:
            self.bar_open = False
            return self._inst(uid)
        if self.phase == HEADER:
            self.phase = BODY
        self.bar_open = False  # a bar's controls come first (a Shift into a bar opens it again)
        value = self._val[uid]
        if fam == _DUR:
            return self._dur(int(value))
        if fam == _DRUM:
            return self._note(int(value), drum=True)
        if fam == _PITCH:
            if self.program == DRUMS:
                self.stats["pitch_for_drums"] += 1
            self.pitch, self.after = int(value), AFTER_PITCH
            return None
        if self.after in (AFTER_PROG, AFTER_VEL) and fam != _VEL:
            self.stats["prog_or_vel_without_note"] += 1
        self.after = FREE
        self.shift_closed = fam == _SHIFT and int(value) < self._longest_shift
        if fam == _SHIFT:
            n = int(value)
            self.meta_here, self.prog_here, self.key_here = 0, -1, 128
            bars = max(self.bar_steps, 1)
            before = (self.step - self.bar_origin) // bars
            self.step += n
            entered = (self.step - self.bar_origin) // bars - before
            if entered > 0:
                self.bar += entered
                self.bar_open, self.ctrl_last = True, -1
            self.seconds += n * (
                60.0 / (self.qpm * self.steps_per_unit) if self.beats else 1.0 / self.steps_per_unit
            )
        elif fam == _PROG:
            p = int(value)
            if p not in self.instruments:
                self.stats["undeclared_instrument"] += 1
            self.program, self.after, self.key_here = p, AFTER_PROG, 128
        elif fam == _VEL:
            if self.program is None:
                self.stats["velocity_without_instrument"] += 1
            else:
                self.velocity[self.program] = int(value)
            self.after = AFTER_VEL
        elif fam == _TEMPO:
            self.qpm = float(value)
            self.meta_here, self.tempo_uid = 2, uid
            self.tempos.append((self.step, float(value)))
        elif fam == _TIMESIG:
            if self.bar_position:  # a metre set inside a bar starts a bar (Score.bar_lines)
                self.bar += 1
            num, den = self.space.timesig_of(int(value))
            self.bar_steps = self.space.cfg.bar_steps(num, den)
            self.bar_origin = self.step
            self.meta_here, self.timesig_uid = max(self.meta_here, 1), uid
            self.time_signatures.append((self.step, num, den))
        return None

    def _control(self, fam: int, value: int) -> None:
        if fam == _KEY:
            place, name, level = 0, "key", value
            self.key_value = value
        else:
            attribute, level = ctrl_of(value)
            place, name = attribute + 1, BAR_CONTROLS[attribute]
        if (
            not self.bar_open
            or place <= self.ctrl_last
            or self.after != FREE
            or self.phase not in (HEADER, BODY)
        ):
            self.stats["control_out_of_place"] += 1
        self.ctrl_last = place
        self.asked.setdefault(self.bar, {})[name] = level
        return None

    def _special(self, uid: int) -> None:
        if uid == BOS:
            if self.phase != START:
                self.stats["bos_inside_piece"] += 1
            else:
                self.phase = HEADER
        elif uid == EOS:
            self.phase, self.after = END, FREE
        # PAD carries nothing
        return None

    def _inst(self, uid: int) -> None:
        p = int(self._val[uid])
        if self.phase != HEADER or p <= self.last_inst:
            self.stats["instrument_outside_header"] += 1
        self.instruments.add(p)
        self.last_inst = max(self.last_inst, p)
        return None

    def _dur(self, dur: int) -> Note | None:
        if self.after != AFTER_PITCH or self.pitch is None:
            self.stats["duration_without_pitch"] += 1
            return None
        pitch, self.pitch = self.pitch, None
        return self._note(pitch, drum=False, dur=dur)

    def _note(self, pitch: int, *, drum: bool, dur: int | None = None) -> Note:
        program = self.program
        if program is None:
            self.stats["note_without_instrument"] += 1
            program = DRUMS if drum else 0
        if drum and program != DRUMS:
            self.stats["drum_for_pitched_instrument"] += 1
        velocity = self.velocity.get(program)
        if velocity is None:
            if self.grammar.has_vel:
                self.stats["note_without_velocity"] += 1
            velocity = self.default_velocity
        self.after = FREE
        self.shift_closed = False
        self.at_note = True
        self.prog_here, self.key_here = program, pitch
        self.notes += 1
        return Note(
            self.step,
            self.drum_steps if drum else int(dur),
            pitch,
            velocity,
            DRUMS if drum else program,
            drum,
        )

    def feed_all(self, ids) -> list[Note]:
        notes = []
        for uid in np.asarray(ids).tolist():
            note = self.feed(uid)
            if note is not None:
                notes.append(note)
            if self.phase == END:
                break
        if self.after == AFTER_PITCH:
            self.stats["pitch_without_duration"] += 1
        return notes
