"""The alphabet: every token an `EncodingConfig` can produce, and what each stands for.

Families, in id order (each token is "<Family>_<value>"):

    PAD BOS EOS         specials
    Inst_p              the piece's line-up, right after BOS (p: program 0..127 or "drums")
    TimeSig_n/d         a metre from here on                          (beats mode)
    Tempo_q             quarter notes per minute from here on         (beats mode)
    Shift_n             time moves on n steps
    Prog_p              the instrument of the notes that follow
    Vel_v               the current instrument's velocity from here on
    Pitch_p             a pitched note; always followed by its Dur
    Dur_n               the sounding length of the note just named, in steps
    Drum_k              a drum hit (k: General MIDI percussion key); needs no Dur
    Fill_w              a seam of a passage rearranged for infilling (tokens/fill.py);
                        w: after, middle, end, gap. Only a vocabulary trained to fill has them
    Start_moved         BOS of a piece that training moved from its own key (transposition
                        augmentation): so a model learns which keys its corpus is in, and
                        a piece begun with BOS is in one of them. Never generated or written
    Key_k, Density_l, Polyphony_l, Register_l, Dynamics_l
                        a bar's controls, after the Shift that enters it (tokens/controls.py):
                        the piece's key (k: C_major ... B_minor) and the bar's levels

A `Vocabulary` keeps the subset a corpus uses; this space gives every token a
stable "universal" id, and `values` says what each id means, so nobody parses
token strings. The grammar that strings these together lives in stream.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicgen.config import EncodingConfig
from musicgen.config.encoding import DRUMS  # noqa: F401 - the tokens' name for it
from musicgen.tokens.controls import BAR_CONTROLS, KEYS, LEVELS, ctrl_strings, key_strings

SPECIALS = ("PAD", "BOS", "EOS")
PAD, BOS, EOS = 0, 1, 2
IGNORE = -100  # a target no loss counts (cross_entropy's ignore_index): padding, controls
PROGRAMS = 129  # 0..127 and DRUMS
TIME_SIG_DENOMINATORS = (1, 2, 4, 8, 16, 32)
TIME_SIG_MAX_NUMERATOR = 32

# Family names, in id order.
# "fill", "start", "key" and "ctrl" come last, so adding their tokens to a vocabulary appends
# them: a dataset's ids stay valid.
FAMILIES = (
    "special",
    "inst",
    "timesig",
    "tempo",
    "shift",
    "prog",
    "vel",
    "pitch",
    "dur",
    "drum",
    "fill",
    "start",
    "key",
    "ctrl",
)
# Tokens no encoded piece has: the seams of infilling, the key mark of a moved piece, and the
# controls training inserts and generation forces.
TRAINING_FAMILIES = ("fill", "start", "key", "ctrl")
CONTROL_FAMILIES = ("key", "ctrl")
# Fill_after, Fill_middle, Fill_end, Fill_gap, in id order ("gap" came later: a vocabulary
# with the first three alone learnt a layout that did not say how long the gap is)
FILL_SEAMS = ("after", "middle", "end", "gap")
STARTS = ("moved",)  # Start_moved: the BOS of a piece moved from its own key


@dataclass(frozen=True)
class Family:
    name: str
    offset: int
    values: (
        np.ndarray
    )  # what token `offset + k` stands for (for timesig: numerator * 64 + denominator)

    @property
    def size(self) -> int:
        return len(self.values)

    def contains(self, ids) -> np.ndarray:
        ids = np.asarray(ids)
        return (ids >= self.offset) & (ids < self.offset + self.size)

    def id(self, index) -> np.ndarray:
        """Universal id(s) of the token(s) at these positions in the family."""
        return self.offset + np.asarray(index, dtype=np.int64)

    def id_of_value(self, value) -> np.ndarray:
        """Universal id(s) of the token(s) standing exactly for `value` (values must exist)."""
        if self.integral:  # a table lookup, the commonest call of the encoder
            return self.offset + self.position[np.asarray(value, dtype=np.int64)]
        return self.offset + np.searchsorted(self.values, value)

    @property
    def integral(self) -> bool:
        return self.values.dtype.kind in "iu" and self.size > 0 and int(self.values[-1]) < 1 << 16

    @property
    def position(self) -> np.ndarray:
        """value -> its position in the family (-1 where no token stands for it)."""
        table = self.__dict__.get("_position")
        if table is None:
            table = np.full(int(self.values[-1]) + 1, -1, dtype=np.int64)
            table[self.values] = np.arange(self.size)
            object.__setattr__(self, "_position", table)
        return table

    def nearest(self, value) -> np.ndarray:
        """Position(s) in the family of the value(s) nearest to `value` (the lower one on a tie)."""
        v = np.asarray(value, dtype=np.float64)
        above = np.clip(np.searchsorted(self.values, v), 1, max(self.size - 1, 1))
        below = above - 1
        if self.size == 1:
            return np.zeros(v.shape, dtype=np.int64)
        return np.where(v - self.values[below] <= self.values[above] - v, below, above)


def _timesig_values() -> np.ndarray:
    return np.array(
        [n * 64 + d for n in range(1, TIME_SIG_MAX_NUMERATOR + 1) for d in TIME_SIG_DENOMINATORS]
    )


class TokenSpace:
    """Every token of one (decided) encoding, with a universal id and a value."""

    def __init__(self, cfg: EncodingConfig):
        if cfg.time == "auto":
            raise ValueError(
                "a token space needs a decided time mode (beats or seconds), not 'auto'"
            )
        self.cfg = cfg
        values = {
            "special": np.arange(len(SPECIALS)),
            "inst": np.arange(PROGRAMS),
            "timesig": _timesig_values(),
            "tempo": np.array(cfg.tempo_values()),
            "shift": np.arange(1, cfg.limit("max_shift") + 1),
            "prog": np.arange(PROGRAMS),
            "vel": np.array(cfg.velocity_values(), dtype=np.int64),
            "pitch": np.arange(cfg.pitch_min, cfg.pitch_max + 1),
            "dur": np.array(cfg.duration_values(), dtype=np.int64),
            "drum": np.arange(128),
            "fill": np.arange(len(FILL_SEAMS)),
            "start": np.arange(len(STARTS)),
            "key": np.arange(KEYS),
            "ctrl": np.arange(len(BAR_CONTROLS) * LEVELS),
        }
        self.families: dict[str, Family] = {}
        offset = 0
        for name in FAMILIES:
            self.families[name] = Family(name, offset, values[name])
            offset += len(values[name])
        self.size = offset
        # per universal id: its family's index in FAMILIES, and its value
        self.family_index = np.concatenate(
            [np.full(f.size, i) for i, f in enumerate(self.families.values())]
        )
        self.value = np.concatenate([f.values.astype(np.float64) for f in self.families.values()])
        self._strings: list[str] | None = None

    def __getattr__(self, name: str) -> Family:  # space.pitch, space.shift, ...
        fams = self.__dict__.get("families", {})
        if name in fams:
            return fams[name]
        raise AttributeError(name)

    def family_of(self, uid: int) -> str:
        if not 0 <= uid < self.size:
            raise ValueError(f"token id {uid} outside the space")
        return FAMILIES[self.family_index[uid]]

    def is_family(self, name: str) -> np.ndarray:
        """Bool mask over universal ids: the tokens of one family."""
        return self.family_index == FAMILIES.index(name)

    def timesig_id(self, num, den) -> np.ndarray:
        return self.timesig.id_of_value(np.asarray(num) * 64 + np.asarray(den))

    @staticmethod
    def timesig_of(value: int) -> tuple[int, int]:
        return int(value) // 64, int(value) % 64

    # --- strings ---------------------------------------------------------------------
    def strings(self) -> list[str]:
        if self._strings is None:
            out = list(SPECIALS)
            program = [str(p) for p in range(128)] + ["drums"]
            out += [f"Inst_{p}" for p in program]
            out += [
                "TimeSig_{}/{}".format(*self.timesig_of(v)) for v in self.timesig.values.tolist()
            ]
            out += [f"Tempo_{q:g}" for q in self.tempo.values.tolist()]
            out += [f"Shift_{n}" for n in self.shift.values.tolist()]
            out += [f"Prog_{p}" for p in program]
            out += [f"Vel_{v}" for v in self.vel.values.tolist()]
            out += [f"Pitch_{p}" for p in self.pitch.values.tolist()]
            out += [f"Dur_{n}" for n in self.dur.values.tolist()]
            out += [f"Drum_{k}" for k in self.drum.values.tolist()]
            out += [f"Fill_{w}" for w in FILL_SEAMS]
            out += [f"Start_{w}" for w in STARTS]
            out += key_strings()
            out += ctrl_strings()
            assert len(out) == self.size
            self._strings = out
        return self._strings


_SPACES: dict[EncodingConfig, TokenSpace] = {}


def token_space(cfg: EncodingConfig) -> TokenSpace:
    if cfg not in _SPACES:
        _SPACES[cfg] = TokenSpace(cfg)
    return _SPACES[cfg]
