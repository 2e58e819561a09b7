"""The universe of token strings an `EncodingConfig` can produce.

Families, in id order: specials, Shift_n, Pitch_p, Dur_n, Vel_v, Prog_p,
Tempo_q, TimeSig_n/d. A `Vocabulary` keeps the subset a corpus uses; this space
gives every token a stable "universal" id so encoding is pure array work.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicgen.config import EncodingConfig

SPECIALS = ("PAD", "BOS", "EOS")
PAD, BOS, EOS = 0, 1, 2
DRUM_PROGRAM = 128
TIME_SIG_DENOMINATORS = (1, 2, 4, 8, 16, 32)
TIME_SIG_MAX_NUMERATOR = 32
_DENOMINATORS = np.array(TIME_SIG_DENOMINATORS)


@dataclass(frozen=True)
class Family:
    name: str
    offset: int
    size: int

    def contains(self, ids: np.ndarray) -> np.ndarray:
        return (ids >= self.offset) & (ids < self.offset + self.size)


class TokenSpace:
    def __init__(self, cfg: EncodingConfig):
        self.cfg = cfg
        self.tempo_values = np.array(cfg.tempo_values())
        self.velocity_values = np.array(cfg.velocity_values(), dtype=np.int64)
        sizes = [
            ("special", len(SPECIALS)),
            ("shift", cfg.max_shift_steps),  # Shift_1 .. Shift_max
            ("pitch", cfg.pitch_max - cfg.pitch_min + 1),
            ("dur", cfg.max_duration_steps),  # Dur_1 .. Dur_max
            ("vel", cfg.velocity_bins),
            ("prog", 129),  # 0..127 and 128 = drums
            ("tempo", cfg.tempo_bins),
            ("timesig", TIME_SIG_MAX_NUMERATOR * len(TIME_SIG_DENOMINATORS)),
        ]
        self.families: dict[str, Family] = {}
        offset = 0
        for name, size in sizes:
            self.families[name] = Family(name, offset, size)
            offset += size
        self.size = offset
        self._strings: list[str] | None = None
        self._family_names: list[str] | None = None

    def __getattr__(self, name: str) -> Family:  # space.pitch, space.shift, ...
        fams = self.__dict__.get("families", {})
        if name in fams:
            return fams[name]
        raise AttributeError(name)

    # --- id construction (vectorised) -------------------------------------------------
    def shift_id(self, n):
        return self.shift.offset + np.asarray(n) - 1

    def pitch_id(self, p):
        return self.pitch.offset + np.asarray(p) - self.cfg.pitch_min

    def dur_id(self, n):
        return self.dur.offset + np.asarray(n) - 1

    def vel_id(self, b):
        return self.vel.offset + np.asarray(b)

    def prog_id(self, p):
        return self.prog.offset + np.asarray(p)

    def tempo_id(self, b):
        return self.tempo.offset + np.asarray(b)

    def timesig_id(self, num, den):
        """Every denominator must be one of TIME_SIG_DENOMINATORS (ValueError otherwise)."""
        den = np.asarray(den)
        den_idx = np.searchsorted(_DENOMINATORS, den)
        if not np.array_equal(_DENOMINATORS[np.minimum(den_idx, len(_DENOMINATORS) - 1)], den):
            raise ValueError(f"time-signature denominators must be among {TIME_SIG_DENOMINATORS}")
        return self.timesig.offset + (np.asarray(num) - 1) * len(TIME_SIG_DENOMINATORS) + den_idx

    def timesig_of(self, k: int) -> tuple[int, int]:
        """(numerator, denominator) of the k-th TimeSig token (the inverse of `timesig_id`)."""
        return k // len(TIME_SIG_DENOMINATORS) + 1, TIME_SIG_DENOMINATORS[k % len(TIME_SIG_DENOMINATORS)]

    def time_tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What each universal id does to time, for code that follows a stream token by token:
        the steps a Shift moves, the qpm a Tempo sets, the steps in a bar a TimeSig sets
        (0 for every other token)."""
        shift = np.zeros(self.size, dtype=np.int64)
        qpm = np.zeros(self.size)
        bar = np.zeros(self.size, dtype=np.int64)
        shift[self.shift.offset : self.shift.offset + self.shift.size] = np.arange(1, self.shift.size + 1)
        qpm[self.tempo.offset : self.tempo.offset + self.tempo.size] = self.tempo_values
        for k in range(self.timesig.size):
            num, den = self.timesig_of(k)
            bar[self.timesig.offset + k] = num * 4 * self.cfg.steps_per_quarter // den
        return shift, qpm, bar

    # --- binning ---------------------------------------------------------------------
    def tempo_bin(self, qpm):
        """The nearest bin in log tempo (perceived tempo is ratio-like); an int for one qpm."""
        log_qpm = np.log(np.maximum(np.asarray(qpm, dtype=np.float64), 1e-3))
        bins = np.argmin(np.abs(np.log(self.tempo_values) - log_qpm[..., None]), axis=-1)
        return int(bins) if bins.ndim == 0 else bins

    def velocity_bin(self, velocity: np.ndarray) -> np.ndarray:
        n = self.cfg.velocity_bins
        return np.clip(((np.asarray(velocity) - 1) * n) // 127, 0, n - 1)

    # --- strings ---------------------------------------------------------------------
    def strings(self) -> list[str]:
        if self._strings is None:
            c = self.cfg
            out = list(SPECIALS)
            out += [f"Shift_{n}" for n in range(1, c.max_shift_steps + 1)]
            out += [f"Pitch_{p}" for p in range(c.pitch_min, c.pitch_max + 1)]
            out += [f"Dur_{n}" for n in range(1, c.max_duration_steps + 1)]
            out += [f"Vel_{v}" for v in self.velocity_values.tolist()]
            out += [f"Prog_{p}" for p in range(128)] + ["Prog_drums"]
            out += [f"Tempo_{q:g}" for q in self.tempo_values.tolist()]
            out += [
                f"TimeSig_{n}/{d}"
                for n in range(1, TIME_SIG_MAX_NUMERATOR + 1)
                for d in TIME_SIG_DENOMINATORS
            ]
            assert len(out) == self.size
            self._strings = out
        return self._strings

    def family_names(self) -> list[str]:
        """Family name of every universal id, in id order (one lookup instead of a scan)."""
        if self._family_names is None:
            self._family_names = [f.name for f in self.families.values() for _ in range(f.size)]
        return self._family_names

    def family_of(self, uid: int) -> str:
        if not 0 <= uid < self.size:
            raise ValueError(f"token id {uid} outside the space")
        return self.family_names()[uid]
