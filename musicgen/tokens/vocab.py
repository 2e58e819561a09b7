"""The corpus vocabulary: the subset of the token space a corpus uses.

Saved as indented, versioned JSON with the encoding settings beside it (the
time mode decided at ingestion included, so every later command follows it);
loading checks both, so a vocabulary never silently meets the wrong encoder.
Every Pitch token of the configured range is always kept, so transposition
augmentation can move any note without leaving the vocabulary.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from musicgen import __version__
from musicgen.config import EncodingConfig, from_dict, to_dict
from musicgen.errors import MusicgenError
from musicgen.fsutil import atomic_write_json
from musicgen.tokens.controls import ctrl_value
from musicgen.tokens.space import (
    BOS,
    CONTROL_FAMILIES,
    EOS,
    FAMILIES,
    FILL_SEAMS,
    PAD,
    SPECIALS,
    TRAINING_FAMILIES,
    token_space,
)
from musicgen.tokens.stream import Grammar, Stream

FORMAT = "musicgen-vocabulary"
VERSION = 2  # 2: representation v2 (time modes, line-up header, drums, pedal); 1 is refused


class Vocabulary:
    def __init__(self, cfg: EncodingConfig, universal_ids: Iterable[int]):
        self.cfg = cfg
        self.space = token_space(cfg)
        pitch = self.space.pitch
        keep = set(int(u) for u in universal_ids) | {PAD, BOS, EOS}
        keep |= set(range(pitch.offset, pitch.offset + pitch.size))
        self.uids = np.array(sorted(keep), dtype=np.int64)  # compact id -> universal id
        self.lookup = np.full(self.space.size, -1, dtype=np.int64)  # universal -> compact
        self.lookup[self.uids] = np.arange(len(self.uids))
        strings = self.space.strings()
        self.tokens = [strings[u] for u in self.uids.tolist()]
        self.index = {t: i for i, t in enumerate(self.tokens)}
        assert self.tokens[:3] == list(SPECIALS)
        self.pad_id, self.bos_id, self.eos_id = PAD, BOS, EOS
        # Pitch tokens are contiguous: universal order is kept and all pitches are in.
        self.pitch_start = int(self.lookup[pitch.offset])
        self.pitch_count = pitch.size
        self.families = np.array(
            [FAMILIES[k] for k in self.space.family_index[self.uids].tolist()], dtype=object
        )
        present = np.zeros(self.space.size, dtype=bool)
        present[self.uids] = True
        self.grammar = Grammar(self.space, present)
        self._masks: dict[tuple, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Vocabulary) and self.cfg == other.cfg and self.tokens == other.tokens
        )

    # --- conversions -----------------------------------------------------------------
    def from_universal(self, uids: np.ndarray) -> tuple[np.ndarray, int]:
        """Universal -> compact ids. Unknown tokens are dropped and counted."""
        ids = self.lookup[np.asarray(uids, dtype=np.int64)]
        unknown = ids < 0
        return ids[~unknown], int(unknown.sum())

    def to_universal(self, ids: np.ndarray) -> np.ndarray:
        return self.uids[np.asarray(ids, dtype=np.int64)]

    def is_pitch(self, ids) -> np.ndarray:
        """Which of `ids` (compact) are Pitch tokens (contiguous, so a range test)."""
        ids = np.asarray(ids)
        return (ids >= self.pitch_start) & (ids < self.pitch_start + self.pitch_count)

    @property
    def note_ids(self) -> np.ndarray:
        """Each note has exactly one Pitch or Drum token: counting them counts notes."""
        return np.flatnonzero((self.families == "pitch") | (self.families == "drum"))

    # --- infilling (tokens/fill.py) ---------------------------------------------------
    def with_fill(self) -> Vocabulary:
        """This vocabulary and the seam tokens of infilling. They come after every music
        family, so every id of this vocabulary keeps its meaning (a dataset stays valid)."""
        fill = self.space.fill
        return Vocabulary(self.cfg, np.concatenate([self.uids, fill.id(np.arange(fill.size))]))

    def with_moved(self) -> Vocabulary:
        """This vocabulary and Start_moved, the BOS of a piece transposition moved from its
        own key; appended, as the seams are."""
        start = self.space.start
        return Vocabulary(self.cfg, np.concatenate([self.uids, start.id(np.arange(start.size))]))

    def with_controls(self) -> Vocabulary:
        """This vocabulary and the control tokens (the key, the bar levels), appended as
        the seams are: training inserts them, generation forces the ones asked for."""
        space = self.space
        extra = [space.families[f].id(np.arange(space.families[f].size)) for f in CONTROL_FAMILIES]
        return Vocabulary(self.cfg, np.concatenate([self.uids, *extra]))

    @classmethod
    def full(cls, cfg: EncodingConfig) -> Vocabulary:
        """Every token of the encoding: the vocabulary a base model shares with every corpus
        (any corpus in this encoding maps into it, and a token it never uses costs only its
        row of the embedding)."""
        return cls(cfg, np.arange(token_space(cfg).size))

    @property
    def has_controls(self) -> bool:
        ctrl = self.space.ctrl
        return bool((self.lookup[ctrl.offset : ctrl.offset + ctrl.size] >= 0).all())

    @property
    def control_mask(self) -> np.ndarray:
        """Bool per compact id: a control token (never a target, never drawn unasked)."""
        mask = self.__dict__.get("_control_mask")
        if mask is None:
            mask = np.isin(self.families, CONTROL_FAMILIES)
            mask.setflags(write=False)
            self._control_mask = mask
        return mask

    def ctrl_id(self, attribute: str, level: int) -> int:
        """Compact id of a bar control (`level` from 0)."""
        return int(self.lookup[self.space.ctrl.offset + ctrl_value(attribute, level)])

    def key_id(self, key: int) -> int:
        """Compact id of the Key token for key `key` (tonic + 12 * mode)."""
        return int(self.lookup[self.space.key.offset + int(key)])

    @property
    def moved_id(self) -> int | None:
        """Compact id of Start_moved, or None for a vocabulary that has none (a model trained
        before musicgen marked the pieces it moved, or without transposition)."""
        i = int(self.lookup[self.space.start.offset])
        return i if i >= 0 else None

    def plays_like(self, other: Vocabulary) -> bool:
        """The same music tokens: equal, or equal but for the tokens only training uses."""
        music = lambda v: [  # noqa: E731
            t for t, f in zip(v.tokens, v.families, strict=True) if f not in TRAINING_FAMILIES
        ]
        return self.cfg == other.cfg and music(self) == music(other)

    @property
    def can_fill(self) -> bool:
        return bool(self._seams.all())

    @property
    def fills_an_old_layout(self) -> bool:
        """Some seams but not all: trained to fill before the layout said the gap's length."""
        return bool(self._seams.any()) and not self.can_fill

    @property
    def _seams(self) -> np.ndarray:
        fill = self.space.fill
        return self.lookup[fill.offset : fill.offset + fill.size] >= 0

    def fill_id(self, seam: str) -> int:
        """Compact id of a seam: Fill_after, Fill_middle, Fill_end or Fill_gap."""
        return int(self.lookup[self.space.fill.id(FILL_SEAMS.index(seam))])

    # --- spelling in the tokens this vocabulary has ------------------------------------
    def nearest(self, family: str, value: float) -> int | None:
        """Universal id of the token of `family` this vocabulary has whose value is nearest
        `value` (the lower one on a tie), or None if it has none of that family."""
        fam = self.space.families[family]
        have = np.flatnonzero(self.lookup[fam.offset : fam.offset + fam.size] >= 0)
        if not len(have):
            return None
        return int(fam.offset + have[np.argmin(np.abs(fam.values[have] - value))])

    def spell_gap(self, steps: int) -> list[int]:
        """A gap of `steps` in the Shifts this vocabulary has (universal ids), as the encoder
        spells one: as many of the longest Shift as fit and the nearest one for the rest,
        or one nearest Shift if it lacks the longest (the gap then changes length)."""
        shift = self.space.shift
        if self.nearest("shift", 0) is None:
            raise MusicgenError("the model's vocabulary has no Shift token")
        longest = int(shift.offset + shift.size - 1)
        if self.lookup[longest] < 0:
            return [self.nearest("shift", steps)] if steps > 0 else []
        whole, rest = divmod(int(steps), int(shift.values[-1]))
        return [longest] * whole + ([self.nearest("shift", rest)] if rest else [])

    def spells_exactly(self, steps: int) -> bool:
        """Does `spell_gap` spell a gap of `steps` without changing its length? (Shift
        values are 1..longest, so a Shift's position in its family is its length - 1.)"""
        shift = self.space.shift
        have = self.lookup[shift.offset : shift.offset + shift.size] >= 0
        if have[-1]:  # as many of the longest as fit and one for the rest
            return steps % len(have) == 0 or bool(have[steps % len(have) - 1])
        return 0 < steps <= len(have) and bool(have[steps - 1])

    @property
    def shift_steps(self) -> np.ndarray:
        """Per compact id: the steps a Shift moves time on (inf for every other token)."""
        steps = self.__dict__.get("_shift_steps")
        if steps is None:
            steps = np.where(self.families == "shift", self.space.value[self.uids], np.inf)
            steps.setflags(write=False)
            self._shift_steps = steps
        return steps

    # --- the grammar -----------------------------------------------------------------
    def stream(self) -> Stream:
        """A stream interpreter whose grammar only allows this vocabulary's tokens."""
        return Stream(self.space, self.grammar)

    def allowed(self, stream: Stream) -> np.ndarray:
        """Bool mask over compact ids: what the grammar allows next in `stream`."""
        key = stream.key()
        mask = self._masks.get(key)
        if mask is None:
            mask = self._masks[key] = stream.allowed()[self.uids]
        return mask

    def allowed_within(self, stream: Stream, room: float) -> np.ndarray:
        """`allowed(stream)` less the Shifts that would move time on more than `room` steps."""
        return self.allowed(stream) & ((self.shift_steps == np.inf) | (self.shift_steps <= room))

    # --- persistence -----------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "musicgen_version": __version__,
            "encoding": to_dict(self.cfg),
            "tokens": self.tokens,
        }

    @classmethod
    def from_json(cls, data: dict) -> Vocabulary:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise MusicgenError("not a musicgen vocabulary (missing format marker)")
        if data.get("version") != VERSION:
            if isinstance(data.get("version"), int) and 1 <= data["version"] < VERSION:
                raise MusicgenError(
                    f"vocabulary version {data['version']} was written by an older musicgen (representation v{data['version']}); "
                    "run `musicgen ingest` again and retrain with this version"
                )
            raise MusicgenError(
                f"vocabulary version {data.get('version')} is not supported (expected {VERSION})"
            )
        try:
            cfg = from_dict(EncodingConfig, data["encoding"])
            tokens = data["tokens"]
            if cfg.time == "auto":
                raise ValueError("its time mode is not decided ('auto')")
        except KeyError as exc:
            raise MusicgenError(f"malformed vocabulary: missing {exc}") from None
        except (AttributeError, TypeError, ValueError) as exc:
            raise MusicgenError(f"malformed vocabulary: bad encoding settings ({exc})") from None
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise MusicgenError("malformed vocabulary: 'tokens' must be a list of strings")
        try:
            strings = {s: i for i, s in enumerate(token_space(cfg).strings())}
        except (TypeError, ValueError) as exc:  # e.g. a float where a count belongs
            raise MusicgenError(f"malformed vocabulary: bad encoding settings ({exc})") from None
        unknown = [t for t in tokens if t not in strings]
        if unknown:
            raise MusicgenError(
                f"vocabulary has {len(unknown)} tokens its encoding cannot produce, e.g. {unknown[0]!r}"
            )
        vocab = cls(cfg, [strings[t] for t in tokens])
        if vocab.tokens != tokens:
            raise MusicgenError("vocabulary token order does not match its encoding")
        return vocab

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise MusicgenError(f"no vocabulary at {path}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MusicgenError(f"cannot read vocabulary {path}: {exc}") from None
        try:
            return cls.from_json(data)
        except MusicgenError as exc:
            raise MusicgenError(f"{path}: {exc}") from None
