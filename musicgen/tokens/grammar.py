"""The grammar of the token stream: which tokens may follow, in each situation the
stream interpreter (stream.py) can be in, as bool masks over universal ids. The rules
themselves are written out in stream.py's docstring."""

from __future__ import annotations

import numpy as np

from musicgen.tokens.controls import LEVELS
from musicgen.tokens.space import BOS, DRUMS, EOS, FAMILIES, PAD, TokenSpace

_FAM = {name: i for i, name in enumerate(FAMILIES)}
(
    _SPECIAL,
    _INST,
    _TIMESIG,
    _TEMPO,
    _SHIFT,
    _PROG,
    _VEL,
    _PITCH,
    _DUR,
    _DRUM,
    _FILL,
    _START,
    _KEY,
    _CTRL,
) = (_FAM[n] for n in FAMILIES)

# Where the stream is: before BOS, in the header (after BOS, Inst tokens may follow), in the
# body, or after EOS. "after" says which token a note is waiting to be completed after.
START, HEADER, BODY, END = range(4)
FREE, AFTER_PROG, AFTER_VEL, AFTER_PITCH = range(4)


class Grammar:
    """Which tokens may follow, per situation, as bool masks over universal ids.

    `present` (bool over universal ids) restricts the masks to a vocabulary, and with it
    removes dead ends: a Pitch where no Dur exists, a Prog whose notes cannot be written.
    """

    def __init__(self, space: TokenSpace, present: np.ndarray | None = None):
        self.space = space
        self.present = np.ones(space.size, dtype=bool) if present is None else present.astype(bool)
        fam = {name: space.is_family(name) & self.present for name in FAMILIES}
        self.fam = fam
        self.can_pitch = bool(fam["pitch"].any() and fam["dur"].any())
        self.can_drum = bool(fam["drum"].any())
        self.has_vel = bool(fam["vel"].any())
        self._cache: dict[tuple, np.ndarray] = {}

    def playable(self, program: int) -> bool:
        return self.can_drum if program == DRUMS else self.can_pitch

    def allowed(self, key: tuple) -> np.ndarray:
        mask = self._cache.get(key)
        if mask is None:
            mask = self._cache[key] = self._allowed(*key)
            mask.setflags(write=False)
        return mask

    def _allowed(
        self,
        phase,
        after,
        program,
        level,
        instruments,
        last_inst,
        meta,
        prog_here,
        key_here,
        shift_closed,
        tempo,
        timesig,
        at_note,
        bar_open,
        ctrl_last,
    ) -> np.ndarray:
        s, f = self.space, self.fam
        out = np.zeros(s.size, dtype=bool)
        if phase == START:
            out[BOS] = True
            return out
        if phase == END:
            out[PAD] = True
            return out
        if after == AFTER_PITCH:
            return f["dur"].copy()
        # the notes the current instrument may play next: below its last key at this step
        note = (f["drum"] if program == DRUMS else f["pitch"] & self.can_pitch).copy()
        family = s.drum if program == DRUMS else s.pitch
        note[
            family.offset + int(np.searchsorted(family.values, key_here)) : family.offset
            + family.size
        ] = False
        has_level = level is not None or not self.has_vel
        vel = f["vel"].copy()
        if level is not None:
            vel[s.vel.id_of_value(level)] = False
        if after in (AFTER_PROG, AFTER_VEL):
            if after == AFTER_PROG:
                out |= vel
            if has_level or after == AFTER_VEL:
                out |= note
            return out
        if phase == HEADER:
            inst = f["inst"].copy()
            inst[s.inst.offset : s.inst.offset + last_inst + 1] = False
            for p in range(s.inst.size):
                if inst[s.inst.offset + p] and not self.playable(p):
                    inst[s.inst.offset + p] = False
            out |= inst
        if bar_open:  # the bar just entered: its controls, in order, each at most once
            if ctrl_last < 0:
                out |= f["key"]
            ctrl = f["ctrl"].copy()
            ctrl[s.ctrl.offset : s.ctrl.offset + max(ctrl_last, 0) * LEVELS] = False
            out |= ctrl
        if phase == HEADER and not instruments:
            out[EOS] = self.present[EOS]  # a piece with notes declares an instrument first
            return out
        if not shift_closed:  # a gap goes on only after a Shift of the longest length
            out |= f["shift"]
        out[EOS] = self.present[EOS] and at_note
        if meta < 1 and prog_here < 0:
            out |= f["timesig"]
            if timesig >= 0:
                out[timesig] = False
        if meta < 2 and prog_here < 0:
            out |= f["tempo"]
            if tempo >= 0:
                out[tempo] = False
        for p in instruments:
            if p != program and p > prog_here and self.playable(p):
                out[s.prog.offset + p] = self.present[s.prog.offset + p]
        if (
            program is not None and program >= prog_here and note.any()
        ):  # a Vel must lead into a note
            out |= vel
            if has_level:
                out |= note
        return out


_GRAMMARS: dict[int, Grammar] = {}


def _grammar(space: TokenSpace) -> Grammar:
    g = _GRAMMARS.get(id(space))
    if g is None or g.space is not space:
        g = _GRAMMARS[id(space)] = Grammar(space)
    return g
